"""The hand-off in one process: gates declared once, marks written per message, slots, queries."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enseigne.campaigns import audience
from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Campaign, PressureRule, Recipient
from enseigne.contacts.models import ConsentStatus, Contact, Suppression
from enseigne.contacts.services import identifier_hash
from enseigne.delivery import slots
from enseigne.delivery.channels.base import Outcome, Result
from enseigne.delivery.channels.locmem.transport import LocmemTransport
from enseigne.delivery.pipeline import Runner
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.campaign_helpers import contacts, launched, local_campaign
from tests.factories import build_world

ON_POSTGRES = pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="durable per-message marks need a second connection: PostgreSQL (CI runs this file "
    "on both engines; on SQLite the killed-worker tests in test_send_reliability cover them)",
)


def _queries_for_one_batch(world, n: int) -> int:
    campaign = local_campaign(world, unit=world.unit_a2 if n % 2 else world.unit_a)
    unit = campaign.owner
    contacts(unit, n, start=1000 * n)
    launched(world, campaign)
    runner = Runner(campaign.pk, transport=LocmemTransport(lanes=32), batch_size=64, chunk_size=64)
    rows = runner.claim()
    assert len(rows) == n
    runner._content(unit.pk)  # the unit's content is prepared once per run, not per batch
    with CaptureQueriesContext(connection) as queries:
        stats = runner.process(rows)
    assert stats.sent == n
    return len(queries)


@pytest.mark.django_db
def test_the_hand_off_runs_as_many_queries_for_40_messages_as_for_5():
    world = build_world()
    PressureRule.objects.create(node=world.root, channel="email", max_messages=3, window_days=7)
    few, many = _queries_for_one_batch(world, 5), _queries_for_one_batch(world, 40)
    assert few == many
    # Exactly, whatever the chunk's size: the in-flight marks, the contacts' lock, the gates'
    # one statement (with the caps), the outcomes (rows, events), and the transactions' scope.
    assert many == (18 if connection.vendor == "postgresql" else 13), many


@pytest.mark.django_db
def test_the_hand_off_skips_what_the_preview_excludes_with_the_same_reason_codes():
    world = build_world()
    unit = world.unit_a
    made = contacts(unit, 6)
    PressureRule.objects.create(node=world.root, channel="email", max_messages=1, window_days=7)
    campaign = local_campaign(world)
    launched(world, campaign)
    # After the freeze, before the hand-off: one withdraws, one is suppressed, one erased,
    # one reaches the cap through another campaign's message.
    Contact.objects.filter(pk=made[0].pk).update(email_consent=ConsentStatus.WITHDRAWN)
    Suppression.objects.create(
        unit_path="",
        channel="email",
        value_hash=identifier_hash("email", made[1].email),
        reason="hard_bounce",
    )
    Contact.objects.filter(pk=made[2].pk).delete()
    other = local_campaign(world)
    Campaign.objects.filter(pk=other.pk).update(status=Campaign.Status.FINISHED)
    Recipient.objects.create(
        campaign=other,
        contact=made[3],
        unit=unit,
        unit_path=unit.path,
        channel="email",
        status="sent",
        sent_at=timezone.now() - dt.timedelta(days=1),
    )
    # The preview of the same campaign now says the same, row by row.
    classification = audience.classified(
        campaign, Contact.objects.filter(unit=unit), timezone.now()
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"{classification.ctes}SELECT c.id, c.reason FROM ({classification.sql}) c",  # noqa: S608
            [*classification.cte_params, *classification.params],
        )
        preview = dict(cursor.fetchall())
    stats = Runner(campaign.pk, transport=LocmemTransport()).run()
    rows = {
        r.contact_id: r.reason
        for r in Recipient.objects.filter(campaign=campaign, status="skipped")
    }
    assert rows == {
        made[0].pk: Reason.NO_CONSENT,
        made[1].pk: Reason.SUPPRESSED,
        None: Reason.CONTACT_ERASED,
        made[3].pk: Reason.PRESSURE,
    }
    assert {k: v for k, v in preview.items() if v} == {
        made[0].pk: "no_consent",
        made[1].pk: "suppressed",
        made[3].pk: "pressure",
    }
    assert (stats.sent, stats.skipped) == (2, 4)


@pytest.mark.django_db
def test_a_second_runner_takes_the_next_slot_and_a_released_slot_is_free_again():
    world = build_world()
    campaign = local_campaign(world)
    first = slots.take_slot(campaign.pk, slots=2)
    # One runner per process: a second one here would share the interpreter's lock.
    assert slots.take_slot(campaign.pk, slots=2) is None and slots.runs_here(campaign.pk)
    second = slots.take_slot(campaign.pk, slots=2, one_per_process=False)
    assert (first.number, second.number) == (0, 1)
    assert slots.take_slot(campaign.pk, slots=2, one_per_process=False) is None
    assert slots.runners_holding(campaign.pk, slots=2) == 2
    first.release()
    again = slots.take_slot(campaign.pk, slots=2, one_per_process=False)
    assert again is not None and again.number == 0
    again.release()
    second.release()
    assert slots.runners_holding(campaign.pk, slots=2) == 0


@pytest.mark.django_db
def test_an_exclusive_run_without_a_free_slot_sends_nothing():
    world = build_world()
    contacts(world.unit_a, 3)
    campaign = local_campaign(world)
    launched(world, campaign)
    held = [
        slots.take_slot(campaign.pk, one_per_process=False)
        for _ in range(settings.SEND_RUNNERS_PER_CAMPAIGN)
    ]
    try:
        stats = Runner(campaign.pk, transport=LocmemTransport()).run(exclusive=True)
        assert stats.sent == 0
        assert Recipient.objects.filter(campaign=campaign, status="pending").count() == 3
    finally:
        for slot in held:
            slot.release()
    assert Runner(campaign.pk, transport=LocmemTransport()).run(exclusive=True).sent == 3


def _outside_view(sql: str) -> list[tuple]:
    """What another session sees right now (committed rows only)."""
    default = settings.DATABASES["default"]
    with psycopg.connect(
        host=default["HOST"] or "127.0.0.1",
        port=default["PORT"] or 5432,
        user="postgres",
        dbname=connection.settings_dict["NAME"],
        autocommit=True,
    ) as other:
        return list(other.execute(sql).fetchall())


@ON_POSTGRES
@pytest.mark.django_db(transaction=True)
def test_each_message_is_durably_in_flight_before_hand_off_and_sent_right_after():
    with db_scope(ALL):
        world = build_world()
        contacts(world.unit_a, 60)
        campaign = local_campaign(world)
        launched(world, campaign)
    table = Recipient._meta.db_table
    seen: list[tuple[int, int, int, bool]] = []

    def answer(message):
        (in_flight, sent, mine), *_ = _outside_view(
            f"SELECT count(*) FILTER (WHERE status = 'pending' AND attempted_at IS NOT NULL), "  # noqa: S608
            f"count(*) FILTER (WHERE status = 'sent'), "
            f"bool_or(id = {int(message.recipient_id)} AND attempted_at IS NOT NULL) "
            f"FROM {table} WHERE campaign_id = {int(campaign.pk)}"
        )
        seen.append((len(seen), in_flight, sent, mine))
        return Result(Outcome.SENT, 250)

    runner = Runner(campaign.pk, transport=LocmemTransport(answer, lanes=2))
    window = runner.in_flight_window
    stats = runner.run()
    assert stats.sent == 60 and window == 2 * settings.SEND_INFLIGHT_DEPTH
    # Every message was committed "in flight" before it left, and never more than the window.
    assert all(mine for *_, mine in seen), seen
    assert max(in_flight for _, in_flight, _, _ in seen) <= window
    # Outcomes are committed as they come: when message k leaves, all but the last window are sent.
    assert all(sent >= k - window for k, _, sent, _ in seen), seen
    assert _outside_view(
        f"SELECT count(*) FROM {table} WHERE campaign_id = {int(campaign.pk)} AND status = 'sent'"  # noqa: S608
    ) == [(60,)]


@ON_POSTGRES
@pytest.mark.django_db(transaction=True)
def test_a_transport_crash_leaves_only_the_window_unknown():
    """The process dies mid-chunk (here: the transport raises): what reached the server is
    recorded sent, what was in flight is ambiguous, what never left is sent by the next run."""
    with db_scope(ALL):
        world = build_world()
        contacts(world.unit_a, 40)
        campaign = local_campaign(world)
        launched(world, campaign)

    class Crash(Exception):
        pass

    def answer(message):
        answer.count += 1
        if answer.count == 17:
            raise Crash
        return Result(Outcome.SENT, 250)

    answer.count = 0
    runner = Runner(campaign.pk, transport=LocmemTransport(answer, lanes=2), lease_seconds=1)
    with pytest.raises(Crash):
        runner.run()
    window = runner.in_flight_window
    with db_scope(ALL):
        rows = list(
            Recipient.objects.filter(campaign=campaign).values_list("status", "attempted_at")
        )
    sent = sum(1 for status, _ in rows if status == "sent")
    in_flight = sum(1 for status, at in rows if status == "pending" and at is not None)
    assert sent == 16 and 1 <= in_flight <= window
    # Later (the leases ran out), another runner: the unknown rows are ambiguous, the rest sent.
    Recipient.objects.filter(campaign=campaign).update(
        lease_until=timezone.now() - dt.timedelta(seconds=1)
    )
    with db_scope(ALL):
        stats = Runner(campaign.pk, transport=LocmemTransport(lanes=2)).run()
        ambiguous = Recipient.objects.filter(campaign=campaign, status="ambiguous").count()
        status = Campaign.objects.get(pk=campaign.pk).status
    assert ambiguous == in_flight and stats.sent == 40 - 16 - in_flight
    assert status == "finished"


@pytest.mark.django_db
def test_a_word_forbidden_mid_send_stops_the_runner_before_its_next_batch(world):
    from enseigne.brand.services import guardrails_update
    from enseigne.delivery.channels.locmem import transport as locmem

    locmem.outbox.clear()
    contacts(world.unit_a, 6)
    campaign = local_campaign(world)
    launched(world, campaign)
    runner = Runner(campaign.pk, batch_size=2)
    assert runner.run(max_batches=1).sent == 2
    guardrails_update(
        actor=world.hq_admin,
        node=world.root,
        require_logo=False,
        require_legal_footer=False,
        restricted_patterns=["soldes"],
    )
    stats = Runner(campaign.pk, batch_size=2).run()
    campaign.refresh_from_db()
    assert stats.sent == 0 and len(locmem.outbox) == 2
    assert (campaign.status, campaign.pause_reason) == ("paused", "content")
    assert "soldes" in str(campaign.content_problems).lower()
    assert Recipient.objects.filter(campaign=campaign, status="pending").count() == 4


@ON_POSTGRES
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_skips_a_row_another_statement_holds_instead_of_waiting_for_it():
    """The heartbeat renews the worker's leases while the hand-off writes the same rows on
    another connection: waiting on a row held elsewhere (and locking in its own order) could
    deadlock with that writer. It renews what it can and leaves held rows to their writer."""
    from enseigne.delivery import ledger

    with db_scope(ALL):
        world = build_world()
        contacts(world.unit_a, 5)
        campaign = local_campaign(world)
        launched(world, campaign)
        rows = list(Recipient.objects.filter(campaign=campaign).order_by("pk"))
        now = timezone.now()
        Recipient.objects.filter(pk__in=[r.pk for r in rows]).update(
            lease_owner="w1", lease_until=now + dt.timedelta(seconds=30)
        )
    default = settings.DATABASES["default"]
    table = Recipient._meta.db_table
    held = rows[2].pk
    with psycopg.connect(
        host=default["HOST"] or "127.0.0.1",
        port=default["PORT"] or 5432,
        user="postgres",
        dbname=connection.settings_dict["NAME"],
    ) as other:
        other.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [held])  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '3s'")
        try:
            with db_scope(ALL):
                renewed = ledger.renew(
                    campaign_id=campaign.pk, worker="w1", until=now + dt.timedelta(minutes=5)
                )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = 0")
        other.rollback()
    assert renewed == 4
    with db_scope(ALL):
        leases = dict(Recipient.objects.filter(campaign=campaign).values_list("pk", "lease_until"))
    assert leases[held] < now + dt.timedelta(minutes=1)
    assert all(at > now + dt.timedelta(minutes=4) for pk, at in leases.items() if pk != held)
