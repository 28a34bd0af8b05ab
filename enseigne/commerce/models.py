"""Purchases as data: the orders a unit's tills and shops report, with their lines.

An order is the unit's own (its external id is unique per unit, like a conversion's); its
lines name products of the library by SKU. A campaign conversion (``tracking``) is credited
from an order; an order needs no campaign to exist.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from enseigne.brand.models import Asset
from enseigne.contacts.models import Contact
from enseigne.lib.imports import ImportProgress, reason_shown
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
    # No database constraint: the writer takes the unit from the row it just read in scope,
    # and a unit with orders is never deleted (Django's PROTECT); its check was a trigger per
    # order (docs/decisions.md, "Order lines' product").
    unit = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
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

    # No index of its own: the (order, position) constraint's index serves the lookups. No
    # database constraint: the writer inserts the lines with the ids its own insert of the
    # orders returned, in the same transaction, and nothing deletes orders but Django's
    # CASCADE; the check was a trigger per line, a sixth of a batch's PostgreSQL time.
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="lines", db_index=False, db_constraint=False
    )
    unit_path = models.CharField(max_length=255)
    position = models.PositiveSmallIntegerField()
    sku = models.CharField(_("SKU"), max_length=64)
    # The library's product with this SKU when there is one; otherwise the SKU is kept and
    # flagged, never refused (the catalogue may arrive after the till's first sales).
    # No database constraint: its check, a trigger per line, cost a fifth of a batch's
    # PostgreSQL time (bench/orders_ingest.py), for ids the writer has just read; deleting a
    # product still clears its lines (Django's SET_NULL), and the SKU stays on the line.
    product = models.ForeignKey(
        Asset,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
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
        indexes = [
            # The lines a catalogue import links to their new product: few, by SKU.
            models.Index(
                fields=["sku"],
                condition=models.Q(unknown_sku=True),
                name="orderline_unknown_sku",
            )
        ]


class OrderImport(ImportProgress):
    """A CSV file of order lines (one row per line, rows of one order share its id),
    mapped, checked (a dry run writes nothing) and recorded, with a row-by-row report."""

    unit = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    dry_run = models.BooleanField(default=False)
    created_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    refused_count = models.PositiveIntegerField(default=0)  # orders
    refused_rows = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    unknown_sku_lines = models.PositiveIntegerField(default=0)
    # Orders kept (in a dry run: to keep) without the buyer their e-mail or phone names.
    without_buyer_count = models.PositiveIntegerField(default=0)
    # The run's checkpoint: how many of the file's orders (in order of first appearance)
    # are recorded, with their report lines and counts; None until the rows refused while
    # reading the file are reported. A run that resumes a dead one goes on from there.
    orders_done = models.PositiveIntegerField(null=True)

    @property
    def dry_run_summary(self) -> str:
        """What a dry run says wherever it is shown (list, page, report): nothing written."""
        return ngettext(
            "Simulation: nothing was written; %(n)s order would be recorded.",
            "Simulation: nothing was written; %(n)s orders would be recorded.",
            self.created_count,
        ) % {"n": self.created_count}


class OrderImportProblem(models.Model):
    """One line of an order import's report: a row refused (with its order), a line kept
    and flagged (an unknown SKU; ``resolved`` once the catalogue has the product), or an
    order kept without the buyer its e-mail or phone names. ``reason`` is stored by
    ``lib.imports.reason_stored`` and shown with ``reason_shown``."""

    class Kind(models.TextChoices):
        REFUSED = "refused", _("Row not imported")
        FLAGGED = "flagged", _("Imported, to check")
        NO_BUYER = "no_buyer", _("Imported without its buyer")
        RESOLVED = "resolved", _("Product added to the catalogue since")

    order_import = models.ForeignKey(OrderImport, on_delete=models.CASCADE, related_name="problems")
    unit_path = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    row_number = models.PositiveIntegerField()
    column = models.CharField(max_length=255, blank=True)
    value = models.CharField(max_length=255, blank=True)
    rule = models.CharField(max_length=40)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["row_number", "id"]
        indexes = [
            # The flags a catalogue import resolves, by SKU (the value of the SKU column).
            models.Index(
                fields=["value"],
                condition=models.Q(kind="flagged"),
                name="orderimportproblem_flagged",
            )
        ]

    @property
    def field(self) -> str:
        """The column, under the name the imports' shared report reads."""
        return self.column

    @property
    def reason_text(self) -> str:
        """The reason in the reader's language (``lib.imports.reason_shown``)."""
        return reason_shown(self.reason)


