"""A year of purchases for the demo: every store's customers buy the catalogue's products,
in store and online, with returns, so RFM groups, purchase conditions and charts show data.

The catalogue goes into HQ's library through the catalogue import (as HQ would load it).
Each store differs by what its town is given here (how often its customers come back, its
basket, its online share, its favourite categories), never by how the demo happened to draw
its contacts; each customer's orders follow their loyalty tier, when they became a contact,
and whether they lapsed. Orders are written in bulk (a till's API would take a minute for a
year) and marked ``demo``; RFM's full run then scores every store and the network.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from enseigne.brand.catalogue import catalogue_import
from enseigne.brand.models import Asset
from enseigne.commerce.models import Order, OrderLine
from enseigne.commerce.revenue import rebuild as rebuild_category_revenue
from enseigne.commerce.summaries import rebuild as rebuild_purchase_summary
from enseigne.contacts.models import Contact
from enseigne.network.models import OrgNode, User
from enseigne.rfm.scoring import full_run, months_before, networks
from enseigne.rfm.snapshots import snapshot_month

# SKU, name, category, price (euros). The first four are the brand kit's products (with
# their pictures, in the campaigns' templates); the import loads the others.
BRAND_KIT_PRODUCTS = 4
CATALOGUE = [
    ("LUM-ARC-01", "Lampe Arc laiton", "Luminaires", "129.00"),
    ("TEX-LIN-04", "Coussin lin lavé", "Textile", "35.00"),
    ("DEC-VAS-02", "Vase grès émaillé", "Décoration", "49.00"),
    ("PAR-BOU-07", "Bougie Ambre & cèdre", "Parfums d'intérieur", "24.00"),
    ("LUM-SUS-02", "Suspension rotin", "Luminaires", "89.00"),
    ("LUM-APP-03", "Applique opaline", "Luminaires", "69.00"),
    ("LUM-CHE-05", "Lampe de chevet céramique", "Luminaires", "59.00"),
    ("LUM-GUI-06", "Guirlande lumineuse coton", "Luminaires", "29.00"),
    ("TEX-PLA-01", "Plaid laine mérinos", "Textile", "79.00"),
    ("TEX-RID-02", "Rideau lin naturel", "Textile", "65.00"),
    ("TEX-TAP-03", "Tapis berbère 160×230", "Textile", "249.00"),
    ("TEX-NAP-05", "Nappe lin brodée", "Textile", "55.00"),
    ("DEC-MIR-01", "Miroir soleil doré", "Décoration", "119.00"),
    ("DEC-CAD-03", "Cadre chêne 30×40", "Décoration", "25.00"),
    ("DEC-COR-04", "Corbeille jonc de mer", "Décoration", "39.00"),
    ("DEC-HOR-05", "Horloge murale noyer", "Décoration", "75.00"),
    ("PAR-DIF-01", "Diffuseur Figuier", "Parfums d'intérieur", "32.00"),
    ("PAR-BOU-02", "Bougie Fleur d'oranger", "Parfums d'intérieur", "24.00"),
    ("PAR-SPR-03", "Brume d'intérieur Lin blanc", "Parfums d'intérieur", "19.00"),
    ("TAB-ASS-01", "Assiettes grès (lot de 4)", "Arts de la table", "48.00"),
    ("TAB-VER-02", "Verres soufflés (lot de 6)", "Arts de la table", "42.00"),
    ("TAB-CAR-03", "Carafe verre recyclé", "Arts de la table", "28.00"),
    ("TAB-PLA-04", "Plat de service olivier", "Arts de la table", "65.00"),
    ("MOB-TAB-01", "Table d'appoint rotin", "Mobilier", "149.00"),
    ("MOB-ETA-02", "Étagère murale chêne", "Mobilier", "99.00"),
    ("MOB-TAB-03", "Tabouret velours", "Mobilier", "189.00"),
    ("MOB-CON-04", "Console métal et bois", "Mobilier", "329.00"),
]


@dataclass(frozen=True)
class StoreTraits:
    """What a store's customers do, as its manager would describe it."""

    visits: float  # orders a year of a regular ("argent") customer
    basket: float  # items a visit, relative to the network
    online: float  # share of orders placed on the web shop for this store
    lapse: float  # share of customers who stopped coming during the year
    favourites: tuple[str, ...]  # categories bought three times as often here


