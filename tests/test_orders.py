"""Orders as data: the tills' batch endpoint, the conversions endpoint's lines, many input shapes."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from enseigne.brand.models import Asset
from enseigne.commerce.models import Order, OrderLine
from enseigne.delivery.models import Event
from enseigne.lib.rowsecurity import db_scope
from enseigne.tracking.models import Conversion
from tests.factories import ContactFactory
from tests.test_api_and_isolation import bearer

URL = "/api/v1/orders/batch"


def _post(client, user, unit, orders, url=URL, **headers):
    return client.post(
        url,
        data=json.dumps({"unit": str(unit.public_id), "orders": orders}),
        content_type="application/json",
        **bearer(user),
        **headers,
    )


def _order(order_id, *lines, **fields):
    return {
        "order_id": order_id,
        "occurred_at": "2026-11-20T10:30:00+01:00",
        "lines": list(lines) or [{"sku": "SKU-1", "quantity": 1, "unit_amount": "10.00"}],
        **fields,
    }


@pytest.fixture
def product(world):
    return Asset.objects.create(
        kind=Asset.Kind.PRODUCT,
        name="Chemise",
        unit_path="",
        shared_path=world.unit_a.path[:4],
        data={"sku": "SKU-1", "name": "Chemise", "price": "10.00", "category": "Chemises"},
    )


def test_a_batch_records_orders_with_lines_and_flags_unknown_skus(world, client, product):
    buyer = ContactFactory(unit=world.unit_a)
    orders = [
        _order(
            "A-1",
            {"sku": "SKU-1", "quantity": 2, "unit_amount": "10.00", "discount": "1.50"},
            {"sku": "NEW-9", "quantity": "1", "amount": 4.2, "category": "Divers"},
            contact=str(buyer.public_id),
            channel="online",
        ),
        _order("A-2", email=buyer.email.upper(), total="99.99"),
        _order("A-3", email="stranger@example.com"),
    ]
    answer = _post(client, world.manager_a, world.unit_a, orders)
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["created"], body["duplicates"], body["refused"]) == (3, 0, 0)
    assert [r["status"] for r in body["results"]] == ["created"] * 3
    assert body["results"][0]["unknown_skus"] == ["NEW-9"]
    assert body["results"][1]["unknown_skus"] == []
    first = Order.objects.get(external_id="A-1")
    assert (first.unit_id, first.unit_path, first.contact_id, first.channel, first.total) == (
        world.unit_a.pk,
        world.unit_a.path,
        buyer.pk,
        "online",
        Decimal("22.70"),  # 2 × 10.00 − 1.50 + 4.20: the lines' sum when no total is sent
    )
    lines = list(first.lines.order_by("position"))
    assert [(li.sku, li.product_id, li.unknown_sku, li.category) for li in lines] == [
        ("SKU-1", product.pk, False, "Chemises"),  # the category comes from the library
        ("NEW-9", None, True, "Divers"),
    ]
    assert [(li.quantity, li.unit_amount, li.amount, li.discount) for li in lines] == [
        (Decimal("2"), Decimal("10.00"), Decimal("18.50"), Decimal("1.50")),
        (Decimal("1"), None, Decimal("4.20"), Decimal("0")),
    ]
    assert Order.objects.get(external_id="A-2").total == Decimal("99.99")  # the total as sent
    assert Order.objects.get(external_id="A-2").contact_id == buyer.pk
    assert Order.objects.get(external_id="A-3").contact_id is None  # an anonymous sale


def test_an_order_sent_twice_is_counted_once(world, client, product):
    orders = [_order("D-1"), _order("D-2"), _order("D-1", total="500")]
    first = _post(client, world.manager_a, world.unit_a, orders).json()
    assert [r["status"] for r in first["results"]] == ["created", "created", "duplicate"]
    assert (first["created"], first["duplicates"]) == (2, 1)
    again = _post(client, world.manager_a, world.unit_a, [_order("D-2", total="1"), _order("D-3")])
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "created"]
    assert Order.objects.count() == 3 and OrderLine.objects.count() == 3
    assert Order.objects.get(external_id="D-2").total == Decimal("10.00")  # the first one kept
    # The same order id is another order in another unit (ids are each till's own).
    other = _post(client, world.manager_b, world.unit_b, [_order("D-1")])
    assert other.json()["created"] == 1


def test_returns_are_negative_lines_and_only_they_may_be(world, client, product):
    ret = {"sku": "SKU-1", "quantity": -1, "amount": "-10.00", "is_return": True}
    orders = [
        _order("R-1", ret),  # a return on its own: negative total
        _order("R-2", {"sku": "SKU-1", "quantity": 2, "amount": "20"}, ret),  # an exchange
        _order("R-3", {"sku": "SKU-1", "quantity": -1, "amount": "-10.00"}),  # not flagged
        _order("R-4", {"sku": "SKU-1", "quantity": 1, "amount": "-3"}),
        _order("R-5", {"sku": "SKU-1", "quantity": 1, "amount": "5", "is_return": True}),
        _order("R-6", total="-5"),
        _order("R-7", {"sku": "SKU-1", "quantity": 1, "unit_amount": "-5"}),
    ]
    body = _post(client, world.manager_a, world.unit_a, orders).json()
    results = {r["order_id"]: r for r in body["results"]}
    assert results["R-1"]["status"] == results["R-2"]["status"] == "created"
    assert Order.objects.get(external_id="R-1").total == Decimal("-10.00")
    assert Order.objects.get(external_id="R-2").total == Decimal("10.00")
    assert [(e["field"], e["rule"]) for e in results["R-3"]["errors"]] == [
        ("lines[0].quantity", "negative_outside_return"),
        ("lines[0].amount", "negative_outside_return"),
    ]
    assert [(e["field"], e["rule"]) for e in results["R-4"]["errors"]] == [
        ("lines[0].amount", "negative_outside_return")
    ]
    assert [(e["field"], e["rule"]) for e in results["R-5"]["errors"]] == [
        ("lines[0].quantity", "return_not_negative")
    ]
    assert [(e["field"], e["rule"]) for e in results["R-6"]["errors"]] == [
        ("total", "negative_outside_return")
    ]
    assert [(e["field"], e["rule"]) for e in results["R-7"]["errors"]] == [
        ("lines[0].unit_amount", "negative_outside_return")
    ]
    assert set(Order.objects.values_list("external_id", flat=True)) == {"R-1", "R-2"}


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("abc", "not_a_number"),
        ("NaN", "not_a_number"),
        ("nan", "not_a_number"),
        ("Infinity", "not_a_number"),
        ("-Infinity", "not_a_number"),
        ("1e3", "not_a_number"),
        ("1,5", "not_a_number"),  # a decimal comma is read from CSV files only
        ("1 000.00", "not_a_number"),
        ("", "required"),  # no amount and no unit price
        (True, "not_a_number"),
        ([1], "not_a_number"),
        ({"value": 1}, "not_a_number"),
        ("12.345", "too_precise"),
        ("99999999999", "out_of_range"),
    ],
)
def test_amounts_must_be_decimal_numbers(world, client, value, rule):
    orders = [
        _order("OK-1", {"sku": "X", "amount": "1.50"}),
        _order("BAD-1", {"sku": "X", "amount": value}),
    ]
    body = _post(client, world.manager_a, world.unit_a, orders).json()
    assert body["results"][0]["status"] == "created"  # the valid one is kept
    bad = body["results"][1]
    assert (bad["index"], bad["order_id"], bad["status"]) == (1, "BAD-1", "refused")
    assert [(e["field"], e["rule"]) for e in bad["errors"]] == [("lines[0].amount", rule)]
    assert bad["errors"][0]["message"]
    assert list(Order.objects.values_list("external_id", flat=True)) == ["OK-1"]


def test_raw_nan_and_infinity_in_json_are_refused(world, client):
    # Python's json writes bare NaN / Infinity (not JSON) and reads them back as floats.
    orders = [
        {"order_id": "N-1", "total": float("nan")},
        {"order_id": "N-2", "total": float("inf")},
        {"order_id": "N-3", "total": float("-inf")},
        {"order_id": "N-4", "total": 3.1},
    ]
    answer = _post(client, world.manager_a, world.unit_a, orders)
    assert b"NaN" in json.dumps(orders).encode()
    rules = [[e["rule"] for e in r["errors"]] for r in answer.json()["results"]]
    assert rules == [["not_a_number"], ["not_a_number"], ["not_a_number"], []]
    assert list(Order.objects.values_list("external_id", "total")) == [("N-4", Decimal("3.10"))]


def test_float_arithmetic_from_a_till_is_read_to_the_cent(world, client):
    body = _post(
        client, world.manager_a, world.unit_a, [_order("F-1", {"sku": "X", "amount": 0.1 + 0.2})]
    ).json()
    assert body["results"][0]["status"] == "created"
    assert OrderLine.objects.get().amount == Decimal("0.30")


def test_other_fields_are_named_with_their_rule(world, client):
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    orders = [
        {"order_id": "", "total": "1"},
        {"order_id": "x" * 101, "total": "1"},
        {"order_id": "C-1", "total": "1", "channel": "phone"},
        {"order_id": "C-2", "total": "1", "occurred_at": "hier"},
        {"order_id": "C-3", "total": "1", "occurred_at": future},
        {"order_id": "C-4", "total": "1", "totl": "2"},
        {"order_id": "C-5", "lines": "SKU-1"},
        {"order_id": "C-6", "lines": [{"amount": "1"}]},
        {"order_id": "C-7", "lines": [{"sku": "X", "amount": "1", "quantity": 0}]},
        {"order_id": "C-8"},
        "not an order",
        {"order_id": "C-9", "total": "x", "email": "not-an-address"},
        {"order_id": "C-10", "lines": [{"sku": "X", "amount": "1", "is_return": "peut-être"}]},
    ]
    body = _post(client, world.manager_a, world.unit_a, orders).json()
    assert body["refused"] == len(orders) and body["created"] == 0
    found = [[(e["field"], e["rule"]) for e in r["errors"]] for r in body["results"]]
    assert found == [
        [("order_id", "required")],
        [("order_id", "too_long")],
        [("channel", "not_a_choice")],
        [("occurred_at", "not_a_date")],
        [("occurred_at", "in_the_future")],
        [("totl", "unknown_field")],
        [("lines", "not_a_list")],
        [("lines[0].sku", "required")],
        [("lines[0].quantity", "out_of_range")],
        [("total", "required")],
        [("", "not_an_object")],
        # Refused for its total; its e-mail is one more thing to correct (it alone would not
        # refuse the sale: tests/test_order_buyer_addresses.py).
        [("total", "not_a_number"), ("email", "invalid_address")],
        [("lines[0].is_return", "not_a_choice")],
    ]
    assert [r["index"] for r in body["results"]] == list(range(len(orders)))
    assert Order.objects.count() == 0


def test_another_units_contact_is_refused_like_an_unknown_one(world, client):
    theirs = ContactFactory(unit=world.unit_b)
    orders = [
        _order("X-1", contact=str(theirs.public_id)),
        _order("X-2", contact="00000000-0000-0000-0000-000000000000"),
        _order("X-3", contact="pas-un-id"),
        _order("X-4", email=theirs.email),  # an address another unit knows: an unknown buyer
    ]
    body = _post(client, world.manager_a, world.unit_a, orders).json()
    refusals = [r["errors"] for r in body["results"][:3]]
    # The same field, rule and words whether the contact is another unit's or nobody's.
    assert refusals[0] == refusals[1] == refusals[2]
    assert [(e["field"], e["rule"]) for e in refusals[0]] == [("contact", "unknown_contact")]
    assert str(theirs.public_id) not in str(refusals) and str(theirs.pk) not in str(refusals[2])
    assert body["results"][3]["status"] == "created"
    assert Order.objects.get().contact_id is None
    # Another unit's address is warned of in the words of an address nobody has (the value
    # repeated is the one the till sent): nothing says another store knows it.
    nobody = _post(client, world.manager_a, world.unit_a, [_order("X-5", email="n@example.com")])
    warned = body["results"][3]["warnings"]
    assert warned == [{**nobody.json()["results"][0]["warnings"][0], "value": theirs.email}]
    assert world.unit_b.name not in json.dumps(body)


def test_token_scoping_is_the_apis(world, client):
    # A store's token writes only its store (404, as for a unit that does not exist), a
    # role without the capability gets 403, HQ names the store; nothing written when refused.
    assert _post(client, world.manager_a, world.unit_b, [_order("S-1")]).status_code == 404
    assert _post(client, world.staff_a, world.unit_a, [_order("S-2")]).status_code == 403
    assert client.post(URL, data="{}", content_type="application/json").status_code == 401
    assert Order.objects.count() == 0
    answer = _post(client, world.hq_admin, world.unit_b, [_order("S-3")])
    assert answer.status_code == 200 and answer.json()["created"] == 1
    assert Order.objects.get().unit_id == world.unit_b.pk


def test_only_a_token_with_the_conversions_scope_sends_orders(world, client):
    from enseigne.network.models import TokenScope
    from enseigne.network.tokens import token_create

    body = json.dumps({"unit": str(world.unit_a.public_id), "orders": [_order("TK-1")]})
    for scopes, expected in (
        ([TokenScope.READ_ONLY], 403),
        ([TokenScope.CONTACTS, TokenScope.CAMPAIGNS], 403),
        ([TokenScope.CONVERSIONS], 200),
    ):
        _token, key = token_create(user=world.manager_a, scopes=scopes)
        answer = client.post(
            URL, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        assert answer.status_code == expected, scopes
        assert Order.objects.count() == (expected == 200)


def test_more_than_a_thousand_orders_are_refused_whole(world, client):
    orders = [_order(f"B-{i}") for i in range(1001)]
    answer = _post(client, world.manager_a, world.unit_a, orders)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert list(error["fields"]) == ["orders"]
    assert "1,000" in error["fields"]["orders"][0] and "1,001" in error["fields"]["orders"][0]
    assert Order.objects.count() == 0
    assert _post(client, world.manager_a, world.unit_a, orders[:1000]).json()["created"] == 1000
    assert Order.objects.count() == 1000 and OrderLine.objects.count() == 1000


def test_nul_characters_are_refused_before_anything_is_written(world, client):
    orders = [_order("OK"), _order("N\x00UL"), _order("Z", {"sku": "A\x00", "amount": "1"})]
    answer = _post(client, world.manager_a, world.unit_a, orders)
    assert answer.status_code == 422
    assert set(answer.json()["error"]["fields"]) == {"orders[1].order_id", "orders[2].lines[0].sku"}
    assert Order.objects.count() == 0


def test_query_count_does_not_grow_with_the_batch(
    world, client, product, django_assert_max_num_queries
):
    buyers = ContactFactory.create_batch(3, unit=world.unit_a)
    headers = bearer(world.manager_a)

    def send(prefix, count):
        orders = [
            _order(f"{prefix}-{i}", contact=str(buyers[i % 3].public_id), email=None)
            for i in range(count)
        ]
        for order in orders:
            order.pop("email")
        return client.post(
            URL,
            data=json.dumps({"unit": str(world.unit_a.public_id), "orders": orders}),
            content_type="application/json",
            **headers,
        )

    send("W", 1)  # the first call of a process reads what later ones find cached
    with django_assert_max_num_queries(40) as small:
        assert send("Q", 2).json()["created"] == 2
    with django_assert_max_num_queries(40) as large:
        assert send("L", 300).json()["created"] == 300
    # SQLite's bulk insert is cut by its limit on query parameters; PostgreSQL copies.
    slack = 0 if connection.vendor == "postgresql" else 300 * 10 // 999 + 1
    assert len(small.captured_queries) <= len(large.captured_queries)
    assert len(large.captured_queries) <= len(small.captured_queries) + slack


def test_conversions_endpoint_records_the_order_with_its_lines(world, client, product):
    buyer = ContactFactory(unit=world.unit_a)
    payload = {
        "order_id": "CV-1",
        "unit": str(world.unit_a.public_id),
        "amount": "35.00",
        "contact": str(buyer.public_id),
        "channel": "online",
        "lines": [
            {"sku": "SKU-1", "quantity": 2, "unit_amount": "10.00"},
            {"sku": "GHOST", "quantity": 1, "amount": "15.00"},
        ],
    }
    answer = client.post(
        "/api/v1/conversions",
        data=json.dumps(payload),
        content_type="application/json",
        **bearer(world.manager_a),
    )
    assert answer.status_code == 201, answer.content
    conversion = Conversion.objects.get()
    order = conversion.purchase
    assert (order.external_id, order.total, order.contact_id, order.channel) == (
        "CV-1",
        Decimal("35.00"),
        buyer.pk,
        "online",
    )
    assert list(order.lines.order_by("position").values_list("sku", "unknown_sku")) == [
        ("SKU-1", False),
        ("GHOST", True),
    ]
    # The same order from the till's batch afterwards: a duplicate, nothing doubled.
    again = _post(client, world.manager_a, world.unit_a, [_order("CV-1")]).json()
    assert again["results"][0]["status"] == "duplicate"
    assert Order.objects.count() == 1 and OrderLine.objects.count() == 2
    assert Event.objects.filter(kind=Event.Kind.CONVERTED).count() == 1
    # Bad lines refuse the conversion with the line's field, and record nothing.
    bad = client.post(
        "/api/v1/conversions",
        data=json.dumps({**payload, "order_id": "CV-2", "lines": [{"sku": "X", "amount": "1,5"}]}),
        content_type="application/json",
        **bearer(world.manager_a),
    )
    assert bad.status_code == 422
    assert list(bad.json()["error"]["fields"]) == ["lines[0].amount"]
    assert Conversion.objects.count() == 1 and Order.objects.count() == 1


def test_an_order_from_the_batch_is_credited_when_the_conversion_arrives(world, client):
    _post(client, world.manager_a, world.unit_a, [_order("TB-1")])
    answer = client.post(
        "/api/v1/conversions",
        data=json.dumps({"order_id": "TB-1", "unit": str(world.unit_a.public_id), "amount": "10"}),
        content_type="application/json",
        **bearer(world.manager_a),
    )
    assert answer.status_code == 201
    assert Conversion.objects.get().purchase == Order.objects.get()
    assert OrderLine.objects.count() == 1


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level security exists only on PostgreSQL"
)


@postgres_only
def test_rls_a_store_cannot_read_another_stores_orders(world, client, product):
    _post(client, world.manager_a, world.unit_a, [_order("A-1"), _order("A-2")])
    _post(client, world.manager_b, world.unit_b, [_order("B-1")])
    with db_scope([world.unit_a.path]), connection.cursor() as cursor:
        cursor.execute("SELECT external_id FROM commerce_order ORDER BY external_id")
        assert cursor.fetchall() == [("A-1",), ("A-2",)]
        cursor.execute("SELECT count(*) FROM commerce_orderline")
        assert cursor.fetchone() == (2,)
        cursor.execute(
            "SELECT count(*) FROM commerce_order WHERE unit_path = %s", [world.unit_b.path]
        )
        assert cursor.fetchone() == (0,)
    with db_scope([world.unit_b.path]):
        assert list(Order.objects.values_list("external_id", flat=True)) == ["B-1"]
    with db_scope([]):
        assert Order.objects.count() == 0 and OrderLine.objects.count() == 0


@postgres_only
def test_rls_refuses_writing_an_order_into_another_store(world):
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), db_scope([world.unit_a.path]), transaction.atomic():
        Order.objects.create(
            unit=world.unit_b,
            unit_path=world.unit_b.path,
            external_id="SNEAK",
            occurred_at=timezone.now(),
            total=1,
            source="api",
        )
    assert not Order.objects.filter(external_id="SNEAK").exists()


def test_a_buyer_becomes_an_existing_customer(world, client, product):
    """An order makes its record an existing customer (the flag the "existing customer"
    condition and the soft opt-in read); a record without orders stays as it was."""
    buyer = ContactFactory(unit=world.unit_a, is_customer=False)
    bystander = ContactFactory(unit=world.unit_a, is_customer=False)
    response = _post(
        client, world.manager_a, world.unit_a, [_order("C-1", contact=str(buyer.public_id))]
    )
    assert response.json()["created"] == 1
    buyer.refresh_from_db()
    bystander.refresh_from_db()
    assert (buyer.is_customer, bystander.is_customer) == (True, False)