class CatalogueImport(ImportProgress):
    """HQ's product catalogue as a CSV file (one product a row), mapped, checked (a dry run
    writes nothing) and loaded into the library by SKU, with a row-by-row report. Owned by
    the node the products are shared with (``unit_path`` is its path)."""

    node = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    dry_run = models.BooleanField(default=False)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)

    @property
    def dry_run_summary(self) -> str:
        """What a dry run says wherever it is shown (list, page): nothing written."""
        return ngettext(
            "Simulation: nothing was written; %(n)s product would be created or updated.",
            "Simulation: nothing was written; %(n)s products would be created or updated.",
            self.created_count + self.updated_count,
        ) % {"n": self.created_count + self.updated_count}


class CatalogueImportProblem(models.Model):
    """One line of a catalogue import's report: a row not imported, with its column, value
    and reason."""

    class Kind(models.TextChoices):
        REFUSED = "refused", _("Row not imported")

    catalogue_import = models.ForeignKey(
        CatalogueImport, on_delete=models.CASCADE, related_name="problems"
    )
    unit_path = models.CharField(max_length=255)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.REFUSED)
    row_number = models.PositiveIntegerField()
    column = models.CharField(max_length=255, blank=True)
    value = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["row_number", "id"]

    @property
    def field(self) -> str:
        """The column, under the name the imports' shared report reads."""
        return self.column

    @property
    def reason_text(self) -> str:
        """The reason in the reader's language (``lib.imports.reason_shown``)."""
        return reason_shown(self.reason)


class CategoryPurchase(models.Model):
    """A buyer's latest sold line (not a return) in a category, case aside: what "bought in
    category X in the last N days" reads, as an index range (``summaries``).

    Written by ``order_hooks.orders_written`` in the order writer's transaction and rebuilt
    by ``enseigne rebuild_purchase_summary``; the record's erasure takes its rows with it. ``category`` is the lines' category as the database's
    ``UPPER`` spells it, the same function the condition applies to the value asked for.
    """

    # No database constraints (derived rows, rebuilt by the command): their checks, two
    # triggers per row written, cost a fifth of the summary's statement in every order batch
    # (bench/orders_ingest.py). Erasure still takes the rows (Django's CASCADE), and the
    # batch's orders hold their buyers' rows (the order's own constraint) until it commits.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    # The record's unit, and its path (row-level security). The condition correlates on the
    # unit too, so a store's count ranges over its own rows only (see the index).
    unit = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    unit_path = models.CharField(max_length=255)
    category = models.CharField(max_length=120)
    last_bought_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["contact", "category"], name="categorypurchase_contact_category"
            )
        ]
        # (category, unit, time): one range per unit in scope (a store: one; HQ: one per
        # unit), by the leakproof unit id as docs/decisions.md asks of RLS-bound reads. The
        # path is included so that the range is read from the index alone, row-level
        # security's filter included (an index-only scan; the heap is not visited).
        indexes = [
            models.Index(
                fields=["category", "unit", "last_bought_at"],
                include=["contact", "unit_path"],
                name="categorypurchase_recent",
            )
        ]


class CategoryRevenue(models.Model):
    """A store's net revenue in a category over a month (the store's time zone): its sold
    lines less its returned ones, what the store dashboard compares with the median store's
    share. Kept by ``revenue.orders_tallied`` in the order writer's transaction (batch API,
    CSV import, conversions endpoint: one path) and rebuilt by ``enseigne
    rebuild_category_revenue``. ``category`` is the lines' category as Python's ``upper``
    spells it (lines without one are left out); ``spelling`` the first spelling seen, shown.

    ``orders``, ``squares`` and ``cross`` are per order of the month with a line in the
    category: how many, the sum of the squares of its net amount in the category, and of that
    amount times the order's categorised net amount. With ``StoreRevenue`` they give the
    share's 95 % interval (orders are the sample; ``revenue.share_interval``)."""

    unit = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    unit_path = models.CharField(max_length=255)
    month = models.DateField()
    category = models.CharField(max_length=120)
    spelling = models.CharField(max_length=120)
    revenue = models.DecimalField(max_digits=16, decimal_places=AMOUNT_PLACES)
    orders = models.PositiveIntegerField()
    squares = models.FloatField()
    cross = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "month", "category"], name="categoryrevenue_unit_month"
            )
        ]


class StoreRevenue(models.Model):
    """A store's categorised net revenue over a month, with ``orders`` (orders with a
    categorised line) and ``squares`` (sum of the squares of their categorised net amounts):
    the denominators of ``CategoryRevenue``'s shares. Kept and rebuilt with it."""

    unit = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    unit_path = models.CharField(max_length=255)
    month = models.DateField()
    revenue = models.DecimalField(max_digits=16, decimal_places=AMOUNT_PLACES)
    orders = models.PositiveIntegerField()
    squares = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["unit", "month"], name="storerevenue_unit_month")
        ]