STORES = {
    # Lyon: the flagship, loyal customers and large baskets (the pilot store).
    "lyon": StoreTraits(3.4, 1.2, 0.18, 0.12, ("Luminaires", "Mobilier")),
    "lille": StoreTraits(2.6, 1.0, 0.28, 0.16, ("Textile", "Luminaires")),
    "rouen": StoreTraits(2.0, 0.9, 0.14, 0.22, ("Arts de la table",)),
    "marseille": StoreTraits(2.2, 0.95, 0.32, 0.2, ("Parfums d'intérieur", "Décoration")),
    # Grenoble: students and young workers, small baskets, many buy online.
    "grenoble": StoreTraits(1.8, 0.85, 0.38, 0.25, ("Textile", "Parfums d'intérieur")),
    "nantes": StoreTraits(2.9, 1.05, 0.2, 0.14, ("Décoration", "Arts de la table")),
    "bordeaux": StoreTraits(2.4, 1.25, 0.24, 0.17, ("Arts de la table", "Mobilier")),
    "rennes": StoreTraits(2.1, 0.9, 0.16, 0.2, ("Textile", "Parfums d'intérieur")),
}
DEFAULT_TRAITS = StoreTraits(2.3, 1.0, 0.22, 0.18, ())
LOYALTY = {"bronze": 0.7, "argent": 1.0, "or": 2.2}
# Home decor sells in December and at the January and summer sales; August is quiet.
MONTH_WEIGHT = {1: 1.2, 2: 0.8, 3: 0.9, 4: 0.9, 5: 1.0, 6: 1.0,
                7: 1.1, 8: 0.6, 9: 0.9, 10: 1.0, 11: 1.3, 12: 2.0}  # fmt: skip
SALES_MONTHS = {1, 7}
RETURN_RATE = 0.05
ANONYMOUS_SHARE = 0.3  # till tickets with no known customer
DAYS = 365


def catalogue_csv() -> bytes:
    lines = ["Référence;Libellé;Famille;Prix"]
    lines += [
        f"{sku};{name};{category};{price.replace('.', ',')}"
        for sku, name, category, price in CATALOGUE[BRAND_KIT_PRODUCTS:]
    ]
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def seed_purchases(
    root: OrgNode, units: dict[str, OrgNode], hq: User, random_seed: int = 42
) -> dict:
    """The catalogue, a year of every store's orders with lines, then RFM's full run."""
    catalogue_import(
        actor=hq, node=root, own=False, file_name="catalogue.csv", content=catalogue_csv()
    )
    products = {
        str(asset.data.get("sku")): asset
        for asset in Asset.objects.filter(kind=Asset.Kind.PRODUCT, unit_path="")
    }
    rng = random.Random(random_seed * 7919 + 21)  # its own draws: earlier stages stay as they were
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    orders: list[Order] = []
    lines: list[list[OrderLine]] = []
    for code, unit in sorted(units.items()):
        _store_orders(rng, unit, STORES.get(code, DEFAULT_TRAITS), products, now, orders, lines)
    Order.objects.bulk_create(orders, batch_size=2000)
    flat = []
    for order, order_lines in zip(orders, lines, strict=True):
        for line in order_lines:
            line.order = order
            flat.append(line)
    OrderLine.objects.bulk_create(flat, batch_size=5000)
    # Written in bulk, around the order hooks: the segments' purchase summary from them.
    rebuild_purchase_summary()
    rebuild_category_revenue()  # and the stores' monthly revenue per category
    # The groups as they stood at the end of the last two months, then today's: the RFM page's
    # month-to-month migration has months to compare, as after a season of nightly runs.
    this_month = timezone.localtime(now).replace(day=1, hour=0)  # the pictures' months are local
    for back in (2, 1):
        month_end = months_before(this_month, back - 1) - dt.timedelta(seconds=1)
        full_run(as_of=month_end)
        for root in networks():
            snapshot_month(root, as_of=month_end)
    full_run(as_of=now)
    for root in networks():
        snapshot_month(root, as_of=now)
    return {"orders": len(orders), "order_lines": len(flat)}


