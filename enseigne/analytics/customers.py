"""A store's customers next to the network's median store (issue 21, "where stores see it"):
its buyers per RFM group, its records per persona and its top categories.

Each figure of the network is read in one grouped query over every store of the network
(``db_scope(ALL)``, like ``selectors.references``), and only the store's own row and
medians over the stores leave this module: never another store's row. The median store is
the median across the stores with enough people of each one's *share*, so a big store does
not set the reference; a store with too few people, or a network with too few such stores,
gets no comparison but says why. Purchases the demo generated are said as such, and a
store whose purchases are all the demo's is never called above or below anyone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Upper
from django.utils import timezone

from enseigne.commerce.models import (
    CategoryPurchase,
    CategoryRevenue,
    Order,
    OrderLine,
    StoreRevenue,
)
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.stats import Rate, compare, median, share_interval
from enseigne.network.models import OrgNode
from enseigne.personas import selectors as persona_selectors
from enseigne.rfm import selectors as rfm_selectors
from enseigne.rfm.groups import Group
from enseigne.rfm.scoring import months_before

# A store with fewer buyer records (RFM) or records with a persona is shown its figures
# but compared with nobody: a share of 12 people moves by 8 points with one of them.
MIN_PEOPLE = 30
# Fewer stores with enough people than this and the "median store" is too close to one
# store's figures (with two, it is their mean: the other store's figure follows).
MIN_STORES = 3
# A category with fewer buyers in the store is listed but not compared.
MIN_CATEGORY_BUYERS = 10
# A group or persona is called above or below the median store only when the store has, or
# would have at the median's share, at least this many people in it: 1 buyer against a
# median of 0 % is beyond chance, and says nothing.
MIN_ROW_PEOPLE = 5
TOP_CATEGORIES = 5
CATEGORY_MONTHS = 12


@dataclass
class ShareRow:
    """One group or persona: the store's count and share, the median store's share."""

    key: str
    label: str
    count: int
    share: Rate
    median: float | None
    # 'above', 'below' or '' (within chance, too few people, or demo data only)
    verdict: str = ""


@dataclass
class Shares:
    rows: list[ShareRow]
    total: int  # the store's people counted (buyers scored, or records with a persona)
    stores: int  # stores with at least MIN_PEOPLE in the median
    comparable: bool  # the store has enough people and the network enough stores
    too_few_people: bool
    too_few_stores: bool
    month: dt.date | None = None  # personas: the month whose assignment is counted


@dataclass
class CategoryRow:
    category: str
    revenue: Decimal
    share: float | None  # of the store's categorised revenue
    buyers: int
    reach: Rate  # buyers of the category among the store's RFM buyers
    median_buyers: float | None
    median_reach: float | None
    too_few_buyers: bool
    verdict: str = ""
    # Revenue over whole months (``Categories.months``), from the monthly rollup: the store's
    # share of its categorised net revenue, its 95 % interval, the median store's share.
    month_share: float | None = None
    month_interval: tuple[float, float] | None = None
    median_share: float | None = None
    share_verdict: str = ""


@dataclass
class Categories:
    rows: list[CategoryRow]
    since: dt.date
    revenue: Decimal  # the store's categorised net revenue over the period
    stores: int  # stores in the median (those the RFM median counts)
    too_few_stores: bool
    months: tuple[dt.date, dt.date] | None = None  # the revenue shares' first and last month


@dataclass
class StoreCustomers:
    rfm: Shares
    personas: Shares
    categories: Categories
    window_start: dt.datetime | None
    # Purchases the demo generated: the store's are all of them (no verdict anywhere),
    # or some of the network's are (the medians include them).
    demo_only: bool
    network_has_demo: bool


def _shares(
    mine: dict, by_store: dict[str, dict], keys: list[tuple[object, str]], *, ranked: bool
) -> Shares:
    """The store's count per key and the median store's share of each key, over the stores
    with at least ``MIN_PEOPLE`` (a store's total is the sum of its counts)."""
    totals = {path: sum(counts.values()) for path, counts in by_store.items()}
    eligible = [path for path, total in totals.items() if total >= MIN_PEOPLE]
    total = sum(mine.values())
    too_few_people = total < MIN_PEOPLE
    too_few_stores = len(eligible) < MIN_STORES
    comparable = not too_few_people and not too_few_stores
    rows = []
    for key, label in keys:
        count = mine.get(key, 0)
        share = Rate(count, total)
        middle = (
            median(by_store[path].get(key, 0) / totals[path] for path in eligible)
            if not too_few_stores
            else None
        )
        verdict = ""
        if comparable and ranked and max(count, (middle or 0) * total) >= MIN_ROW_PEOPLE:
            verdict = {"better": "above", "worse": "below"}.get(compare(share, middle), "")
        rows.append(ShareRow(str(key), label, count, share, middle, verdict))
    return Shares(rows, total, len(eligible), comparable, too_few_people, too_few_stores)


def rfm_shares(unit: OrgNode, root: str, *, ranked: bool) -> tuple[Shares, dict[str, int]]:
    """The store's buyers per RFM group beside the median store's shares, and every store's
    RFM buyers (the categories' reach is counted among them)."""
    with db_scope(ALL):
        by_store = rfm_selectors.group_counts_by_unit(root)
    keys = [(key, str(label)) for key, label in Group.choices]
    shares = _shares(by_store.get(unit.path, {}), by_store, keys, ranked=ranked)
    return shares, {path: sum(counts.values()) for path, counts in by_store.items()}


def persona_shares(unit: OrgNode, root: str, *, ranked: bool) -> Shares:
    with db_scope(ALL):
        month, by_store = persona_selectors.network_unit_counts(root)
        personas = list(persona_selectors.personas_of_root(root))
    mine = by_store.get(unit.path, {})
    keys = [(p.pk, p.name) for p in personas]
    shares = _shares(mine, by_store, keys, ranked=ranked)
    for row, persona in zip(shares.rows, personas, strict=True):
        row.key = str(persona.public_id)
    shares.month = month
    return shares


def category_figures(
    unit: OrgNode, root: str, since: dt.date, buyers_by_store: dict[str, int], *, ranked: bool
) -> Categories:
    """The store's top categories by net revenue since ``since`` (returns deducted, lines
    without a category left out), read from its own lines, with their buyers (records with a
    sold line in it) and their reach (those buyers among the store's RFM buyers,
    ``buyers_by_store``); beside them the median store's buyers and reach, from the purchase
    summaries (``commerce.CategoryPurchase``: the record's latest sold line per category, the
    rule "bought in category X in the last N days" reads), over the stores of the RFM median.

    Revenue is not compared: the network's would be a scan of every store's lines per page.
    """
    start = timezone.make_aware(dt.datetime.combine(since, dt.time.min))
    mine = list(
        OrderLine.objects.filter(order__unit=unit, order__occurred_at__gte=start)
        .exclude(category="")
        .values_list(Upper("category"))
        .annotate(
            revenue=Sum("amount"),
            buyers=Count("order__contact_id", distinct=True, filter=Q(is_return=False)),
            spelling=Max("category"),
        )
        .order_by()
    )
    revenue = sum((amount or Decimal(0) for _c, amount, _b, _s in mine), Decimal(0))
    top = sorted(mine, key=lambda row: (-(row[1] or 0), row[0]))[:TOP_CATEGORIES]
    stores = [path for path, total in buyers_by_store.items() if total >= MIN_PEOPLE]
    too_few_stores = len(stores) < MIN_STORES
    counts: dict[tuple[str, str], int] = {}
    if top and not too_few_stores:
        with db_scope(ALL):
            counts = {
                (path, category): n
                for path, category, n in CategoryPurchase.objects.filter(
                    category__in=[row[0] for row in top],
                    unit_path__startswith=root,
                    last_bought_at__gte=start,
                )
                .values_list("unit_path", "category")
                .annotate(n=Count("pk"))
                .order_by()
            }
    comparable = not too_few_stores and buyers_by_store.get(unit.path, 0) >= MIN_PEOPLE
    out = []
    for category, amount, buyers, spelling in top:
        amount = amount or Decimal(0)
        reach = Rate(buyers, buyers_by_store.get(unit.path, 0))
        median_buyers = median_reach = None
        if not too_few_stores:
            median_buyers = median(counts.get((path, category), 0) for path in stores)
            median_reach = median(
                counts.get((path, category), 0) / buyers_by_store[path] for path in stores
            )
        too_few_buyers = buyers < MIN_CATEGORY_BUYERS
        verdict = ""
        if ranked and comparable and not too_few_buyers:
            verdict = {"better": "above", "worse": "below"}.get(compare(reach, median_reach), "")
        out.append(
            CategoryRow(
                category=spelling,
                revenue=amount,
                share=float(amount / revenue) if revenue > 0 else None,
                buyers=buyers,
                reach=reach,
                median_buyers=median_buyers,
                median_reach=median_reach,
                too_few_buyers=too_few_buyers,
                verdict=verdict,
            )
        )
    categories = Categories(out, since, revenue, len(stores), too_few_stores)
    _revenue_shares(unit, root, categories, stores, buyers_by_store, ranked=ranked)
    return categories


def _revenue_shares(
    unit: OrgNode,
    root: str,
    categories: Categories,
    stores: list[str],
    buyers_by_store: dict[str, int],
    *,
    ranked: bool,
) -> None:
    """The store's share of its categorised net revenue in each top category beside the median
    store's, over the months from ``categories.since``'s to the current one, read from the
    monthly rollup (``commerce.CategoryRevenue``; one grouped query over the network). The
    median is of each store's share, over the stores the RFM median counts; a share is called
    above or below only when its 95 % interval (``stats.share_interval``) is wholly on one
    side and the category has at least ``MIN_ROW_PEOPLE`` buyers in the store."""
    first = categories.since
    keys = {row.category.upper(): row for row in categories.rows}
    with db_scope(ALL):
        totals = {
            path: (float(revenue or 0), orders or 0, squares or 0.0)
            for path, revenue, orders, squares in StoreRevenue.objects.filter(
                unit_path__startswith=root, month__gte=first
            )
            .values_list("unit_path")
            .annotate(Sum("revenue"), Sum("orders"), Sum("squares"))
            .order_by()
        }
        sums = {
            (path, category): (float(revenue or 0), orders, squares, cross)
            for path, category, revenue, orders, squares, cross in CategoryRevenue.objects.filter(
                unit_path__startswith=root, month__gte=first, category__in=list(keys)
            )
            .values_list("unit_path", "category")
            .annotate(Sum("revenue"), Sum("orders"), Sum("squares"), Sum("cross"))
            .order_by()
        }
    start = dt.datetime.combine(first, dt.time.min)
    categories.months = (first, months_before(start, -(CATEGORY_MONTHS - 1)).date())
    mine = totals.get(unit.path)
    comparable = not categories.too_few_stores and buyers_by_store.get(unit.path, 0) >= MIN_PEOPLE
    for key, row in keys.items():
        y = sums.get((unit.path, key), (0.0, 0, 0.0, 0.0))
        if mine is not None and mine[0] > 0:
            row.month_share = y[0] / mine[0]
            row.month_interval = share_interval(*y, *mine)
        if not categories.too_few_stores:
            row.median_share = median(
                sums.get((path, key), (0.0,))[0] / totals[path][0]
                for path in stores
                if path in totals and totals[path][0] > 0
            )
        interval = row.month_interval
        if (
            ranked
            and comparable
            and row.buyers >= MIN_ROW_PEOPLE
            and interval is not None
            and row.median_share is not None
        ):
            if interval[0] > row.median_share:
                row.share_verdict = "above"
            elif interval[1] < row.median_share:
                row.share_verdict = "below"


def demo_figures(unit: OrgNode, root: str, since: dt.datetime) -> tuple[bool, bool]:
    """(the store's purchases since ``since`` are all the demo's, some of the network's are)."""
    with db_scope(ALL):
        network = Order.objects.filter(unit_path__startswith=root, occurred_at__gte=since)
        network_has_demo = network.filter(source=Order.Source.DEMO).exists()
        mine = network.filter(unit=unit)
        demo_only = (
            network_has_demo
            and mine.exists()
            and not mine.exclude(source=Order.Source.DEMO).exists()
        )
    return demo_only, network_has_demo


def store_customers(unit: OrgNode, *, today: dt.date | None = None) -> StoreCustomers:
    """The dashboard's customers section for ``unit`` (the caller authorized the unit)."""
    today = today or timezone.localdate()
    root = unit.path[: OrgNode.steplen]
    # Whole months (the revenue rollup's): this month and the eleven before it.
    this_month = dt.datetime.combine(today.replace(day=1), dt.time.min)
    since = months_before(this_month, CATEGORY_MONTHS - 1).date()
    window_start = rfm_selectors.window_start_of(root)
    earliest = min(window_start, timezone.make_aware(dt.datetime.combine(since, dt.time.min)))
    demo_only, network_has_demo = demo_figures(unit, root, earliest)
    ranked = not demo_only
    rfm, buyers_by_store = rfm_shares(unit, root, ranked=ranked)
    return StoreCustomers(
        rfm=rfm,
        personas=persona_shares(unit, root, ranked=ranked),
        categories=category_figures(unit, root, since, buyers_by_store, ranked=ranked),
        window_start=window_start,
        demo_only=demo_only,
        network_has_demo=network_has_demo,
    )
