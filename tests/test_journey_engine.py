"""Journeys (issue 22): the engine moves due enrollments through their steps, queues each
send step's messages in the campaign ledger (every gate applies at hand-off, as for a
campaign), and never queues twice — whether a batch is rolled back, run again, or a
trigger is seen twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.utils import timezone

from enseigne.campaigns.models import Campaign, Recipient
from enseigne.commerce.models import Order
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from enseigne.journeys import engine, timing
from enseigne.journeys.flow import Wait
from enseigne.journeys.models import (
    Enrollment,
    EnrollmentStep,
    JourneyRun,
    JourneySend,
    JourneyTemplate,
    JourneyVersion,
)
from enseigne.network.models import Network
from enseigne.network.selectors import unit_time_zone
from tests.campaign_helpers import contacts, email_template

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


W = Enrollment.Status
NOW = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
CUSTOMERS = {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}


def welcome_flow(hello: str, reminder: str) -> dict:
    return {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "hello",
        "steps": {
            "hello": {"kind": "send_email", "template": hello, "next": "pause"},
            "pause": {"kind": "wait", "days": 2, "next": "check"},
            "check": {"kind": "condition", "rules": CUSTOMERS, "yes": "out", "no": "remind"},
            "remind": {"kind": "send_email", "template": reminder},
            "out": {"kind": "exit"},
        },
    }


def journey(world, flow: dict, *, unit=None, **template_fields) -> JourneyRun:
    unit = unit or world.unit_a
    template = JourneyTemplate.objects.create(
        network=Network.objects.get(node=world.root),
        owner=world.root,
        owner_path=world.root.path,
        name=template_fields.pop("name", "Bienvenue"),
        created_by=world.hq_admin,
        **template_fields,
    )
    version = JourneyVersion.objects.create(
        template=template, number=1, owner_path=world.root.path, flow=flow
    )
    template.live_version = version
    template.save()
    return JourneyRun.objects.create(
        template=template,
        version=version,
        unit=unit,
        unit_path=unit.path,
        starts_on=NOW.date(),
        created_by=world.manager_a,
    )


@pytest.fixture
def welcome(world):
    hello, reminder = email_template(world, "Bienvenue"), email_template(world, "Relance")
    run = journey(world, welcome_flow(str(hello.public_id), str(reminder.public_id)))
    people = contacts(world.unit_a, 4, is_customer=False)
    for customer in people[:2]:
        customer.is_customer = True
        customer.save()
    return run, people


def step_campaign(run, step) -> Campaign:
    return JourneySend.objects.get(run=run, step=step).campaign


def outcomes(step: str | None = None) -> Counter:
    rows = EnrollmentStep.objects.all()
    if step:
        rows = rows.filter(step=step)
    return Counter(rows.values_list("outcome", flat=True))


def test_a_welcome_journey_sends_waits_splits_and_ends(world, welcome):
    run, people = welcome
    assert engine.enroll(run, [p.pk for p in people], now=NOW) == 4
    assert engine.advance_due(now=NOW) == 4
    rows = list(Enrollment.objects.order_by("pk"))
    assert {(r.step, r.status) for r in rows} == {("pause", W.WAITING)}
    # Two days on the store's clock, at the same local time.
    zone = ZoneInfo(unit_time_zone(world.unit_a))
    assert {r.wake_at for r in rows} == {timing.wake_at(Wait(days=2), NOW, zone)}
    hello = step_campaign(run, "hello")
    assert hello.kind == Campaign.Kind.JOURNEY and hello.owner_id == world.unit_a.pk
    ledger = Recipient.objects.filter(campaign=hello)
    assert sorted(ledger.values_list("occurrence", flat=True)) == [r.pk for r in rows]
    run_campaign(hello.pk)
    assert sorted(m.to for m in locmem.outbox) == sorted(p.email for p in people)
    hello.refresh_from_db()
    assert hello.status == Campaign.Status.SENDING  # a journey's step is never "finished"

    assert engine.advance_due(now=NOW + dt.timedelta(days=1)) == 0  # still waiting
    assert engine.advance_due(now=NOW + dt.timedelta(days=2, minutes=1)) == 4
    by_contact = {r.contact_id: r for r in Enrollment.objects.all()}
    for customer in people[:2]:
        assert by_contact[customer.pk].status == W.EXITED
    for other in people[2:]:
        assert by_contact[other.pk].status == W.DONE
    locmem.outbox.clear()
    run_campaign(step_campaign(run, "remind").pk)
    assert sorted(m.to for m in locmem.outbox) == sorted(p.email for p in people[2:])
    assert outcomes() == Counter(
        {"sent": 6, "waited": 4, "yes": 2, "no": 2, "exited": 2, "done": 2}
    )


def test_a_batch_rolled_back_queues_nothing_and_runs_whole_again(world, welcome):
    run, people = welcome
    engine.enroll(run, [p.pk for p in people], now=NOW)

    class Crash(Exception):
        pass

    with pytest.raises(Crash), transaction.atomic():
        assert engine.advance_due(now=NOW) == 4
        raise Crash  # the worker dies before the batch commits
    assert not Recipient.objects.exists() and not EnrollmentStep.objects.exists()
    assert set(Enrollment.objects.values_list("step", flat=True)) == {"hello"}
    assert engine.advance_due(now=NOW) == 4
    assert Recipient.objects.count() == 4
    assert engine.advance_due(now=NOW) == 0
    assert Recipient.objects.count() == 4


def test_a_trigger_seen_twice_enrolls_once_and_each_occurrence_is_its_own_message(world):
    hello = email_template(world, "Anniversaire")
    flow = {
        "trigger": {"kind": "date", "field": "birthday"},
        "start": "hello",
        "steps": {"hello": {"kind": "send_email", "template": str(hello.public_id)}},
    }
    run = journey(world, flow, name="Anniversaire", reentry=JourneyTemplate.Reentry.EVERY)
    (person,) = contacts(world.unit_a, 1)
    assert engine.enroll(run, [person.pk], occurrence="2026", now=NOW) == 1
    assert engine.enroll(run, [person.pk, person.pk], occurrence="2026", now=NOW) == 0
    engine.advance_due(now=NOW)
    assert engine.enroll(run, [person.pk], occurrence="2027", now=NOW) == 1
    engine.advance_due(now=NOW)
    campaign = step_campaign(run, "hello")
    assert Recipient.objects.filter(campaign=campaign, contact=person).count() == 2
    run_campaign(campaign.pk)
    assert [m.to for m in locmem.outbox] == [person.email, person.email]
    assert set(Enrollment.objects.values_list("status", flat=True)) == {W.DONE}


def test_reentry_rules(world):
    hello = email_template(world, "Relance")
    flow = {
        "trigger": {"kind": "inactivity", "days": 90},
        "start": "hello",
        "steps": {"hello": {"kind": "send_email", "template": str(hello.public_id)}},
    }
    never = journey(world, flow, name="Une fois")
    after = journey(
        world, flow, name="Après 30 jours", reentry=JourneyTemplate.Reentry.AFTER, reentry_days=30
    )
    (person,) = contacts(world.unit_a, 1)
    for occurrence in ("a", "b"):
        engine.enroll(never, [person.pk], occurrence=occurrence, now=NOW)
    assert Enrollment.objects.filter(run=never).count() == 1
    assert engine.enroll(after, [person.pk], occurrence="a", now=NOW) == 1
    assert engine.enroll(after, [person.pk], occurrence="b", now=NOW + dt.timedelta(days=10)) == 0
    assert engine.enroll(after, [person.pk], occurrence="c", now=NOW + dt.timedelta(days=31)) == 1


def test_only_the_runs_store_records_enter(world, welcome):
    run, people = welcome
    (elsewhere,) = contacts(world.unit_b, 1)
    assert engine.enroll(run, [people[0].pk, elsewhere.pk, 999_999_999], now=NOW) == 1
    assert list(Enrollment.objects.values_list("contact_id", flat=True)) == [people[0].pk]


def test_the_control_group_walks_the_flow_and_is_never_sent_anything(world):
    hello = email_template(world, "Témoin")
    flow = {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "hello",
        "steps": {"hello": {"kind": "send_email", "template": str(hello.public_id)}},
    }
    run = journey(world, flow, name="Témoin", holdout_percent=50)
    people = contacts(world.unit_a, 60)
    engine.enroll(run, [p.pk for p in people], now=NOW)
    held = set(Enrollment.objects.filter(held_out=True).values_list("pk", flat=True))
    assert 15 <= len(held) <= 45  # about half, drawn per record
    engine.advance_due(now=NOW)
    queued = set(Recipient.objects.values_list("occurrence", flat=True))
    assert queued.isdisjoint(held) and len(queued) == 60 - len(held)
    assert outcomes() == Counter({"held_out": len(held), "sent": 60 - len(held), "done": 60})


def test_a_random_split_is_stable_and_follows_its_shares(world):
    hello = email_template(world, "A")
    flow = {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "ab",
        "steps": {
            "ab": {
                "kind": "random",
                "branches": [{"share": 20, "next": "a"}, {"share": 80, "next": "b"}],
            },
            "a": {"kind": "send_email", "template": str(hello.public_id)},
            "b": {"kind": "exit"},
        },
    }
    run = journey(world, flow, name="AB")
    people = contacts(world.unit_a, 100)
    engine.enroll(run, [p.pk for p in people], now=NOW)
    engine.advance_due(now=NOW)
    branch = Counter(EnrollmentStep.objects.filter(step="ab").values_list("detail", flat=True))
    assert branch["a"] + branch["b"] == 100 and 8 <= branch["a"] <= 35
    expected = {
        r.pk: ("a" if engine.draw(r.pk, "ab") < 20 else "b") for r in Enrollment.objects.all()
    }
    took = dict(EnrollmentStep.objects.filter(step="ab").values_list("enrollment_id", "detail"))
    assert took == expected


def test_a_purchase_reaches_the_goal_and_ends_the_journey(world, welcome):
    run, people = welcome
    flow = dict(run.version.flow, goal={"kind": "purchase"})
    JourneyVersion.objects.filter(pk=run.version_id).update(flow=flow)
    engine.enroll(run, [p.pk for p in people], now=NOW)
    engine.advance_due(now=NOW)
    buyer = people[3]
    Order.objects.create(
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        external_id="T-1",
        contact=buyer,
        occurred_at=NOW + dt.timedelta(days=1),
        total=Decimal("42.00"),
        source="api",
    )
    Order.objects.create(  # before entering: not the journey's doing
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        external_id="T-0",
        contact=people[2],
        occurred_at=NOW - dt.timedelta(days=5),
        total=Decimal("10.00"),
        source="api",
    )
    engine.advance_due(now=NOW + dt.timedelta(days=3))
    statuses = dict(Enrollment.objects.values_list("contact_id", "status"))
    assert statuses[buyer.pk] == W.GOAL
    assert statuses[people[2].pk] == W.DONE  # reminded: its purchase came before
    assert not Recipient.objects.filter(campaign__name__endswith="remind", contact=buyer).exists()


def test_a_paused_run_keeps_its_people_waiting(world, welcome):
    run, people = welcome
    engine.enroll(run, [p.pk for p in people], now=NOW)
    JourneyRun.objects.filter(pk=run.pk).update(status=JourneyRun.Status.PAUSED)
    assert engine.advance_due(now=NOW) == 0
    JourneyRun.objects.filter(pk=run.pk).update(status=JourneyRun.Status.ACTIVE)
    assert engine.advance_due(now=NOW) == 4


def test_a_withdrawn_template_keeps_people_waiting_and_the_run_says_why(world, welcome):
    """The step cannot send: nothing is queued, its people keep waiting at it (tried again
    every hour) and the run keeps the reason for its pages; once HQ restores the template
    they go on, and the reason is cleared."""
    from enseigne.brand.models import Template

    run, people = welcome
    hello_id = run.version.flow["steps"]["hello"]["template"]
    Template.objects.filter(public_id=hello_id).update(archived=True)
    engine.enroll(run, [p.pk for p in people], now=NOW)
    engine.advance_due(now=NOW)
    rows = list(Enrollment.objects.all())
    assert {(r.status, r.step) for r in rows} == {(W.WAITING, "hello")}
    assert {r.wake_at for r in rows} == {NOW + engine.BLOCKED_RETRY}
    assert not Recipient.objects.exists()
    run.refresh_from_db()
    assert "hello" in run.problem and run.problem_at == NOW
    assert engine.advance_due(now=NOW + dt.timedelta(minutes=30)) == 0
    Template.objects.filter(public_id=hello_id).update(archived=False)
    assert engine.advance_due(now=NOW + dt.timedelta(hours=1)) == 4
    assert Recipient.objects.count() == 4
    run.refresh_from_db()
    assert (run.problem, run.problem_at) == ("", None)


def test_the_campaign_gates_apply_to_a_journeys_messages(world, welcome):
    run, people = welcome
    (no_consent,) = contacts(world.unit_a, 1, email=False, start=50)
    engine.enroll(run, [p.pk for p in [*people, no_consent]], now=NOW)
    engine.advance_due(now=NOW)
    run_campaign(step_campaign(run, "hello").pk)
    row = Recipient.objects.get(contact=no_consent)
    assert (row.status, row.reason) == (Recipient.Status.SKIPPED, "no_consent")
    assert no_consent.email not in [m.to for m in locmem.outbox]


def test_due_rows_come_in_batches_until_none_is_due(world, welcome):
    run, people = welcome
    engine.enroll(run, [p.pk for p in people], now=NOW)
    assert engine.advance_all(now=NOW, limit=3) == 4
    assert Recipient.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_two_workers_share_due_rows_without_doubling(world):
    """PostgreSQL: a worker holding its batch's rows (FOR UPDATE SKIP LOCKED) does not
    block another, which takes the other rows; together they queue each message once."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite's immediate transactions serialise")
    from enseigne.lib.rowsecurity import ALL, db_scope

    with db_scope(ALL):
        hello = email_template(world, "Partage")
        flow = {
            "trigger": {"kind": "consent", "channel": "email"},
            "start": "hello",
            "steps": {"hello": {"kind": "send_email", "template": str(hello.public_id)}},
        }
        run = journey(world, flow, name="Partage")
        people = contacts(world.unit_a, 6)
        engine.enroll(run, [p.pk for p in people], now=NOW)
    holding, release, first = threading.Event(), threading.Event(), []

    def first_worker():
        try:
            with transaction.atomic(), db_scope(ALL):
                rows = engine.due_rows(NOW, 2)
                first.extend(r.pk for r in rows)
                holding.set()
                release.wait(30)
                engine._Batch(NOW, rows).run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=first_worker)
    thread.start()
    assert holding.wait(30)
    with db_scope(ALL):
        assert engine.advance_due(now=NOW) == 4  # the 4 rows the first worker does not hold
    release.set()
    thread.join(30)
    with db_scope(ALL):
        assert Recipient.objects.count() == 6
        assert sorted(Recipient.objects.values_list("occurrence", flat=True)) == sorted(
            Enrollment.objects.values_list("pk", flat=True)
        )
        assert len(first) == 2