def _store_orders(rng, unit, traits, products, now, orders, lines) -> None:
    weights = [3.0 if category in traits.favourites else 1.0 for _s, _n, category, _p in CATALOGUE]
    start = now - dt.timedelta(days=DAYS)
    counter = 0

    def add(contact_id, when, channel, returned_from=None):
        nonlocal counter
        counter += 1
        prefix = "WEB" if channel == Order.Channel.ONLINE else unit.code[:3].upper()
        if returned_from is None:
            order_lines = _lines(rng, unit, traits, weights, products, when)
        else:
            order_lines = [_returned(unit, rng.choice(returned_from))]
        orders.append(
            Order(
                unit=unit,
                unit_path=unit.path,
                external_id=f"{prefix}-{when:%y%m%d}-{counter:05d}",
                contact_id=contact_id,
                occurred_at=when,
                total=sum((line.amount for line in order_lines), Decimal("0.00")),
                channel=channel,
                source=Order.Source.DEMO,
            )
        )
        lines.append(order_lines)
        return order_lines

    customers = Contact.objects.filter(unit=unit, is_customer=True).order_by("pk")
    customer_orders = 0
    for contact_id, created_at, attributes in customers.values_list(
        "pk", "created_at", "attributes"
    ):
        first = max(start, created_at)
        span = (now - first).total_seconds()
        if span <= 3600:
            continue
        loyalty = LOYALTY.get((attributes or {}).get("loyalty_tier", ""), 0.5)
        last = now
        if rng.random() < traits.lapse:  # stopped coming: their last visit months ago
            last = first + dt.timedelta(seconds=span * rng.uniform(0.05, 0.6))
        share = (last - first).total_seconds() / (DAYS * 86400)
        count = max(1, _poisson(rng, traits.visits * loyalty * max(share, 0.08)))
        online_share = min(0.9, traits.online * rng.choice((0.4, 1.0, 1.0, 1.8)))
        for _ in range(count):
            when = _moment(rng, first, last)
            channel = (
                Order.Channel.ONLINE if rng.random() < online_share else Order.Channel.IN_STORE
            )
            sold = add(contact_id, when, channel)
            customer_orders += 1
            if rng.random() < RETURN_RATE:
                back = when + dt.timedelta(days=rng.randint(2, 25), hours=rng.randint(0, 5))
                if back < now:
                    add(contact_id, back, channel, returned_from=sold)
    for _ in range(int(customer_orders * ANONYMOUS_SHARE)):
        add(None, _moment(rng, start, now), Order.Channel.IN_STORE)


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _moment(rng: random.Random, first: dt.datetime, last: dt.datetime) -> dt.datetime:
    """A time between ``first`` and ``last`` in opening hours, more often in busy months."""
    span = max(1.0, (last - first).total_seconds())
    for _ in range(20):
        day = first + dt.timedelta(seconds=rng.uniform(0, span))
        if rng.random() * 2.0 < MONTH_WEIGHT[day.month] and day.weekday() != 6:
            break
    moment = day.replace(hour=rng.randint(10, 18), minute=rng.randrange(0, 60, 5))
    return min(max(moment, first), last)


def _lines(rng, unit, traits, weights, products, when) -> list[OrderLine]:
    count = max(1, min(5, round(rng.expovariate(1 / (1.6 * traits.basket)))))
    chosen = rng.choices(CATALOGUE, weights, k=count)
    result = []
    for position, (sku, _name, category, price) in enumerate(chosen, start=1):
        quantity = 2 if rng.random() < 0.12 else 1
        unit_amount = Decimal(price)
        gross = unit_amount * quantity
        discount = Decimal("0.00")
        if when.month in SALES_MONTHS and rng.random() < 0.5:
            discount = (gross * Decimal(rng.choice((10, 20, 30))) / 100).quantize(Decimal("0.01"))
        product = products.get(sku)
        result.append(
            OrderLine(
                unit_path=unit.path,
                position=position,
                sku=sku,
                product=product,
                unknown_sku=product is None,
                category=category,
                quantity=Decimal(quantity),
                unit_amount=unit_amount,
                amount=gross - discount,
                discount=discount,
            )
        )
    return result


def _returned(unit: OrgNode, line: OrderLine) -> OrderLine:
    """A line brought back: one item, refunded what it was paid."""
    refund = (line.amount / line.quantity).quantize(Decimal("0.01"))
    return OrderLine(
        unit_path=unit.path,
        position=1,
        sku=line.sku,
        product=line.product,
        unknown_sku=line.unknown_sku,
        category=line.category,
        quantity=Decimal(-1),
        unit_amount=line.unit_amount,
        amount=-refund,
        is_return=True,
    )
