"""Recording orders: a till's batch, one order from the conversions endpoint, a CSV import.

Every order is cleaned first (``cleaning``); a refused order is reported with its index,
field and rule and the others are recorded. An order id the unit already has is a
duplicate: reported as such, nothing written (an API retry, a file imported twice). A
buyer is found in the unit only: another unit's contact id is answered exactly like an
unknown one. A line whose SKU the library does not know is kept and flagged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.brand.models import Asset
from enseigne.commerce.cleaning import CleanOrder, Problem, Rule, buyer_text, clean_order
from enseigne.commerce.models import Order, OrderLine
from enseigne.commerce.order_hooks import orders_written
from enseigne.commerce.revenue import orders_tallied
from enseigne.contacts.models import Contact
from enseigne.contacts.services import unit_country
from enseigne.contacts.validation import FieldError, clean_email, clean_phone
from enseigne.lib.bulk import bulk_insert, collector_paused
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User

MAX_BATCH = 1000


class Status:
    CREATED = "created"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(slots=True)
class Outcome:
    """What became of one order of a batch (``index``: its place in the batch, from 0)."""

    index: int
    order_id: str
    status: str
    problems: list[Problem] = field(default_factory=list)
    unknown_skus: list[str] = field(default_factory=list)
    order_pk: int | None = None
    # The order is (or, in a dry run, would be) kept all the same: an e-mail or phone left
    # out, or one no contact of the store has (``_buyers``); none on a duplicate.
    warnings: list[Problem] = field(default_factory=list)
    buyer_pk: int | None = None

    @property
    def without_buyer(self) -> bool:
        """Recorded without the buyer its e-mail or phone names."""
        return self.status == Status.CREATED and self.buyer_pk is None and bool(self.warnings)


def may_record(actor: User | None, unit: OrgNode) -> None:
    """Orders are sales: who may record a conversion may record an order (one capability)."""
    if actor is not None and not access_for(actor).can(Capability.RECORD_CONVERSIONS, unit):
        raise PermissionDenied


def unknown_contact_message(unit: OrgNode) -> str:
    # The same words for another unit's contact as for none at all: nothing leaks.
    return _("No contact with this id in unit %(unit)s.") % {"unit": unit.name}


# What an order kept without the buyer its e-mail or phone names says (the batch API's
# warnings and the sales import's report: one rule, one wording).
KEPT_WITHOUT = {
    "email": gettext_lazy("Order kept, without this e-mail: %(detail)s."),
    "phone": gettext_lazy("Order kept, without this phone number: %(detail)s."),
}
NO_CONTACT = {
    "email": gettext_lazy("Order kept without a buyer: no contact of this store has this e-mail."),
    "phone": gettext_lazy(
        "Order kept without a buyer: no contact of this store has this phone number."
    ),
}
# A value a warning or report line repeats is cut here (the report's column is as long).
SHOWN_VALUE = 255


def address_problem(unit: OrgNode, target: str, value: str) -> tuple[str, str | None]:
    """An e-mail or phone as contacts store it, or why it is not valid (None, ``value``
    empty). A phone is read in the store's country."""
    if not value:
        return "", None
    try:
        if target == "email":
            return clean_email(value), None
        return clean_phone(value, unit_country(unit)), None
    except FieldError as error:
        return "", str(error)


def address_problems(unit: OrgNode, fields: Mapping) -> list[Problem]:
    """The e-mail and phone of an order refused for other reasons, as problems to correct
    with the rest (every problem of a row in one pass); none when a contact id names the
    buyer (the e-mail and phone are then not read)."""
    if not isinstance(fields, Mapping) or fields.get("contact"):
        return []
    found = []
    for target in ("email", "phone"):
        value = buyer_text(fields.get(target))
        detail = address_problem(unit, target, value)[1]
        if detail is not None:
            found.append(Problem(target, Rule.INVALID_ADDRESS, detail, value[:SHOWN_VALUE]))
    return found


