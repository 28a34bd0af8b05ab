"""Each store's monthly net revenue per category, kept by the one order writer whatever brings
the orders (till batch, sales file, conversions endpoint), equal to a reference computed from
the raw lines, and to the rebuild from every order."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from enseigne.commerce import revenue
from enseigne.commerce.models import CategoryRevenue, OrderLine, StoreRevenue
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.stats import share_interval
from tests.test_api_and_isolation import bearer
from tests.test_order_import import _media  # noqa: F401 (a fixture: files under tmp_path)
from tests.test_order_import_report import _import
from tests.test_orders import _post

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


def _rows():
    with db_scope(ALL):
        categories = {
            (r.unit_path, r.month, r.category): (r.revenue, r.orders, r.squares, r.cross)
            for r in CategoryRevenue.objects.all()
        }
        stores = {
            (r.unit_path, r.month): (r.revenue, r.orders, r.squares)
            for r in StoreRevenue.objects.all()
        }
    return categories, stores


def _reference():
    """The rows from the raw lines: per order, its net amount per category (case aside)."""
    per_order: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    order_of = {}
    with db_scope(ALL):
        for line in OrderLine.objects.select_related("order"):
            if line.category:
                per_order[line.order_id][line.category.upper()] += line.amount
                order_of[line.order_id] = line.order
    categories: dict = defaultdict(lambda: [Decimal(0), 0, 0.0, 0.0])
    stores: dict = defaultdict(lambda: [Decimal(0), 0, 0.0])
    for order_id, amounts in per_order.items():
        order = order_of[order_id]
        month = order.occurred_at.astimezone(PARIS).date().replace(day=1)
        x = sum(amounts.values(), Decimal(0))
        store = stores[(order.unit_path, month)]
        store[0] += x
        store[1] += 1
        store[2] += float(x) ** 2
        for key, y in amounts.items():
            row = categories[(order.unit_path, month, key)]
            row[0] += y
            row[1] += 1
            row[2] += float(y) ** 2
            row[3] += float(x) * float(y)
    return {k: tuple(v) for k, v in categories.items()}, {k: tuple(v) for k, v in stores.items()}


def _same(found, expected):
    assert found.keys() == expected.keys()
    for key, values in expected.items():
        assert found[key][:2] == values[:2], key
        assert found[key][2:] == pytest.approx(values[2:]), key


def test_every_writer_keeps_the_rows_and_the_rebuild_agrees(world, client):
    # Till batch: a month boundary in the store's time zone (23:30 UTC on 31 October is
    # 1 November in Lyon), a return, a category spelled two ways, a line without category.
    orders = [
        {
            "order_id": "B-1",
            "occurred_at": "2026-10-31T23:30:00+00:00",
            "email": "pas une adresse",
            "lines": [
                {"sku": "S1", "category": "Vins", "quantity": 2, "unit_amount": "10.00"},
                {"sku": "S2", "category": "vins", "quantity": 1, "amount": "5.50"},
                {"sku": "S3", "category": "Fromages", "quantity": 1, "amount": "7"},
                {"sku": "S4", "quantity": 1, "amount": "3"},
            ],
        },
        {
            "order_id": "B-2",
            "occurred_at": "2026-10-31T22:30:00+00:00",
            "lines": [
                {
                    "sku": "S1",
                    "category": "Vins",
                    "quantity": -1,
                    "amount": "-10",
                    "is_return": True,
                }
            ],
        },
        {"order_id": "B-3", "occurred_at": "2026-10-15T10:00:00+00:00", "total": "12"},
    ]
    body = _post(client, world.manager_a, world.unit_a, orders).json()
    assert body["created"] == 3
    again = _post(client, world.manager_a, world.unit_a, orders).json()  # counted once
    assert again["duplicates"] == 3
    # A file (and its dry run, which writes nothing), for the same store and another.
    content = (
        "N° ticket;Date;Référence;Catégorie;Quantité;Prix unitaire;Retour\r\n"
        "F-1;03/11/2026 10:00;S1;Vins;1;8,00;\r\n"
        "F-1;03/11/2026 10:00;S5;Épicerie fine;2;4,25;\r\n"
        "F-2;04/11/2026 10:00;S5;épicerie fine;-1;4,25;oui\r\n"
    ).encode()
    _import(world, content, dry_run=True)
    assert _rows()[0].keys() == _reference()[0].keys()
    _import(world, content)
    # The conversions endpoint's order with lines.
    answer = client.post(
        "/api/v1/conversions",
        data=json.dumps(
            {
                "order_id": "CV-1",
                "unit": str(world.unit_a.public_id),
                "amount": "20",
                "occurred_at": "2026-11-05T10:00:00+01:00",
                "lines": [{"sku": "S3", "category": "Fromages", "quantity": 1, "amount": "20"}],
            }
        ),
        content_type="application/json",
        **bearer(world.manager_a),
    )
    assert answer.status_code == 201, answer.content
    _post(client, world.manager_b, world.unit_b, [{**orders[0], "order_id": "L-1"}])

    categories, stores = _rows()
    expected = _reference()
    _same(categories, expected[0])
    _same(stores, expected[1])
    lyon, november = world.unit_a.path, dt.date(2026, 11, 1)
    # B-1 is November's in Lyon; B-2 (23:30 Paris on 31 October) is October's.
    assert categories[(lyon, november, "VINS")][0] == Decimal("25.50") + 8
    assert categories[(lyon, dt.date(2026, 10, 1), "VINS")][0] == Decimal(-10)
    assert categories[(lyon, november, "ÉPICERIE FINE")][:2] == (Decimal("4.25"), 2)
    assert stores[(lyon, november)][:2] == (Decimal("25.50") + 7 + 8 + Decimal("4.25") + 20, 4)

    call_command("rebuild_category_revenue")
    rebuilt = _rows()
    _same(rebuilt[0], expected[0])
    _same(rebuilt[1], expected[1])


def test_the_share_interval_is_the_ratio_estimators():
    # Four orders (x: categorised total, y: the category's part); R = 10 / 40.
    xs, ys = [10.0, 10.0, 10.0, 10.0], [10.0, 0.0, 0.0, 0.0]
    r = sum(ys) / sum(xs)
    low, high = share_interval(
        sum(ys), 1, sum(y * y for y in ys), sum(x * y for x, y in zip(xs, ys, strict=True)),
        sum(xs), len(xs), sum(x * x for x in xs),
    )  # fmt: skip
    spread = sum((y - r * x) ** 2 for x, y in zip(xs, ys, strict=True))
    half = 1.959963984540054 * (spread / (4 * 3)) ** 0.5 / 10
    assert (low, high) == pytest.approx((r - half, r + half))
    assert share_interval(5, 1, 25, 50, 10, 1, 100) is None  # one order: no interval
    assert share_interval(0, 0, 0, 0, 0, 5, 0) is None  # no revenue


def test_month_of_is_the_stores():
    moment = dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.UTC)
    assert revenue.month_of(moment, PARIS) == dt.date(2026, 4, 1)
    assert revenue.month_of(moment, ZoneInfo("America/Martinique")) == dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    "zone", ["Europe/Paris", "America/Santiago", "America/Martinique", "Pacific/Chatham"]
)
def test_the_batch_shortcut_for_months_is_month_of(zone):
    # Santiago's clocks change at midnight (a skipped or doubled midnight); Chatham is 12:45.
    tz = ZoneInfo(zone)
    months = revenue._Months(tz)
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    moments = [start + dt.timedelta(minutes=131 * i) for i in range(2 * 365 * 24 * 60 // 131)]
    moments += [m.astimezone(ZoneInfo("Europe/Paris")) for m in moments[::29]]
    assert [months(m) for m in moments] == [revenue.month_of(m, tz) for m in moments]
