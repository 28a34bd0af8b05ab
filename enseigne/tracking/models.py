"""Sales reported by the units' tills and shops (conversions), deduplicated by order id."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from enseigne.commerce.models import Order
from enseigne.contacts.models import Contact
from enseigne.network.models import OrgNode


class Conversion(models.Model):
    """One order, counted once however often it is reported (API retries, CSV re-imports).

    ``campaign_id`` and ``channel`` are the last click's (within the network's attribution
    window) when the order was recorded; other attribution models are computed when read.
    """

    class Source(models.TextChoices):
        API = "api", _("API")
        CSV = "csv", _("CSV import")
        DEMO = "demo", _("Demo")

    order_id = models.CharField(_("order id"), max_length=100)
    unit = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+", db_index=False)
    unit_path = models.CharField(max_length=255)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    occurred_at = models.DateTimeField(_("time"))
    # The order this conversion credits (its lines, its channel); null for conversions
    # recorded before orders were kept. (``order_id`` is the till's id, hence the name.)
    purchase = models.OneToOneField(
        Order, null=True, blank=True, on_delete=models.SET_NULL, related_name="conversion"
    )
    campaign_id = models.BigIntegerField(null=True, blank=True)
    channel = models.CharField(max_length=8, blank=True)
    source = models.CharField(max_length=8, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Unique per unit, not network-wide: another store must neither block a unit's real
        # order id by recording it first nor learn whether it exists (docs/decisions.md).
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "order_id"], name="conversion_unit_order_unique"
            )
        ]
        indexes = [
            models.Index(fields=["unit", "occurred_at"], name="conversion_unit_time"),
            models.Index(fields=["created_at"], name="conversion_created"),
        ]