def _buyers(
    unit: OrgNode, outcomes: Sequence[Outcome], orders: Sequence[CleanOrder]
) -> dict[int, int | Problem | None]:
    """Each order's buyer (contact pk), None for an order with no known buyer, or the
    problem that refuses it (a contact id the unit does not have); three queries at most,
    all within ``unit``.

    A file or a till records sales that happened, so a buyer the order cannot name costs it
    its buyer, never the sale (issue 21): an e-mail or phone that is not valid is left out
    (the phone, if any, then finds the buyer) and one that names no contact of the store
    leaves the order without a buyer; each is a warning on the order's outcome. Only a
    contact *id* that is not the store's refuses the order."""
    found: dict[int, int | Problem | None] = {}
    by_id: dict[uuid.UUID, list[int]] = {}
    wanted: dict[str, dict[str, list[int]]] = {"email": {}, "phone": {}}
    for position, order in enumerate(orders):
        found[position] = None
        if order.contact_id:
            try:
                by_id.setdefault(uuid.UUID(order.contact_id), []).append(position)
            except ValueError:
                found[position] = Problem(
                    "contact", Rule.UNKNOWN_CONTACT, unknown_contact_message(unit)
                )
            continue
        for target in ("email", "phone"):  # the e-mail, else (or when it is not valid) the phone
            value = getattr(order, target)
            if not value:
                continue
            address, detail = address_problem(unit, target, value)
            if detail is None:
                wanted[target].setdefault(address, []).append(position)
                break
            outcomes[position].warnings.append(
                Problem(
                    target,
                    Rule.INVALID_ADDRESS,
                    KEPT_WITHOUT[target] % {"detail": detail},
                    value[:SHOWN_VALUE],
                )
            )
    contacts = Contact.objects.filter(unit=unit)
    if by_id:
        by_public_id = dict(
            contacts.filter(public_id__any=list(by_id)).values_list("public_id", "pk")
        )
        for public_id, positions in by_id.items():
            for position in positions:
                pk = by_public_id.get(public_id)
                found[position] = (
                    pk
                    if pk is not None
                    else Problem("contact", Rule.UNKNOWN_CONTACT, unknown_contact_message(unit))
                )
    for lookup, positions_of in wanted.items():
        if not positions_of:
            continue
        known = dict(
            contacts.filter(**{f"{lookup}__any": list(positions_of)}).values_list(lookup, "pk")
        )
        for value, positions in positions_of.items():
            for position in positions:
                found[position] = known.get(value)
                if found[position] is None:  # an unknown buyer: an anonymous sale, said so
                    outcomes[position].warnings.append(
                        Problem(
                            lookup,
                            Rule.UNKNOWN_CONTACT,
                            str(NO_CONTACT[lookup]),
                            getattr(orders[position], lookup)[:SHOWN_VALUE],
                        )
                    )
    return found


@dataclass(frozen=True, slots=True)
class Product:
    pk: int
    category: str


def products_for(unit: OrgNode, skus: Iterable[str]) -> dict[str, Product]:
    """The library's product for each SKU the unit sees: its own first, else HQ's shared
    with the nearest node above it (then the oldest). Reads the SKU and category only (by
    the index on a product's SKU), not the items' whole data."""
    skus = list(set(skus))
    if not skus:
        return {}
    step = OrgNode.steplen
    above = [unit.path[:end] for end in range(step, len(unit.path) + 1, step)]
    candidates = (
        Asset.objects.filter(kind=Asset.Kind.PRODUCT)
        # Cast: a plain text array (a JSON key's own IN lookup prepares each SKU as JSON,
        # slowly); text to text adds no cast in SQL, so the expression index still serves.
        .annotate(
            product_sku=Cast(KT("data__sku"), TextField()),
            product_category=KT("data__category"),
        )
        .filter(product_sku__any=skus, unit_path__in=["", unit.path], shared_path__in=above)
        .values_list("pk", "product_sku", "product_category", "unit_path", "shared_path")
    )
    best: dict[str, tuple[tuple, Product]] = {}
    for pk, sku, category, unit_path, shared_path in candidates:
        rank = (unit_path != unit.path, -len(shared_path), pk)
        if sku not in best or rank < best[sku][0]:
            best[sku] = (rank, Product(pk, category or ""))
    return {sku: product for sku, (_rank, product) in best.items()}


def orders_record(
    *,
    actor: User | None,
    unit: OrgNode,
    orders: Sequence[Mapping],
    source: str = Order.Source.API,
    decimal_comma: bool = False,
    strict: bool = True,
    dry_run: bool = False,
) -> list[Outcome]:
    """Record a batch of orders for ``unit``; one outcome per order, in the batch's order.

    ``dry_run``: every check, the duplicates and the unknown SKUs as if recording, and no write."""
    may_record(actor, unit)
    if len(orders) > MAX_BATCH:
        raise ValueError("orders_record takes at most MAX_BATCH orders")  # the entry points say so
    with collector_paused():
        return _record(unit, orders, source, decimal_comma, strict, dry_run)


def _record(
    unit: OrgNode,
    orders: Sequence[Mapping],
    source: str,
    decimal_comma: bool,
    strict: bool,
    dry_run: bool,
) -> list[Outcome]:
    now = timezone.now()
    outcomes: list[Outcome] = []
    cleaned: list[tuple[Outcome, CleanOrder]] = []
    first_of: dict[str, int] = {}
    for index, raw in enumerate(orders):
        order, problems = clean_order(raw, decimal_comma=decimal_comma, now=now, strict=strict)
        raw_id = raw.get("order_id") if isinstance(raw, Mapping) else None
        outcome = Outcome(index, order.external_id if order else str(raw_id or "")[:100], "")
        outcomes.append(outcome)
        if order is None:
            outcome.status = Status.REFUSED
            outcome.problems = problems + address_problems(unit, raw)
        elif order.external_id in first_of:  # the same order twice in one batch: counted once
            outcome.status = Status.DUPLICATE
        else:
            first_of[order.external_id] = index
            cleaned.append((outcome, order))
    buyers = _buyers(
        unit, [outcome for outcome, _order in cleaned], [order for _outcome, order in cleaned]
    )
    to_write: list[tuple[Outcome, CleanOrder, int | None]] = []
    for position, (outcome, order) in enumerate(cleaned):
        buyer = buyers[position]
        if isinstance(buyer, Problem):
            outcome.status, outcome.problems = Status.REFUSED, [buyer]
        else:
            outcome.buyer_pk = buyer
            to_write.append((outcome, order, buyer))
    if to_write:
        _write(unit, to_write, source, now, dry_run=dry_run)
    return outcomes


