"""Journeys (issue 22): event and segment triggers read from the database — a purchase (never
a return, once per order, a late commit still read, never another store's), a first
purchase, a purchase in a category, a person's click (never a machine's), entering a
segment, an RFM group or a persona (the first pass only records; leaving and coming back
enters again) — and the quick passes between two ticks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from enseigne.campaigns.models import Recipient
from enseigne.commerce.models import Order, OrderLine
from enseigne.contacts.models import Contact
from enseigne.contacts.services import consent_record, open_tracking_record, segment_save
from enseigne.journeys import engine, triggers
from enseigne.journeys import flow as flows
from enseigne.journeys.models import (
    Enrollment,
    JourneyRun,
    JourneySend,
    JourneyTemplate,
    SegmentMember,
)
from enseigne.network.models import Network
from enseigne.network.selectors import unit_time_zone
from enseigne.personas.models import Persona, PersonaRecord
from enseigne.rfm.models import RecordScore
from enseigne.tracking import services as tracking
from tests.campaign_helpers import contacts, email_template, local_campaign
from tests.test_journey_engine import journey
from tests.test_journey_triggers import one_step

pytestmark = pytest.mark.django_db


def activated(world, trigger: dict, *, unit=None, ago=dt.timedelta(hours=1), **fields):
    """A running journey of one e-mail step on ``trigger``, activated ``ago``."""
    run = journey(
        world,
        one_step(email_template(world, f"T-{Enrollment.objects.count()}"), trigger),
        unit=unit,
        reentry=fields.pop("reentry", JourneyTemplate.Reentry.EVERY),
        **fields,
    )
    JourneyRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - ago)
    run.refresh_from_db()
    return run


def order(unit, contact, external_id, total="30", *, when=None, lines=()):
    """An order of ``unit`` (``lines``: (category, amount, is_return))."""
    made = Order.objects.create(
        unit=unit,
        unit_path=unit.path,
        external_id=external_id,
        contact=contact,
        occurred_at=when or timezone.now(),
        total=Decimal(total),
        source=Order.Source.API,
    )
    for position, (category, amount, is_return) in enumerate(lines):
        OrderLine.objects.create(
            order=made,
            unit_path=unit.path,
            position=position,
            sku=f"SKU-{position}",
            category=category,
            quantity=Decimal("-1" if is_return else "1"),
            amount=Decimal(amount),
            is_return=is_return,
        )
    return made


def entered(run) -> list[tuple[int, str]]:
    return sorted(Enrollment.objects.filter(run=run).values_list("contact_id", "occurrence"))


def later(seconds: float = 1) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def test_a_purchase_enters_once_per_order_and_a_return_never(world):
    ann, bob, cat, dan = contacts(world.unit_a, 4)
    (other,) = contacts(world.unit_a2, 1)
    run = activated(world, {"kind": "event", "event": "purchase"})
    before = order(world.unit_a, dan, "OLD", when=run.created_at - dt.timedelta(minutes=5))
    sale = order(world.unit_a, ann, "S-1", lines=[("Shoes", "30", False)])
    order(world.unit_a, bob, "R-1", "-20", lines=[("Shoes", "-20", True)])  # a return
    order(world.unit_a, cat, "Z-1", "0")  # nothing paid: not a purchase
    order(world.unit_a, None, "ANON")  # no buyer
    order(world.unit_a2, other, "S-1")  # another store's order, in the other store
    assert triggers.run_triggers(later()) == 1
    assert triggers.run_triggers(later(2)) == 0  # seen again within the margin: once
    assert entered(run) == [(ann.pk, str(sale.pk))]
    second = order(world.unit_a, ann, "S-2")
    assert triggers.run_triggers(later(3), quick=True) == 1
    assert set(entered(run)) == {(ann.pk, str(sale.pk)), (ann.pk, str(second.pk))}
    assert before.pk not in {int(o) for _c, o in entered(run)}


def test_another_stores_order_never_enrolls_in_this_stores_run(world):
    (mine,) = contacts(world.unit_a, 1)
    run = activated(world, {"kind": "event", "event": "purchase"})
    # Even an order of the other store naming this store's record (whatever wrote it).
    order(world.unit_a2, mine, "X-1")
    assert triggers.run_triggers(later()) == 0
    assert entered(run) == []


def test_an_order_committed_late_is_read_by_the_next_minute_pass(world):
    (ann,) = contacts(world.unit_a, 1)
    run = activated(world, {"kind": "event", "event": "purchase"})
    assert triggers.run_triggers(later()) == 0
    late = order(world.unit_a, ann, "LATE")
    # Its transaction began 3 minutes before the last pass, and committed after it.
    Order.objects.filter(pk=late.pk).update(created_at=timezone.now() - dt.timedelta(minutes=3))
    assert triggers.run_triggers(later(2), quick=True) == 0  # beyond the quick margin
    assert triggers.run_triggers(later(3)) == 1  # within the tick's ten minutes
    assert entered(run) == [(ann.pk, str(late.pk))]
    # Beyond the margin (an order 20 minutes late) is not read again.
    (bob,) = contacts(world.unit_a, 1, start=5)
    lost = order(world.unit_a, bob, "LOST")
    Order.objects.filter(pk=lost.pk).update(created_at=timezone.now() - dt.timedelta(minutes=20))
    assert triggers.run_triggers(later(4)) == 0


def test_a_purchase_reported_long_after_it_happened_does_not_enter(world):
    (ann,) = contacts(world.unit_a, 1)
    run = activated(world, {"kind": "event", "event": "purchase"}, ago=dt.timedelta(days=30))
    order(world.unit_a, ann, "OLD", when=timezone.now() - dt.timedelta(days=10))
    assert triggers.run_triggers(later()) == 0
    fresh = order(world.unit_a, ann, "NEW", when=timezone.now() - dt.timedelta(days=2))
    assert triggers.run_triggers(later(2)) == 1
    assert entered(run) == [(ann.pk, str(fresh.pk))]


def test_a_first_purchase_enters_once(world):
    old, new = contacts(world.unit_a, 2)
    order(world.unit_a, old, "O-0", when=timezone.now() - dt.timedelta(days=40))
    run = activated(world, {"kind": "event", "event": "first_purchase"})
    order(world.unit_a, old, "O-1")  # not their first
    order(world.unit_a, new, "N-0", "-5", lines=[("Shoes", "-5", True)])  # a return first
    order(world.unit_a, new, "N-1")
    order(world.unit_a, new, "N-2")
    assert triggers.run_triggers(later()) == 1
    order(world.unit_a, new, "N-3")
    assert triggers.run_triggers(later(2)) == 0
    assert entered(run) == [(new.pk, "first")]


def test_a_purchase_in_a_category_case_blind_and_not_a_returned_line(world):
    ann, bob, cat = contacts(world.unit_a, 3)
    run = activated(world, {"kind": "event", "event": "category_purchase", "category": "Shoes "})
    bought = order(world.unit_a, ann, "A", lines=[("SHOES", "30", False)])
    order(world.unit_a, bob, "B", "10", lines=[("Hats", "40", False), ("Shoes", "-30", True)])
    order(world.unit_a, cat, "C", lines=[("Shoes-and-socks", "30", False)])
    assert triggers.run_triggers(later()) == 1
    assert entered(run) == [(ann.pk, str(bought.pk))]


def click(message: Recipient, *, machine: bool = False) -> None:
    """A click on a link of ``message``, recorded as the click endpoint records it."""
    link = tracking.LinkTarget(
        0, message.campaign_id, message.unit_id, message.unit_path, "https://example.com/"
    )
    tracking.click(message.pk, link, machine=machine)


def clicks_world(world):
    ann, bob, cat = contacts(world.unit_a, 3)
    (other,) = contacts(world.unit_a2, 1)
    first = local_campaign(world)
    second = local_campaign(world, template=email_template(world, "Autre"))
    elsewhere = local_campaign(world, unit=world.unit_a2)

    def message(campaign, contact, unit):
        return Recipient.objects.create(
            campaign=campaign, contact=contact, unit=unit, unit_path=unit.path, channel="email"
        )

    return ann, bob, cat, other, first, second, elsewhere, message


def test_a_persons_click_on_the_campaign_enters_a_machines_never(world):
    ann, bob, cat, other, first, second, elsewhere, message = clicks_world(world)
    run = activated(world, {"kind": "event", "event": "click", "campaign": str(first.public_id)})
    anywhere = activated(world, {"kind": "event", "event": "click"}, name="Any click")
    to_ann = message(first, ann, world.unit_a)
    click(to_ann)
    click(to_ann)  # a second link of the same message: the same occurrence
    to_bob = message(first, bob, world.unit_a)
    click(to_bob, machine=True)  # a mail scanner
    to_cat = message(second, cat, world.unit_a)
    click(to_cat)  # another campaign
    click(message(elsewhere, other, world.unit_a2))  # another store's
    tracking.opened(first.pk, world.unit_a.pk, to_bob.pk, machine=False)  # not a click
    assert triggers.run_triggers(later()) == 3
    assert entered(run) == [(ann.pk, str(to_ann.pk))]
    assert entered(anywhere) == sorted([(ann.pk, str(to_ann.pk)), (cat.pk, str(to_cat.pk))])
    assert triggers.run_triggers(later(2)) == 0


def test_a_click_on_the_journeys_own_message_does_not_enter_it_again(world):
    (ann,) = contacts(world.unit_a, 1)
    run = activated(world, {"kind": "event", "event": "click"})
    consent_record(actor=None, contact=ann, channel="email", status="granted", source="form")
    engine.enroll(run, [ann.pk], occurrence="seed")
    engine.advance_all(now=later())
    click(Recipient.objects.get(campaign=JourneySend.objects.get(run=run).campaign))
    assert triggers.run_triggers(later(2)) == 0


def test_an_open_tracking_consent_is_not_a_marketing_consent(world):
    (ann,) = contacts(world.unit_a, 1, email=False)
    run = activated(world, {"kind": "consent", "channel": "email"})
    open_tracking_record(contact=ann, granted=True, source="form")
    Contact.objects.filter(pk=ann.pk).update(email_consent="granted")  # consented before
    assert triggers.run_triggers(later()) == 0
    assert entered(run) == []


def local_day(run, moment: dt.datetime) -> str:
    """The store's day at ``moment``: a segment entrance's occurrence."""
    return moment.astimezone(ZoneInfo(unit_time_zone(run.unit))).date().isoformat()


def segment_pass(moment: dt.datetime) -> int:
    return triggers.run_triggers(moment)


def test_a_segment_first_pass_records_then_entering_leaving_and_coming_back(world):
    ann, bob, cat = contacts(world.unit_a, 3)
    Contact.objects.filter(pk__in=[ann.pk, bob.pk]).update(is_customer=True)
    customers = {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}
    run = activated(world, {"kind": "segment", "rules": customers})
    start = timezone.now()
    assert segment_pass(start) == 0  # the first pass records the members, enters nobody
    assert set(SegmentMember.objects.values_list("contact_id", flat=True)) == {ann.pk, bob.pk}
    Contact.objects.filter(pk=cat.pk).update(is_customer=True)
    assert segment_pass(start + dt.timedelta(minutes=1)) == 0  # not read again so soon
    step = triggers.SEGMENT_EVERY
    day = start + dt.timedelta(days=1)
    assert segment_pass(day) == 1
    assert entered(run) == [(cat.pk, local_day(run, day))]
    assert segment_pass(day + step) == 0  # still a member: nothing new
    Contact.objects.filter(pk=cat.pk).update(is_customer=False)
    assert segment_pass(day + 2 * step) == 0  # left: its row goes
    assert not SegmentMember.objects.filter(contact=cat).exists()
    Contact.objects.filter(pk=cat.pk).update(is_customer=True)
    back = day + dt.timedelta(days=2)
    assert segment_pass(back) == 1  # came back another day: enters again
    assert entered(run) == [
        (cat.pk, local_day(run, day)),
        (cat.pk, local_day(run, back)),
    ]


def test_a_segment_trigger_on_a_persona_an_rfm_group_or_a_saved_segment(world):
    ann, bob, cat = contacts(world.unit_a, 3)
    network = Network.objects.get(node=world.root)
    persona = Persona.objects.create(
        network=network, name="Familles", position=1, rules={"match": "all", "rules": []}
    )
    by_persona = activated(world, {"kind": "segment", "persona": str(persona.public_id)})
    by_group = activated(
        world, {"kind": "segment", "rfm_group": ["champions", "loyal"]}, name="Champions"
    )
    saved = segment_save(
        actor=world.hq_admin,
        owner=world.root,
        name="Gmail",
        rules={"match": "all", "rules": [{"field": "email", "op": "contains", "value": ".7@"}]},
    )
    by_saved = activated(world, {"kind": "segment", "segment": str(saved.public_id)}, name="Saved")
    start = timezone.now()
    assert triggers.run_triggers(start) == 0  # first passes: nobody
    PersonaRecord.objects.create(contact=ann, persona=persona, unit_path=world.unit_a.path)
    RecordScore.objects.create(
        contact=bob,
        unit_path=world.unit_a.path,
        last_purchase_at=start,
        purchases=3,
        net=Decimal("90"),
        recency=5,
        frequency=4,
        monetary=4,
        group="loyal",
        computed_at=start,
    )
    assert triggers.run_triggers(start + dt.timedelta(days=1)) == 2
    day = local_day(by_persona, start + dt.timedelta(days=1))
    assert entered(by_persona) == [(ann.pk, day)]
    assert entered(by_group) == [(bob.pk, day)]
    assert entered(by_saved) == []
    (dan,) = contacts(world.unit_a, 1, start=7)  # ….7@… joins the saved segment

    assert triggers.run_triggers(start + dt.timedelta(days=2)) >= 1
    assert [c for c, _o in entered(by_saved)] == [dan.pk]


def test_a_segment_not_shared_with_the_store_reads_nothing(world):
    (ann,) = contacts(world.unit_a, 1)
    theirs = segment_save(
        actor=world.hq_admin,
        owner=world.unit_a2,
        name="Theirs",
        rules={"match": "all", "rules": [{"field": "email", "op": "contains", "value": "@"}]},
    )
    run = activated(world, {"kind": "segment", "segment": str(theirs.public_id)})
    start = timezone.now()
    for days in range(3):
        assert triggers.run_triggers(start + dt.timedelta(days=days)) == 0
    assert not SegmentMember.objects.filter(run=run).exists()
    run.refresh_from_db()
    assert run.events_read_at is None  # still its first pass, whenever it reads again


def test_a_new_version_on_another_segment_takes_a_new_snapshot(world):
    ann, bob = contacts(world.unit_a, 2)
    Contact.objects.filter(pk=ann.pk).update(is_customer=True)
    customers = {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}
    everyone = {"match": "all", "rules": [{"field": "email", "op": "contains", "value": "@"}]}
    run = activated(world, {"kind": "segment", "rules": customers})
    start = timezone.now()
    assert triggers.run_triggers(start) == 0
    version = run.version
    version.flow = {**version.flow, "trigger": {"kind": "segment", "rules": everyone}}
    version.save()
    # bob is in the new segment, not the old one: a new snapshot, not an entrance.
    assert triggers.run_triggers(start + dt.timedelta(days=1)) == 0
    assert set(SegmentMember.objects.values_list("contact_id", flat=True)) == {ann.pk, bob.pk}
    (cat,) = contacts(world.unit_a, 1, start=7)
    assert triggers.run_triggers(start + dt.timedelta(days=2)) == 1
    assert [c for c, _o in entered(run)] == [cat.pk]


def test_a_quick_pass_reads_only_what_a_person_waits_on(world):
    (ann,) = contacts(world.unit_a, 1, birthday=dt.date(1990, 1, 1))
    run = activated(world, {"kind": "date", "field": "birthday"})
    segment = activated(
        world,
        {"kind": "segment", "rules": {"match": "all", "rules": []}},
        name="Everyone",
    )
    assert triggers.run_triggers(later(), quick=True) == 0
    for quiet in (run, segment):
        quiet.refresh_from_db()
        assert (quiet.days_read_on, quiet.events_read_at) == (None, None)


@pytest.mark.parametrize(
    ("trigger", "problem"),
    [
        ({"kind": "event", "event": "category_purchase"}, "category"),
        ({"kind": "event", "event": "category_purchase", "category": "  "}, "category"),
        ({"kind": "event", "event": "category_purchase", "category": "x" * 121}, "category"),
        ({"kind": "event", "event": "category_purchase", "category": ["Shoes"]}, "category"),
        ({"kind": "event", "event": "click", "campaign": "not-an-id"}, "campaign"),
        ({"kind": "event", "event": "click", "campaign": 12}, "campaign"),
        ({"kind": "event", "event": "refund"}, "event trigger"),
        ({"kind": "segment"}, "one of"),
        ({"kind": "segment", "rules": {"match": "all"}, "persona": "x"}, "one of"),
        ({"kind": "segment", "rules": "all"}, "rules"),
        ({"kind": "segment", "segment": "'; DROP TABLE x;--"}, "saved segment"),
        ({"kind": "segment", "rfm_group": [1, 2]}, "RFM groups"),
        ({"kind": "segment", "persona": ["p"] * 21}, "RFM groups"),
    ],
)
def test_event_and_segment_triggers_refused_naming_the_trigger(trigger, problem):
    with pytest.raises(ValidationError) as refused:
        flows.parse({"trigger": trigger, "start": "out", "steps": {"out": {"kind": "exit"}}})
    assert any(problem in message for message in refused.value.messages), refused.value.messages


@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "event", "event": "purchase"},
        {"kind": "event", "event": "category_purchase", "category": "Chaussures"},
        {"kind": "event", "event": "click"},
        {"kind": "event", "event": "click", "campaign": "6f1c1b9e-4a51-4b8e-9a57-0c2f3f1b2d4e"},
        {"kind": "segment", "rfm_group": "champions"},
        {"kind": "segment", "persona": ["6f1c1b9e-4a51-4b8e-9a57-0c2f3f1b2d4e"]},
        {"kind": "segment", "segment": "6f1c1b9e-4a51-4b8e-9a57-0c2f3f1b2d4e"},
    ],
)
def test_event_and_segment_triggers_that_read(trigger):
    parsed = flows.parse({"trigger": trigger, "start": "out", "steps": {"out": {"kind": "exit"}}})
    assert parsed.trigger == trigger


def test_the_claim_takes_tied_rows_in_id_order_from_the_index(world):
    people = contacts(world.unit_a, 5)
    run = activated(world, {"kind": "consent", "channel": "email"})
    moment = timezone.now()
    engine.enroll(run, [p.pk for p in people], occurrence="x", now=moment)
    ids = sorted(Enrollment.objects.values_list("pk", flat=True))
    from django.db import transaction

    with transaction.atomic():
        assert [r.pk for r in engine.due_rows(later(), 3)] == ids[:3]
    if connection.vendor != "postgresql":
        return
    query = Enrollment.objects.filter(
        status="waiting", wake_at__lte=later(), run__status="active"
    ).order_by("wake_at", "id")[:500]
    sql, params = query.query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert "journeys_enrollment_due_id" in plan
    assert "Sort" not in plan


def test_the_tick_schedules_the_minutes_quick_passes(world, monkeypatch):
    from types import SimpleNamespace

    from enseigne.journeys import tasks

    (ann,) = contacts(world.unit_a, 1)
    run = activated(world, {"kind": "event", "event": "purchase"})
    delays: list[int] = []
    monkeypatch.setattr(tasks, "HUEY", SimpleNamespace(immediate=False))
    monkeypatch.setattr(
        tasks, "journeys_quick", SimpleNamespace(schedule=lambda delay: delays.append(delay))
    )
    tasks.journeys_tick.call_local()
    assert delays == [10, 20, 30, 40, 50]
    sale = order(world.unit_a, ann, "Q-1")
    monkeypatch.undo()
    tasks.journeys_quick.call_local()  # a quick pass enters and takes the first step
    (row,) = Enrollment.objects.filter(run=run)
    assert (row.occurrence, row.status) == (str(sale.pk), Enrollment.Status.DONE)
