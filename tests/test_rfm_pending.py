"""RFM's order hook queues buyers in the database and coalesces refreshes (issue 21): orders
written in N transactions are scored by one refresh of the union of their buyers, none lost
(not when a refresh dies half-way, not past a chunk), and a rolled-back transaction's buyers
are never queued."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from enseigne.commerce.models import Order
from enseigne.commerce.order_hooks import orders_written
from enseigne.rfm import hooks, refresh
from enseigne.rfm.models import PendingBuyer, RecordScore, RefreshWake
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _write(record, number: int, total: str = "40.00") -> None:
    """One order for ``record`` and the hook's call, as ``commerce.services`` makes them."""
    Order.objects.create(
        unit=record.unit,
        unit_path=record.unit_path,
        external_id=f"P{number}",
        contact=record,
        occurred_at=timezone.now() - dt.timedelta(days=3 + number),
        total=Decimal(total),
        channel="in_store",
        source="api",
    )
    orders_written([record.pk])


@pytest.fixture
def queued_huey():
    """Tasks queued, not run at once: what the worker would find."""
    HUEY.immediate = False
    yield HUEY
    HUEY.flush()
    HUEY.immediate = True


@pytest.fixture
def refreshes(monkeypatch):
    """The buyers of every ``refresh.refresh_buyers`` call, which still runs."""
    calls: list[list[int]] = []
    real = refresh.refresh_buyers

    def spy(contact_ids, now=None):
        calls.append(sorted(contact_ids))
        real(contact_ids, now=now)

    monkeypatch.setattr(refresh, "refresh_buyers", spy)
    return calls


def pending() -> list[int]:
    return sorted(PendingBuyer.objects.values_list("contact_id", flat=True))


def test_commits_share_one_refresh_and_rollbacks_queue_nobody(
    world, queued_huey, refreshes, django_capture_on_commit_callbacks
):
    lyon = [ContactFactory(unit=world.unit_a, email=f"lyon.{i}@orange.fr") for i in range(3)]
    lille = ContactFactory(unit=world.unit_b, email="lille.0@orange.fr")
    gone = ContactFactory(unit=world.unit_a, email="annule@orange.fr")
    for number, buyers in enumerate([[lyon[0], lyon[1]], [lyon[1], lille], [lyon[2]]]):
        with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
            for position, buyer in enumerate(buyers):
                _write(buyer, 10 * number + position)
        assert len(callbacks) == 1  # one wake per transaction, however many orders
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _write(gone, 99)
        raise RuntimeError("the import failed")
    assert callbacks == []
    everyone = sorted(r.pk for r in [*lyon, lille])
    assert sorted(set(pending())) == everyone and len(pending()) == 5
    assert queued_huey.pending_count() == 1  # three commits, one task
    assert refreshes == []  # nothing scored before the worker runs

    task = queued_huey.dequeue()
    assert queued_huey.pending_count() == 0
    # Run as the worker would, on this test's connection (a real worker's wrapper closes it).
    queued_huey.immediate = True
    queued_huey.execute(task)
    queued_huey.immediate = False
    assert refreshes == [everyone]
    assert sorted(RecordScore.objects.values_list("contact_id", flat=True)) == everyone
    assert pending() == []
    assert not RefreshWake.objects.get(pk=1).queued

    # The next commit wakes the worker again.
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        _write(gone, 100)
    assert queued_huey.pending_count() == 1 and pending() == [gone.pk]


def test_a_wake_while_a_refresh_waits_only_reads_the_flag(
    world, queued_huey, django_capture_on_commit_callbacks
):
    """The first commit raises the flag (one write); the next ones find it raised and write
    nothing to it: no lock, no transaction of their own, no task queued."""
    buyers = [ContactFactory(unit=world.unit_a, email=f"file.{i}@orange.fr") for i in range(3)]
    flag = RefreshWake._meta.db_table
    for number, buyer in enumerate(buyers):
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks(execute=True),
            transaction.atomic(),
        ):
            _write(buyer, number)
        on_flag = [q["sql"].split()[0].upper() for q in queries if flag in q["sql"]]
        assert on_flag == (["SELECT", "INSERT"] if number == 0 else ["SELECT"]), on_flag
    assert queued_huey.pending_count() == 1 and RefreshWake.objects.get(pk=1).queued
    assert pending() == sorted(b.pk for b in buyers)
    # Lowered by the task, the next commit claims it again (the row exists: an update).
    hooks.refresh_pending()
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        _write(buyers[0], 9)
    assert [q["sql"].split()[0].upper() for q in queries if flag in q["sql"]] == [
        "SELECT",
        "INSERT",
    ]
    assert queued_huey.pending_count() == 2 and RefreshWake.objects.get(pk=1).queued


def test_a_refresh_that_dies_loses_no_buyer(world, refreshes, monkeypatch):
    buyers = [ContactFactory(unit=world.unit_a, email=f"panne.{i}@orange.fr") for i in range(5)]
    with transaction.atomic():
        for number, buyer in enumerate(buyers):
            _write(buyer, number)
    real = refresh.refresh_buyers

    def dies(contact_ids, now=None):
        raise ConnectionError("the worker lost its database")

    monkeypatch.setattr(refresh, "refresh_buyers", dies)
    with pytest.raises(ConnectionError):
        hooks.refresh_pending()
    assert pending() == sorted(b.pk for b in buyers)
    assert RecordScore.objects.count() == 0

    monkeypatch.setattr(refresh, "refresh_buyers", real)
    calls: list[list[int]] = []
    monkeypatch.setattr(
        refresh, "refresh_buyers", lambda ids, now=None: calls.append(ids) or real(ids, now=now)
    )
    assert hooks.refresh_pending(chunk=2) == 5  # chunks of 2 rows: 3 transactions, all drained
    assert sorted(c for chunk in calls for c in chunk) == sorted(b.pk for b in buyers)
    assert [len(chunk) for chunk in calls] == [2, 2, 1]
    assert pending() == [] and RecordScore.objects.count() == 5
    assert hooks.refresh_pending() == 0  # idempotent: nothing left, nothing scored


def test_a_queue_that_refuses_the_wake_fails_no_writer(
    world, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from enseigne.rfm import tasks

    buyer = ContactFactory(unit=world.unit_a, email="file.down@orange.fr")

    def refuses():
        raise ConnectionError("the queue is down")

    monkeypatch.setattr(tasks, "rfm_refresh_pending", refuses)
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        _write(buyer, 1)
    assert len(callbacks) == 1
    # The writer's orders are committed and reported as such; the buyer waits for the sweep,
    # and the flag is down so that the next commit tries the queue again.
    assert Order.objects.filter(contact=buyer).count() == 1
    assert pending() == [buyer.pk]
    assert not RefreshWake.objects.get(pk=1).queued
    assert "the queue is down" in caplog.text
    assert hooks.refresh_pending() == 1 and pending() == []


def test_the_nightly_run_takes_the_months_picture_of_the_groups(world):
    from enseigne.rfm.models import GroupSnapshot
    from enseigne.rfm.snapshots import month_of
    from enseigne.rfm.tasks import rfm_nightly

    buyers = [ContactFactory(unit=world.unit_a, email=f"nuit.{i}@orange.fr") for i in range(3)]
    for number, buyer in enumerate(buyers):
        _write(buyer, number)
    rfm_nightly.call_local()
    scores = set(RecordScore.objects.values_list("contact_id", "group"))
    assert {b.pk for b in buyers} == {c for c, _g in scores}
    pictured = GroupSnapshot.objects.filter(month=month_of(timezone.now()))
    assert set(pictured.values_list("contact_id", "group")) == scores