def _write(
    unit: OrgNode,
    to_write: list[tuple[Outcome, CleanOrder, int | None]],
    source: str,
    now,
    *,
    dry_run: bool = False,
) -> None:
    products = products_for(unit, (line.sku for _o, order, _b in to_write for line in order.lines))
    with transaction.atomic():
        known = set(
            Order.objects.filter(
                unit=unit, external_id__any=[order.external_id for _o, order, _b in to_write]
            ).values_list("external_id", flat=True)
        )
        fresh = []
        for outcome, order, buyer in to_write:
            if order.external_id in known:
                outcome.status, outcome.warnings = Status.DUPLICATE, []
            else:
                fresh.append((outcome, order, buyer))
                outcome.unknown_skus = list(
                    dict.fromkeys(line.sku for line in order.lines if line.sku not in products)
                )
        if dry_run:
            for outcome, _order, _buyer in fresh:
                outcome.status = Status.CREATED
            return
        if not fresh:
            return
        # PostgreSQL: a concurrent request may insert the same order id meanwhile; its rows
        # are skipped (ON CONFLICT) and reported as duplicates. SQLite writes one at a time.
        racing = connection.vendor == "postgresql"
        inserted = bulk_insert(
            Order,
            (
                "public_id",
                "unit",
                "unit_path",
                "external_id",
                "contact",
                "occurred_at",
                "total",
                "channel",
                "source",
                "created_at",
            ),
            (
                (
                    uuid.uuid4(),
                    unit.pk,
                    unit.path,
                    order.external_id,
                    buyer,
                    order.occurred_at,
                    order.total,
                    order.channel,
                    source,
                    now,
                )
                for _outcome, order, buyer in fresh
            ),
            ignore_conflicts=racing,
            returning=("id", "external_id"),
        )
        pk_of = {external_id: pk for pk, external_id in inserted}
        lines = []
        tallied = []
        for outcome, order, _buyer in fresh:
            pk = pk_of.get(order.external_id)
            if pk is None:
                outcome.status, outcome.unknown_skus, outcome.warnings = Status.DUPLICATE, [], []
                continue
            outcome.status, outcome.order_pk = Status.CREATED, pk
            categories: list[tuple[str, Decimal]] = []
            tallied.append((order.occurred_at, categories))
            for position, line in enumerate(order.lines):
                product = products.get(line.sku)
                category = line.category or (product.category if product else "")
                categories.append((category, line.amount))
                lines.append(
                    (
                        pk,
                        unit.path,
                        position,
                        line.sku,
                        product.pk if product else None,
                        product is None,
                        category,
                        line.quantity,
                        line.unit_amount,
                        line.amount,
                        line.discount,
                        line.is_return,
                    )
                )
        if lines:
            bulk_insert(
                OrderLine,
                (
                    "order",
                    "unit_path",
                    "position",
                    "sku",
                    "product",
                    "unknown_sku",
                    "category",
                    "quantity",
                    "unit_amount",
                    "amount",
                    "discount",
                    "is_return",
                ),
                lines,
            )
        # Each store's monthly revenue per category (the dashboard's comparison).
        orders_tallied(unit, tallied)
        # The purchase summary from these orders' lines; later apps (RFM) update their
        # buyers' figures once this transaction commits.
        orders_written(
            (buyer for _outcome, order, buyer in fresh if order.external_id in pk_of),
            order_ids=[pk for pk, _external_id in inserted],
        )


def order_record(
    *,
    actor: User | None,
    unit: OrgNode,
    order: Mapping,
    source: str = Order.Source.API,
    decimal_comma: bool = False,
) -> Outcome:
    """One order (the conversions endpoint's): its outcome, with ``order_pk`` when it is
    recorded now or was before."""
    outcome = orders_record(
        actor=actor,
        unit=unit,
        orders=[order],
        source=source,
        decimal_comma=decimal_comma,
        strict=False,
    )[0]
    if outcome.status == Status.DUPLICATE:
        outcome.order_pk = (
            Order.objects.filter(unit=unit, external_id=outcome.order_id)
            .values_list("pk", flat=True)
            .first()
        )
    return outcome
