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

from enseigne.analytics.stats import Rate, compare, median
from enseigne.commerce.models import Order, OrderLine
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import OrgNode
from enseigne.personas import selectors as persona_selectors
from enseigne.rfm import selectors as rfm_selectors
from enseigne.rfm.groups import Group

# A store with fewer buyer records (RFM) or records with a persona is shown its figures
# but compared with nobody: a share of 12 people moves by 8 points with one of them.
MIN_PEOPLE = 30
# Fewer stores with enough people than this and the "median store" is too close to one
# store's figures (with two, it is their mean: the other store's figure follows).
MIN_STORES = 3
# A category with fewer buyers in the store is listed but not compared.
MIN_CATEGORY_BUYERS = 10
TOP_CATEGORIES = 5
CATEGORY_DAYS = 365


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
    buyers: int
    share: float | None  # of the store's categorised revenue
    median_revenue: float | None
    median_buyers: float | None
    median_share: float | None
    too_few_buyers: bool


@dataclass
class Categories:
    rows: list[CategoryRow]
    since: dt.date
    revenue: Decimal  # the store's categorised net revenue over the period
    stores: int  # stores with a categorised sale over the period (the median's)
    too_few_stores: bool


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
        if comparable and ranked:
            verdict = {"better": "above", "worse": "below"}.get(compare(share, middle), "")
        rows.append(ShareRow(str(key), label, count, share, middle, verdict))
    return Shares(rows, total, len(eligible), comparable, too_few_people, too_few_stores)


def rfm_shares(unit: OrgNode, root: str, *, ranked: bool) -> Shares:
    with db_scope(ALL):
        by_store = rfm_selectors.group_counts_by_unit(root)
    keys = [(key, str(label)) for key, label in Group.choices]
    return _shares(by_store.get(unit.path, {}), by_store, keys, ranked=ranked)


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


def category_figures(unit: OrgNode, root: str, since: dt.date) -> Categories:
    """The store's top categories by net revenue since ``since`` (returns deducted, lines
    without a category left out) with their buyers (records with a sold line in it), and the
    median store's revenue, buyers and share for each: one grouped query over the network's
    lines, categories as ``UPPER`` spells them (the purchase summaries' rule)."""
    start = timezone.make_aware(dt.datetime.combine(since, dt.time.min))
    with db_scope(ALL):
        rows = list(
            OrderLine.objects.filter(unit_path__startswith=root, order__occurred_at__gte=start)
            .exclude(category="")
            .values_list("unit_path", Upper("category"))
            .annotate(
                revenue=Sum("amount"),
                buyers=Count("order__contact_id", distinct=True, filter=Q(is_return=False)),
                spelling=Max("category"),
            )
            .order_by()
        )
    by_store: dict[str, dict[str, tuple[Decimal, int]]] = {}
    spelled: dict[str, str] = {}
    for path, category, revenue, buyers, spelling in rows:
        by_store.setdefault(path, {})[category] = (revenue or Decimal(0), buyers)
        if path == unit.path:
            spelled[category] = spelling
    totals = {path: sum(r for r, _b in cats.values()) for path, cats in by_store.items()}
    stores = [path for path, total in totals.items() if total > 0]
    too_few_stores = len(stores) < MIN_STORES
    mine = by_store.get(unit.path, {})
    revenue = totals.get(unit.path, Decimal(0))
    top = sorted(mine.items(), key=lambda item: (-item[1][0], item[0]))[:TOP_CATEGORIES]
    out = []
    for category, (amount, buyers) in top:

        def median_of(value, category=category):
            if too_few_stores:
                return None
            return median(value(path, by_store[path].get(category)) for path in stores)

        out.append(
            CategoryRow(
                category=spelled.get(category, category),
                revenue=amount,
                buyers=buyers,
                share=float(amount / revenue) if revenue > 0 else None,
                median_revenue=median_of(lambda _p, cell: float(cell[0]) if cell else 0.0),
                median_buyers=median_of(lambda _p, cell: cell[1] if cell else 0),
                median_share=median_of(lambda p, cell: float(cell[0] / totals[p]) if cell else 0.0),
                too_few_buyers=buyers < MIN_CATEGORY_BUYERS,
            )
        )
    return Categories(out, since, revenue, len(stores), too_few_stores)


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
    since = today - dt.timedelta(days=CATEGORY_DAYS - 1)
    window_start = rfm_selectors.window_start_of(root)
    earliest = min(window_start, timezone.make_aware(dt.datetime.combine(since, dt.time.min)))
    demo_only, network_has_demo = demo_figures(unit, root, earliest)
    ranked = not demo_only
    return StoreCustomers(
        rfm=rfm_shares(unit, root, ranked=ranked),
        personas=persona_shares(unit, root, ranked=ranked),
        categories=category_figures(unit, root, since),
        window_start=window_start,
        demo_only=demo_only,
        network_has_demo=network_has_demo,
    )
