"""The demo's year of purchases: every store sells, with lines, returns and both channels,
and RFM's groups exist after the seed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from enseigne.commerce.models import CategoryPurchase, Order, OrderLine
from enseigne.contacts.models import Contact
from enseigne.demo.purchases import CATALOGUE, STORES
from enseigne.network.models import OrgNode
from enseigne.rfm.models import GroupSnapshot, RecordScore


def assert_a_year_of_purchases(summary: dict) -> None:
    """Checked on the demo people's seed (tests/test_demo_people.py): one seed, not two."""
    now = timezone.now()
    assert summary["orders"] == Order.objects.count() > 0
    assert summary["order_lines"] == OrderLine.objects.count()
    units = OrgNode.objects.filter(kind=OrgNode.Kind.UNIT)
    per_store: dict[str, tuple[int, int]] = {}  # orders and buyers (known customers)
    for unit in units:
        orders = Order.objects.filter(unit=unit)
        channels = set(orders.values_list("channel", flat=True))
        assert channels == {"in_store", "online"}, unit.code
        assert orders.filter(contact__isnull=True).exists(), unit.code  # anonymous tickets
        assert orders.filter(occurred_at__lt=now - dt.timedelta(days=270)).exists(), unit.code
        assert orders.filter(occurred_at__gte=now - dt.timedelta(days=30)).exists(), unit.code
        assert not orders.filter(occurred_at__gt=now).exists()
        assert (
            RecordScore.objects.filter(contact__unit=unit).values("group").distinct().count() >= 4
        )
        known = orders.filter(contact__isnull=False)
        per_store[unit.code] = (known.count(), known.values("contact").distinct().count())
    # Every line names a product of the library by SKU, with its category.
    assert not OrderLine.objects.filter(product__isnull=True).exists()
    categories = dict((sku, category) for sku, _n, category, _p in CATALOGUE)
    for sku, category in OrderLine.objects.values_list("sku", "category").distinct():
        assert categories[sku] == category
    # Each order's total is its lines' sum; returns are return lines only.
    sums: dict[int, Decimal] = {}
    for order_id, amount in OrderLine.objects.values_list("order_id", "amount"):
        sums[order_id] = sums.get(order_id, Decimal(0)) + amount
    assert dict(Order.objects.values_list("pk", "total")) == sums
    assert OrderLine.objects.filter(is_return=True, amount__gte=0).count() == 0
    assert Order.objects.filter(total__lt=0).count() > 0  # returns
    # Stores differ as their towns were described: customers of the four stores whose towns
    # visit most come back more often than those of the four that visit least (pooled: at
    # this seed's size a store has a dozen buyers, too few to order two stores one by one —
    # Lyon above Grenoble held on some days and not on others).
    by_visits = sorted(per_store, key=lambda code: STORES[code].visits)
    low, high = by_visits[: len(by_visits) // 2], by_visits[len(by_visits) // 2 :]

    def pooled(codes: list[str]) -> float:
        return sum(per_store[c][0] for c in codes) / max(1, sum(per_store[c][1] for c in codes))

    assert pooled(high) > pooled(low), per_store
    # Every buyer is scored, in their store.
    buyers = Order.objects.filter(contact__isnull=False, total__gt=0).values("contact").distinct()
    assert RecordScore.objects.count() == buyers.count()
    # The segments' purchase summary covers every buyer of a sold, categorised line.
    summarised = set(CategoryPurchase.objects.values_list("contact_id", flat=True).distinct())
    sold = OrderLine.objects.filter(is_return=False, order__contact__isnull=False).exclude(
        category=""
    )
    assert summarised == set(sold.values_list("order__contact_id", flat=True).distinct()) != set()
    # The RFM page's migration has months to compare: the groups at the end of each of the
    # last two months and today's, and some buyers moved between them.
    months = sorted(GroupSnapshot.objects.values_list("month", flat=True).distinct())
    this_month = timezone.localdate().replace(day=1)
    assert months[-1] == this_month and len(months) == 3
    last = dict(GroupSnapshot.objects.filter(month=months[-2]).values_list("contact_id", "group"))
    moved = [
        c
        for c, g in GroupSnapshot.objects.filter(month=this_month).values_list(
            "contact_id", "group"
        )
        if c in last and last[c] != g
    ]
    assert moved
    # Customers: every buyer of the year is flagged an existing customer.
    assert not Contact.objects.filter(is_customer=False, pk__in=buyers).exists()
