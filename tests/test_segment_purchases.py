"""Segments on what customers bought (issue 21): every condition's count equals a reference
computed here from the raw order rows — for HQ, a region manager and a store (inside their
row-level scope on PostgreSQL), for the record and, for HQ, for the person."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from enseigne.commerce.models import Order, OrderLine
from enseigne.commerce.order_hooks import orders_written
from enseigne.contacts.segments import field_catalogue, segment_contacts
from enseigne.identity.models import RecordLink
from enseigne.lib.rowsecurity import db_scope
from enseigne.network.access import access_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
CATEGORIES = ["Chaussures", "Sacs", "Bijoux"]


@pytest.fixture
def purchases(world):
    """Forty-five records in Lyon, Grenoble and Lille (every third person in two stores),
    orders over 400 days with 1 to 3 lines, some returns, some orders made only of returns,
    some orders with no known buyer."""
    rng = random.Random(2121)
    now = timezone.now()
    units = [world.unit_a, world.unit_a2, world.unit_b]
    records = []
    for i in range(30):
        records.append(ContactFactory(unit=units[i % 3], email=f"anne.{i}.roux@orange.fr"))
        if i % 3 == 0:
            records.append(
                ContactFactory(unit=units[(i + 1) % 3], email=f"anne.{i}.roux@orange.fr")
            )
    orders, lines = [], []
    number = 0
    for record in [*records, None]:
        for _ in range(rng.randint(0, 5) if record else 4):
            number += 1
            unit = record.unit if record else units[number % 3]
            returns_only = rng.random() < 0.1
            order = Order(
                unit=unit,
                unit_path=unit.path,
                external_id=f"T{number}",
                contact=record,
                occurred_at=now - dt.timedelta(days=rng.randint(0, 400), hours=rng.randint(0, 23)),
                total=Decimal(0),
                channel="in_store",
                source="api",
            )
            order.lines_made = []
            for position in range(rng.randint(1, 3)):
                is_return = returns_only or rng.random() < 0.1
                quantity = Decimal(rng.randint(1, 3)) * (-1 if is_return else 1)
                amount = quantity * Decimal(rng.randint(5, 90))
                order.lines_made.append(
                    OrderLine(
                        unit_path=unit.path,
                        position=position,
                        sku=f"SKU-{rng.randint(1, 6)}",
                        category=rng.choice(CATEGORIES),
                        quantity=quantity,
                        amount=amount,
                        is_return=is_return,
                    )
                )
            order.total = sum((line.amount for line in order.lines_made), Decimal(0))
            orders.append(order)
    Order.objects.bulk_create(orders)
    for order in orders:
        for line in order.lines_made:
            line.order = order
            lines.append(line)
    OrderLine.objects.bulk_create(lines)
    # Written here rather than through the services: tell the order hooks, as writers do
    # (the category condition reads the summary they keep).
    orders_written(o.contact_id for o in orders)
    return {"records": records, "orders": orders}


def bought(data, keep) -> set[int]:
    return {o.contact_id for o in data["orders"] if o.contact_id and keep(o)}


def is_purchase(order) -> bool:
    return order.total > 0


def days_ago(days: int) -> dt.datetime:
    return timezone.now() - dt.timedelta(days=days)


def sold_lines(data, days=None):
    for order in data["orders"]:
        if order.contact_id and (days is None or order.occurred_at >= days_ago(days)):
            for line in order.lines_made:
                if not line.is_return:
                    yield order, line


def reference(data, field: str, op: str, value, days=None) -> set[int]:
    """Contact ids the condition selects, from the raw rows (all records)."""
    everyone = {r.pk for r in data["records"]}
    if field == "bought":
        if op in {"ever", "never"}:
            did = bought(data, is_purchase)
            return did if op == "ever" else everyone - did
        since = days_ago(int(value))
        did = bought(data, lambda o: is_purchase(o) and o.occurred_at >= since)
        return did if op == "any_in_last_days" else everyone - did
    if field == "bought_category":
        did = {o.contact_id for o, line in sold_lines(data, days) if line.category == value}
        return did if op == "category_in_last_days" else everyone - did
    if field == "bought_product":
        did = {o.contact_id for o, line in sold_lines(data, days) if line.sku == value}
        return did if op == "sku_in_last_days" else everyone - did
    if field in {"spent", "purchase_count"}:
        totals: dict[int, Decimal] = defaultdict(Decimal)
        counts: dict[int, int] = defaultdict(int)
        for o in data["orders"]:
            if o.contact_id and o.occurred_at >= days_ago(days):
                totals[o.contact_id] += o.total
                counts[o.contact_id] += is_purchase(o)
        measure = totals if field == "spent" else counts
        did = {c for c in everyone if measure.get(c, 0) >= Decimal(value)}
        return did if op == "at_least_in_last_days" else everyone - did
    if field == "first_purchase":
        firsts: dict[int, dt.datetime] = {}
        for o in data["orders"]:
            if o.contact_id and is_purchase(o):
                firsts[o.contact_id] = min(firsts.get(o.contact_id, o.occurred_at), o.occurred_at)
        if op == "in_last_days":
            return {c for c, t in firsts.items() if t >= days_ago(int(value))}
        day = dt.date.fromisoformat(value)
        local = {c: timezone.localtime(t).date() for c, t in firsts.items()}
        return {
            c for c, d in local.items() if {"before": d < day, "after": d > day, "on": d == day}[op]
        }
    if field == "average_basket":
        amounts: dict[int, list[Decimal]] = defaultdict(list)
        for o in data["orders"]:
            if o.contact_id and is_purchase(o):
                amounts[o.contact_id].append(o.total)
        mean = {c: sum(a) / len(a) for c, a in amounts.items()}
        limit = Decimal(value)
        return {c for c, m in mean.items() if (m > limit if op == "greater_than" else m < limit)}
    if field == "favourite_category":
        net: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        for o in data["orders"]:
            if o.contact_id and o.occurred_at >= days_ago(365):
                for line in o.lines_made:
                    net[o.contact_id][line.category] += line.amount
        favourite = {}
        for c, by_category in net.items():
            best = sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))[0]
            if best[1] > 0:
                favourite[c] = best[0]
        did = {c for c, cat in favourite.items() if cat == value}
        return did if op == "equals" else everyone - did
    raise AssertionError(field)


CASES = [
    ("bought", "ever", "", None),
    ("bought", "never", "", None),
    ("bought", "any_in_last_days", "90", None),
    ("bought", "none_in_last_days", "90", None),
    ("bought_category", "category_in_last_days", "Chaussures", 90),
    ("bought_category", "not_category_in_last_days", "Sacs", 180),
    ("bought_product", "sku_in_last_days", "SKU-3", 365),
    ("bought_product", "not_sku_in_last_days", "SKU-1", 30),
    ("spent", "at_least_in_last_days", "150", 180),
    ("spent", "less_than_in_last_days", "80.5", 365),
    ("purchase_count", "at_least_in_last_days", "2", 365),
    ("purchase_count", "less_than_in_last_days", "3", 400),
    ("first_purchase", "in_last_days", "200", None),
    (
        "first_purchase",
        "before",
        (timezone.now() - dt.timedelta(days=250)).date().isoformat(),
        None,
    ),
    ("first_purchase", "after", (timezone.now() - dt.timedelta(days=100)).date().isoformat(), None),
    ("average_basket", "greater_than", "70", None),
    ("average_basket", "less_than", "40", None),
    ("favourite_category", "equals", "Bijoux", None),
    ("favourite_category", "not_equals", "Chaussures", None),
]


def selected(user, rules) -> set[int]:
    with db_scope(access_for(user).paths):
        return set(segment_contacts(user, rules).values_list("pk", flat=True))


def condition(field, op, value, days=None):
    rule = {"field": field, "op": op, "value": value}
    if days is not None:
        rule["days"] = str(days)
    return {"match": "all", "rules": [rule]}


@pytest.mark.parametrize("persona", ["hq_admin", "region_manager", "manager_a"])
def test_purchase_conditions_match_the_raw_rows(world, purchases, persona):
    # Every case against one set of purchases per reader (a set built per case cost CI a
    # minute); a failure names each case that differs.
    user = getattr(world, persona)
    scope = {
        "hq_admin": world.root.path,
        "region_manager": world.region_a.path,
        "manager_a": world.unit_a.path,
    }[persona]
    mine = {r.pk for r in purchases["records"] if r.unit_path.startswith(scope)}
    wrong, unsplit = [], []
    for field, op, value, days in CASES:
        expected = reference(purchases, field, op, value, days) & mine
        if selected(user, condition(field, op, value, days)) != expected:
            wrong.append((field, op, value, days))
        if persona == "hq_admin" and not (expected and mine - expected):
            unsplit.append((field, op, value, days))
    assert wrong == []
    assert unsplit == [], "each case must split the records"


PER_PERSON = {"bought", "bought_category", "bought_product"}


@pytest.mark.parametrize(
    ("field", "op", "value", "days"), [case for case in CASES if case[0] in PER_PERSON]
)
def test_person_twins_reach_every_record_of_the_person(world, purchases, field, op, value, days):
    person = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    records_of = defaultdict(set)
    for contact, p in person.items():
        records_of[p].add(contact)
    everyone = {r.pk for r in purchases["records"]}
    negative = {
        "never": "ever",
        "none_in_last_days": "any_in_last_days",
        "not_category_in_last_days": "category_in_last_days",
        "not_sku_in_last_days": "sku_in_last_days",
        "less_than_in_last_days": "at_least_in_last_days",
        "not_equals": "equals",
    }
    positive_op = negative.get(op, op)
    positive = reference(purchases, field, positive_op, value, days)
    lifted = {c for p in {person[c] for c in positive} for c in records_of[p]}
    expected = everyone - lifted if op in negative else lifted
    assert selected(world.hq_admin, condition(f"person.{field}", op, value, days)) == expected


def test_catalogue_offers_purchase_conditions_with_days(world, purchases):
    catalogue = {f["field"]: f for f in field_catalogue(world.manager_a)}
    assert catalogue["bought_category"]["inputs"]["category_in_last_days"] == "choice+days"
    assert catalogue["spent"]["inputs"]["at_least_in_last_days"] == "number+days"
    assert "person.bought" not in catalogue
    hq_fields = {f["field"] for f in field_catalogue(world.hq_admin)}
    assert {f"person.{field}" for field in PER_PERSON} <= hq_fields
    # A figure summed over one record's orders is not the person's: no twin that would
    # say "a person who spent 300 in each of two stores did not spend 500".
    summed = {"spent", "purchase_count", "first_purchase", "average_basket", "favourite_category"}
    assert summed <= hq_fields
    assert not {f"person.{field}" for field in summed} & hq_fields


BAD_VALUES = [
    ("bought_category", "category_in_last_days", "Sacs", None, "number of days"),
    ("bought_category", "category_in_last_days", "Sacs", "0", "number of days"),
    ("bought_category", "category_in_last_days", "Sacs", "abc", "number of days"),
    ("bought_category", "category_in_last_days", "", "30", "needs a value"),
    ("bought_category", "category_in_last_days", "x" * 121, "30", "characters at most"),
    ("bought_category", "category_in_last_days", "Sa\x00cs", "30", "characters at most"),
    ("bought_category", "category_in_last_days", ["Sacs"], "30", "characters at most"),
    ("spent", "at_least_in_last_days", "beaucoup", "30", "amount"),
    ("spent", "at_least_in_last_days", "NaN", "30", "amount"),
    ("spent", "at_least_in_last_days", "1e400", "30", "amount"),
    ("spent", "at_least_in_last_days", "12.345", "30", "amount"),
    ("spent", "at_least_in_last_days", "-5", "30", "0 or more"),
    ("spent", "at_least_in_last_days", ["50"], "30", "amount"),
    ("average_basket", "greater_than", "-0.01", None, "0 or more"),
    ("purchase_count", "at_least_in_last_days", "0", "30", "whole number"),
    ("purchase_count", "at_least_in_last_days", "1.5", "30", "whole number"),
    ("first_purchase", "before", "31/12/2025", None, "not a date"),
    ("first_purchase", "in_last_days", "-1", None, "number of days"),
    ("average_basket", "greater_than", "", None, "needs a value"),
]


def test_bad_values_are_named(world, purchases):
    for field, op, value, days, message in BAD_VALUES:
        with pytest.raises(ValidationError, match=message) as error:
            selected(world.hq_admin, condition(field, op, value, days))
        assert "rule 1" in str(error.value), (field, op, value)


@pytest.mark.parametrize("typed", ["49.90", "49,90", " 49.9 ", 49.9, "49,9"])
def test_an_amount_is_read_with_a_comma_or_a_point(world, purchases, typed):
    def spent(value):
        return selected(world.hq_admin, condition("spent", "at_least_in_last_days", value, "400"))

    assert spent(typed) == spent("49.90")


def test_a_store_never_sees_another_stores_buyers(world, purchases):
    """A Lille order never selects a Lyon record, whatever the condition says."""
    lille = [o for o in purchases["orders"] if o.unit_id == world.unit_b.pk and o.contact_id]
    assert lille
    chosen = selected(world.manager_a, condition("bought", "ever", ""))
    assert not chosen & {o.contact_id for o in lille}


def test_a_favourite_category_sums_its_spellings(world):
    """Tills type "Shoes" and "shoes": one category, 60 + 50 beats Bags' 100."""
    buyer = ContactFactory(unit=world.unit_a, email="paul.3.martin@orange.fr")
    now = timezone.now()
    for number, (category, amount) in enumerate([("Shoes", 60), ("shoes", 50), ("Bags", 100)]):
        order = Order.objects.create(
            unit=world.unit_a,
            unit_path=world.unit_a.path,
            external_id=f"F{number}",
            contact=buyer,
            occurred_at=now - dt.timedelta(days=number + 1),
            total=Decimal(amount),
            source="api",
        )
        OrderLine.objects.create(
            order=order,
            unit_path=world.unit_a.path,
            position=0,
            sku=f"S{number}",
            category=category,
            quantity=Decimal(1),
            amount=Decimal(amount),
        )
    assert selected(world.hq_admin, condition("favourite_category", "equals", "SHOES")) == {
        buyer.pk
    }
    assert not selected(world.hq_admin, condition("favourite_category", "equals", "Bags"))