def test_the_schedulers_tick_wakes_a_journeys_step_only_when_it_has_rows_to_send(
    world, welcome, monkeypatch
):
    from enseigne.delivery import services as delivery

    monkeypatch.setattr(delivery, "wake", lambda campaign_id: None)
    run, people = welcome
    engine.enroll(run, [p.pk for p in people], now=NOW)
    engine.advance_due(now=NOW)
    hello = step_campaign(run, "hello")
    assert hello.pk in delivery.sending_tick(NOW)  # rows pending: a runner is needed
    run_campaign(hello.pk)
    assert hello.pk not in delivery.sending_tick(NOW)  # all sent: nothing to wake


def test_marketing_pressure_counts_campaigns_and_journeys_together(world):
    """A cap of one e-mail a week: the journey's second step finds the first one counted."""
    from enseigne.campaigns import services

    services.pressure_rules_replace(actor=world.hq_admin, node=world.root, rules=[("email", 1, 7)])
    first, second = email_template(world, "Un"), email_template(world, "Deux")
    flow = {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "one",
        "steps": {
            "one": {"kind": "send_email", "template": str(first.public_id), "next": "later"},
            "later": {"kind": "wait", "hours": 1, "next": "two"},
            "two": {"kind": "send_email", "template": str(second.public_id)},
        },
    }
    run = journey(world, flow, name="Pression")
    (person,) = contacts(world.unit_a, 1)
    engine.enroll(run, [person.pk], now=NOW)
    engine.advance_due(now=NOW)
    run_campaign(step_campaign(run, "one").pk)
    engine.advance_due(now=NOW + dt.timedelta(hours=2))
    run_campaign(step_campaign(run, "two").pk)
    assert [m.to for m in locmem.outbox] == [person.email]
    row = Recipient.objects.get(campaign=step_campaign(run, "two"))
    assert (row.status, row.reason) == (Recipient.Status.SKIPPED, "pressure")


def test_the_store_and_hq_read_why_a_step_cannot_send(world, welcome, client):
    run, _people = welcome
    JourneyRun.objects.filter(pk=run.pk).update(
        problem="The template of step “hello” was withdrawn.", problem_at=NOW
    )
    client.force_login(world.manager_a)
    page = client.get(f"/journeys/runs/{run.public_id}/").content.decode()
    assert 'id="run-problem"' in page and "“hello” was withdrawn" in page
    client.force_login(world.hq_admin)
    page = client.get(f"/hq/journeys/{run.template.public_id}/").content.decode()
    assert "a step cannot send" in page
