"""Segment conditions on what customers bought (issue 21).

Offered through ``contacts.segments.ExtraField`` (settings ``ENSEIGNE_SEGMENT_FIELDS``);
identity gives each a person twin for HQ. What counts:

- a *purchase* is an order with a buyer and a positive total (an order made only of
  returns is not one); "amount spent" nets returns; "number of purchases" counts orders;
- *bought in a category / a product* means a sold line (not a return) of that category
  (case aside: "Shoes" and "shoes" are one) or SKU; the category condition reads the
  buyers' summary (``summaries.CategoryPurchase``), kept by the order writers' hook;
- *first purchase* is the buyer's earliest purchase; *average basket* the mean total of
  their purchases; *favourite category* the category with the highest net amount over
  the last 365 days (ties: the first in alphabetical order).

Each compiles to "the contact is among the buyers of these orders", read inside the
reader's row-level scope like every other query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Avg, CharField, Count, Exists, Min, OuterRef, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL, Value
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.brand.selectors import assets_for_user
from enseigne.contacts.segments import (
    CHOICE,
    CHOICE_NEGATIONS,
    CHOICE_OPS,
    DATE,
    NUMBER,
    TEXT,
    WITH_DAYS,
    ExtraField,
    days_value,
)
from enseigne.network.models import User

from .cleaning import Refused, parse_amount
from .models import CategoryPurchase, Order, OrderLine

FAVOURITE_WINDOW_DAYS = 365
# "At least / less than N in the last D days" (amount spent, number of purchases).
AT_LEAST_OPS = {
    "at_least_in_last_days": NUMBER + WITH_DAYS,
    "less_than_in_last_days": NUMBER + WITH_DAYS,
}
AT_LEAST_NEGATIONS = {"less_than_in_last_days": "at_least_in_last_days"}
CATEGORY_CHOICES_SHOWN = 500


def purchases() -> QuerySet[Order]:
    return Order.objects.filter(contact__isnull=False, total__gt=0)


def _since(days: int | None) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days or 0)


def _buyers(orders: QuerySet) -> Q:
    """The contacts with one of these orders, as a semi-join (negated: an anti-join, which
    PostgreSQL plans well where ``NOT IN`` rescans a list too big for its memory)."""
    return Q(Exists(orders.filter(contact=OuterRef("pk"))))


def _having(grouped: QuerySet) -> Q:
    """The contacts whose own group of ``grouped`` (a per-contact aggregate) is kept."""
    return Q(Exists(grouped.filter(contact_id=OuterRef("pk"))))


def _amount(value, where: str) -> Decimal:
    """An amount of 0 or more (a comma or a point before the cents)."""
    text = str(value).strip() if isinstance(value, str | int | float | Decimal) else ""
    try:
        amount = parse_amount(text, decimal_comma="," in text and "." not in text)
    except (Refused, ValueError, TypeError):
        amount = None
    if amount is None or amount < 0:
        raise ValidationError(
            _("%(where)s: give an amount of 0 or more, such as 49.90.") % {"where": where}
        )
    return amount


def _count(value, where: str) -> int:
    try:
        count = int(str(value).strip())
    except (TypeError, ValueError):
        count = -1
    if count < 1:
        raise ValidationError(_("%(where)s: give a whole number from 1.") % {"where": where})
    return count


def _longest(name: str) -> int:
    field = OrderLine._meta.get_field(name)
    assert isinstance(field, CharField)
    return field.max_length or 0


def _label(value, where: str, limit: int) -> str:
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not text or len(text) > limit or "\x00" in text:
        raise ValidationError(
            _("%(where)s: give a category or product code of %(most)s characters at most.")
            % {"where": where, "most": limit}
        )
    return text


def _sold_lines(days: int | None) -> QuerySet[OrderLine]:
    lines = OrderLine.objects.filter(is_return=False, order__contact__isnull=False)
    if days is not None:
        lines = lines.filter(order__occurred_at__gte=_since(days))
    return lines


def _bought(user: User, op: str, value, where: str, days: int | None) -> Q:
    if op in {"ever", "never"}:
        did = _buyers(purchases())
        return did if op == "ever" else ~did
    did = _buyers(purchases().filter(occurred_at__gte=_since(days_value(value, where))))
    return did if op == "any_in_last_days" else ~did


def _category(user: User, op: str, value, where: str, days: int | None) -> Q:
    category = _label(value, where, _longest("category"))
    # The buyers' summary (one row per buyer and category, its latest sold line): an index
    # range on (category, unit, time) rather than every candidate's orders and lines. Both sides
    # go through the database's UPPER, as the summary was written (case-blind).
    recent = CategoryPurchase.objects.filter(category=Upper(Value(category)))
    if days is not None:
        recent = recent.filter(last_bought_at__gte=_since(days))
    # The unit as well as the contact: true of every row (a row is its record's), it lets
    # the planner range over the units in scope only (the index leads with category, unit).
    did = Q(Exists(recent.filter(contact=OuterRef("pk"), unit=OuterRef("unit"))))
    return did if op == "category_in_last_days" else ~did


def _product(user: User, op: str, value, where: str, days: int | None) -> Q:
    sku = _label(value, where, _longest("sku"))
    did = Q(Exists(_sold_lines(days).filter(sku=sku, order__contact=OuterRef("pk"))))
    return did if op == "sku_in_last_days" else ~did


def _spent(user: User, op: str, value, where: str, days: int | None) -> Q:
    amount = _amount(value, where)
    spent = (
        Order.objects.filter(contact__isnull=False, occurred_at__gte=_since(days))
        .values("contact_id")
        .annotate(net=Sum("total"))
    )
    enough = _having(spent.filter(net__gte=amount))
    # "Less than X" includes those who spent nothing in the period.
    return enough if op == "at_least_in_last_days" else ~enough


def _count_of(user: User, op: str, value, where: str, days: int | None) -> Q:
    count = _count(value, where)
    many = (
        purchases()
        .filter(occurred_at__gte=_since(days))
        .values("contact_id")
        .annotate(n=Count("pk"))
        .filter(n__gte=count)
        .values("contact_id")
    )
    return _having(many) if op == "at_least_in_last_days" else ~_having(many)


def _first(user: User, op: str, value, where: str, days: int | None) -> Q:
    firsts = purchases().values("contact_id").annotate(first=Min("occurred_at"))
    if op == "in_last_days":
        return _having(firsts.filter(first__gte=_since(days_value(value, where))))
    try:
        day = dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(
            _("%(where)s: %(value)r is not a date (YYYY-MM-DD).") % {"where": where, "value": value}
        ) from None
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    end = start + dt.timedelta(days=1)
    found = {
        "before": firsts.filter(first__lt=start),
        "after": firsts.filter(first__gte=end),
        "on": firsts.filter(first__gte=start, first__lt=end),
    }[op]
    return _having(found)


def _basket(user: User, op: str, value, where: str, days: int | None) -> Q:
    amount = _amount(value, where)
    baskets = purchases().values("contact_id").annotate(mean=Avg("total"))
    found = (
        baskets.filter(mean__gt=amount) if op == "greater_than" else baskets.filter(mean__lt=amount)
    )
    return _having(found)


def _favourite(user: User, op: str, value, where: str, days: int | None) -> Q:
    category = _label(value, where, _longest("category"))
    quote = connection.ops.quote_name
    orders, lines = quote(Order._meta.db_table), quote(OrderLine._meta.db_table)
    since = connection.ops.adapt_datetimefield_value(_since(FAVOURITE_WINDOW_DAYS))
    # Each buyer's categories (case aside: "Shoes" and "shoes" are one) by net amount over
    # the window, the best first (ties: the first name); the buyer is selected when the
    # best is this one and nets above zero.
    favourite = RawSQL(  # noqa: S611 (table names from the models' metadata, values as parameters)
        f"""
        SELECT contact_id FROM (
            SELECT contact_id, category, net, ROW_NUMBER() OVER (
                PARTITION BY contact_id ORDER BY net DESC, category
            ) AS place
            FROM (
                SELECT o.contact_id, LOWER(l.category) AS category, SUM(l.amount) AS net
                FROM {lines} l JOIN {orders} o ON o.id = l.order_id
                WHERE o.contact_id IS NOT NULL AND o.occurred_at >= %s AND l.category <> ''
                GROUP BY o.contact_id, LOWER(l.category)
            ) AS nets
        ) AS ranked
        WHERE place = 1 AND net > 0 AND category = LOWER(%s)
        """,  # noqa: S608 (table names from the models' metadata, values as parameters)
        [since, category],
    )
    found = Q(pk__in=favourite)
    return found if op == "equals" else ~found


def _category_choices(user: User) -> list[list[str]]:
    categories = (
        assets_for_user(user)
        .filter(kind="product")
        .exclude(data__category="")
        .values_list("data__category", flat=True)
        .distinct()[:CATEGORY_CHOICES_SHOWN]
    )
    return [[c, c] for c in sorted({str(c) for c in categories if c})]


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    days = WITH_DAYS
    return [
        ExtraField(
            field="bought",
            label=gettext_lazy("Purchases"),
            ops={"any_in_last_days": NUMBER, "none_in_last_days": NUMBER, "ever": "", "never": ""},
            compile=_bought,
            negations={"none_in_last_days": "any_in_last_days", "never": "ever"},
        ),
        ExtraField(
            field="bought_category",
            label=gettext_lazy("Bought in a category"),
            ops={
                "category_in_last_days": CHOICE + days,
                "not_category_in_last_days": CHOICE + days,
            },
            compile=_category,
            choices=_category_choices,
            negations={"not_category_in_last_days": "category_in_last_days"},
        ),
        ExtraField(
            field="bought_product",
            label=gettext_lazy("Bought a product"),
            ops={"sku_in_last_days": TEXT + days, "not_sku_in_last_days": TEXT + days},
            compile=_product,
            negations={"not_sku_in_last_days": "sku_in_last_days"},
        ),
        ExtraField(
            field="spent",
            label=gettext_lazy("Amount spent (€, net of returns)"),
            ops=AT_LEAST_OPS,
            compile=_spent,
            negations=AT_LEAST_NEGATIONS,
            per_person=False,
        ),
        ExtraField(
            field="purchase_count",
            label=gettext_lazy("Number of purchases"),
            ops=AT_LEAST_OPS,
            compile=_count_of,
            negations=AT_LEAST_NEGATIONS,
            per_person=False,
        ),
        ExtraField(
            field="first_purchase",
            label=gettext_lazy("First purchase"),
            ops={"before": DATE, "after": DATE, "on": DATE, "in_last_days": NUMBER},
            compile=_first,
            per_person=False,
        ),
        ExtraField(
            field="average_basket",
            label=gettext_lazy("Average basket (€)"),
            ops={"greater_than": NUMBER, "less_than": NUMBER},
            compile=_basket,
            per_person=False,
        ),
        ExtraField(
            field="favourite_category",
            label=gettext_lazy("Favourite category (last 12 months)"),
            ops=CHOICE_OPS,
            compile=_favourite,
            choices=_category_choices,
            negations=CHOICE_NEGATIONS,
            per_person=False,
        ),
    ]
