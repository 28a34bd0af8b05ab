"""The buyers' purchase summary (``commerce.summaries``) that the category condition reads
stays equal to the raw order lines through the writers' batches, a return, a later
purchase and an erasure — and the condition still counts what the lines say."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.models.functions import Upper
from django.utils import timezone

from enseigne.commerce.models import CategoryPurchase, OrderLine
from enseigne.commerce.services import orders_record
from enseigne.commerce.summaries import rebuild, refresh
from enseigne.contacts.segments import segment_contacts
from enseigne.contacts.services import contact_erase
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import access_for
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _line(category, quantity=1, **fields):
    return {
        "sku": "SKU-1",
        "category": category,
        "quantity": quantity,
        "unit_amount": "10.00",
    } | fields


def _record(world, buyer, order_id, days_ago, *lines):
    when = timezone.now() - dt.timedelta(days=days_ago)
    with db_scope([world.unit_a.path]):
        outcomes = orders_record(
            actor=world.manager_a,
            unit=world.unit_a,
            orders=[
                {
                    "order_id": order_id,
                    "occurred_at": when.isoformat(),
                    "contact": str(buyer.public_id),
                    "lines": list(lines),
                }
            ],
        )
    assert [o.status for o in outcomes] == ["created"], outcomes[0].problems
    return when


def summary() -> dict[tuple[int, str], dt.datetime]:
    with db_scope(ALL):
        return {
            (row.contact_id, row.category): row.last_bought_at
            for row in CategoryPurchase.objects.all()
        }


def from_lines() -> dict[tuple[int, str], dt.datetime]:
    """The reference: each buyer's latest sold line per category (case aside), raw rows."""
    found: dict[tuple[int, str], dt.datetime] = {}
    with db_scope(ALL):
        lines = (
            OrderLine.objects.filter(is_return=False, order__contact__isnull=False)
            .exclude(category="")
            .annotate(key=Upper("category"))
            .values_list("order__contact_id", "key", "order__occurred_at")
        )
        for contact_id, key, when in lines:
            found[(contact_id, key)] = max(when, found.get((contact_id, key), when))
    return found


def chosen(user, category, days):
    rules = {
        "match": "all",
        "rules": [
            {
                "field": "bought_category",
                "op": "category_in_last_days",
                "value": category,
                "days": str(days),
            }
        ],
    }
    with db_scope(access_for(user).paths):
        return set(segment_contacts(user, rules).values_list("pk", flat=True))


def test_the_summary_follows_writes_returns_and_erasure(world):
    anne, paul = (ContactFactory(unit=world.unit_a) for _ in range(2))
    _record(world, anne, "S-1", 200, _line("Chaussures"), _line("Sacs"))
    _record(world, paul, "S-2", 10, _line("chaussures"))
    assert summary() == from_lines()
    assert set(summary()) == {(anne.pk, "CHAUSSURES"), (anne.pk, "SACS"), (paul.pk, "CHAUSSURES")}
    assert chosen(world.manager_a, "Chaussures", 90) == {paul.pk}
    assert chosen(world.hq_admin, "CHAUSSURES", 365) == {anne.pk, paul.pk}

    # A return of shoes yesterday is not a purchase: nothing moves.
    _record(world, anne, "S-3", 1, _line("Chaussures", quantity=-1, is_return=True))
    assert summary() == from_lines()
    assert chosen(world.manager_a, "Chaussures", 90) == {paul.pk}

    # A later purchase (another spelling) moves Anne's shoes to last week; her bags stay.
    later = _record(world, anne, "S-4", 7, _line("CHAUSSURES"), _line(""))
    assert summary() == from_lines()
    assert summary()[(anne.pk, "CHAUSSURES")] == later
    assert chosen(world.manager_a, "chaussures", 90) == {anne.pk, paul.pk}
    assert chosen(world.manager_a, "Sacs", 90) == set()

    # Erasure takes the record's rows; the other buyer's stay.
    with db_scope([world.unit_a.path]):
        contact_erase(actor=world.manager_a, contact=anne)
    assert summary() == from_lines()
    assert set(summary()) == {(paul.pk, "CHAUSSURES")}
    assert chosen(world.hq_admin, "Chaussures", 365) == {paul.pk}


def test_a_store_reads_only_its_own_rows_and_the_rebuild_matches(world):
    anne = ContactFactory(unit=world.unit_a)
    _record(world, anne, "R-1", 3, _line("Bijoux"))
    if connection.vendor == "postgresql":  # row-level security: another store reads none
        with db_scope([world.unit_b.path]):
            assert not CategoryPurchase.objects.exists()
    assert chosen(world.manager_b, "Bijoux", 30) == set()
    # Never back in time: a writer that saw only an older order (another one committing a
    # later order for the same buyer meanwhile) leaves the later time alone.
    later = timezone.now() + dt.timedelta(hours=1)
    with db_scope(ALL):
        CategoryPurchase.objects.update(last_bought_at=later)
        refresh([anne.pk])
        assert CategoryPurchase.objects.get().last_bought_at == later
        CategoryPurchase.objects.all().delete()
        assert rebuild() == 1
    assert summary() == from_lines()
