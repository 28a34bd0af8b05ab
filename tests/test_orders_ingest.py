"""The batch path's economies keep its behaviour: the purchase summary is raised from the
batch's own orders (not recomputed from the buyers' history), and Python's cycle collector
is paused while a batch is read and written, on again after (bench/orders_ingest.py)."""

from __future__ import annotations

import datetime as dt
import gc
from decimal import Decimal

import pytest
from django.utils import timezone

from enseigne.commerce import services
from enseigne.commerce.models import CategoryPurchase, Order, OrderLine
from enseigne.commerce.order_hooks import orders_written
from enseigne.commerce.services import orders_record
from enseigne.lib.bulk import collector_paused
from enseigne.lib.rowsecurity import db_scope
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _order(order_id, buyer, category, days_ago=1):
    return {
        "order_id": order_id,
        "occurred_at": (timezone.now() - dt.timedelta(days=days_ago)).isoformat(),
        "contact": str(buyer.public_id),
        "lines": [{"sku": "SKU-1", "category": category, "quantity": 1, "amount": "5.00"}],
    }


def _summary(world):
    with db_scope([world.unit_a.path]):
        return dict(CategoryPurchase.objects.values_list("category", "last_bought_at"))


def _history(world, buyer, category, when):
    """An order written around the writers (no hook): absent from the summary."""
    with db_scope([world.unit_a.path]):
        order = Order.objects.create(
            unit=world.unit_a,
            unit_path=world.unit_a.path,
            external_id=f"H-{category}",
            contact=buyer,
            occurred_at=when,
            total=Decimal(5),
            source="api",
        )
        OrderLine.objects.create(
            order=order,
            unit_path=world.unit_a.path,
            position=0,
            sku="SKU-1",
            category=category,
            quantity=1,
            amount=Decimal(5),
        )


def test_a_batch_raises_the_summary_from_its_own_orders_only(world):
    buyer = ContactFactory(unit=world.unit_a)
    old = timezone.now() - dt.timedelta(days=30)
    _history(world, buyer, "Sacs", old)
    with db_scope([world.unit_a.path]):
        outcomes = orders_record(
            actor=world.manager_a, unit=world.unit_a, orders=[_order("B-1", buyer, "Bijoux")]
        )
    assert [o.status for o in outcomes] == ["created"]
    # The batch's category only: the buyers' history is not read again (it is in the
    # summary already when written through the writers).
    assert set(_summary(world)) == {"BIJOUX"}
    # A writer that names buyers only (no order ids) recomputes from their whole history.
    with db_scope([world.unit_a.path]):
        orders_written([buyer.pk])
    assert _summary(world)["SACS"] == old
    # An older order in a later batch leaves the later time alone.
    latest = _summary(world)["BIJOUX"]
    with db_scope([world.unit_a.path]):
        orders_record(
            actor=world.manager_a,
            unit=world.unit_a,
            orders=[_order("B-0", buyer, "bijoux", days_ago=9)],
        )
    assert _summary(world)["BIJOUX"] == latest


def test_the_collector_is_paused_during_a_batch_and_back_after(world, monkeypatch):
    buyer = ContactFactory(unit=world.unit_a)
    seen = []
    clean = services.clean_order

    def watching(*args, **kwargs):
        seen.append(gc.isenabled())
        return clean(*args, **kwargs)

    monkeypatch.setattr(services, "clean_order", watching)
    assert gc.isenabled()
    with db_scope([world.unit_a.path]):
        orders_record(
            actor=world.manager_a,
            unit=world.unit_a,
            orders=[_order("G-1", buyer, "Sacs"), _order("G-2", buyer, "Sacs")],
        )
    assert seen == [False, False]
    assert gc.isenabled()


def test_a_paused_collector_is_left_paused_and_an_error_restores_it():
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # not ours to turn on
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError
    assert gc.isenabled()
