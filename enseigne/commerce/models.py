"""Purchases as data: the orders a unit's tills and shops report, with their lines.

An order is the unit's own (its external id is unique per unit, like a conversion's); its
lines name products of the library by SKU. A campaign conversion (``tracking``) is credited
from an order; an order needs no campaign to exist.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from enseigne.brand.models import Asset
from enseigne.contacts.models import Contact
from enseigne.network.models import OrgNode

# The largest amount an order or a line may carry, either sign (DecimalField(12, 2)).
MAX_AMOUNT_DIGITS = 12
AMOUNT_PLACES = 2


class Order(models.Model):
    """One purchase (or return) at a unit, counted once however often it is reported."""

    class Channel(models.TextChoices):
        IN_STORE = "in_store", _("In store")
        ONLINE = "online", _("Online")

    class Source(models.TextChoices):
        API = "api", _("API")
        CSV = "csv", _("CSV import")
        DEMO = "demo", _("Demo")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    unit = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Read by the row-level security policy; queries scope by unit id (see docs/decisions.md).
    unit_path = models.CharField(max_length=255)
    external_id = models.CharField(_("order id"), max_length=100)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    occurred_at = models.DateTimeField(_("time"))
    # In the unit's currency; negative only for an order made of returns.
    total = models.DecimalField(
        _("total"), max_digits=MAX_AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES
    )
    channel = models.CharField(
        _("channel"), max_length=8, choices=Channel.choices, default=Channel.IN_STORE
    )
    source = models.CharField(max_length=8, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "external_id"], name="order_unit_external_unique"
            )
        ]
        indexes = [
            models.Index(fields=["unit", "occurred_at"], name="order_unit_time"),
            models.Index(fields=["contact", "occurred_at"], name="order_contact_time"),
        ]

    def __str__(self) -> str:
        return self.external_id


class OrderLine(models.Model):
    """One line of an order: a product (by SKU) sold, or returned (negative quantity)."""

    # No index of its own: the (order, position) constraint's index serves the lookups.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    unit_path = models.CharField(max_length=255)
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(_("SKU"), max_length=64)
    # The library's product with this SKU when there is one; otherwise the SKU is kept and
    # flagged, never refused (the catalogue may arrive after the till's first sales).
    product = models.ForeignKey(
        Asset, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    unknown_sku = models.BooleanField(default=False)
    category = models.CharField(_("category"), max_length=120, blank=True)
    quantity = models.DecimalField(_("quantity"), max_digits=10, decimal_places=3)
    unit_amount = models.DecimalField(
        _("unit price"),
        max_digits=MAX_AMOUNT_DIGITS,
        decimal_places=AMOUNT_PLACES,
        null=True,
        blank=True,
    )
    amount = models.DecimalField(
        _("amount"), max_digits=MAX_AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES
    )
    discount = models.DecimalField(
        _("discount"), max_digits=MAX_AMOUNT_DIGITS, decimal_places=AMOUNT_PLACES, default=0
    )
    is_return = models.BooleanField(_("return"), default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "position"], name="orderline_position"),
            # Negative quantities and amounts only on return lines (the services check it
            # with a reason; this keeps any other writer to the rule).
            models.CheckConstraint(
                condition=models.Q(is_return=True)
                | (models.Q(quantity__gt=0) & models.Q(amount__gte=0)),
                name="orderline_negative_only_returns",
            ),
        ]
