"""Journeys (issue 22): the triggers read from the database — a consent given (only after
the journey started, once per consent), a date on the store's calendar (a birthday once a
year, on the right local day across a change of time, 29 February in other years, days
missed while no worker ran), and inactivity (each lapse once)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from enseigne.commerce.models import Order
from enseigne.contacts.models import ConsentEvent
from enseigne.contacts.services import consent_record
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from enseigne.journeys import engine, triggers
from enseigne.journeys.models import Enrollment, JourneyRun, JourneySend, JourneyTemplate
from tests.campaign_helpers import contacts, email_template
from tests.test_journey_engine import journey

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def backdate_consents(contact, when: dt.datetime) -> None:
    """Consent events are append-only for the application (PostgreSQL: the app role may not
    update them): the test moves their recording time as the schema's owner."""
    from django.db import connection

    with connection.cursor() as cursor:
        app_role = None
        if connection.vendor == "postgresql":
            cursor.execute("SELECT current_user")
            (app_role,) = cursor.fetchone()
            cursor.execute("RESET ROLE")
        ConsentEvent.objects.filter(contact=contact).update(recorded_at=when)
        if app_role:
            cursor.execute(f"SET ROLE {connection.ops.quote_name(app_role)}")


def one_step(template, trigger: dict) -> dict:
    return {
        "trigger": trigger,
        "start": "hello",
        "steps": {"hello": {"kind": "send_email", "template": str(template.public_id)}},
    }


def test_a_consent_given_after_the_start_enters_once(world):
    people = contacts(world.unit_a, 4, email=False, sms=True)
    consent_record(  # before the journey: not welcomed
        actor=None, contact=people[0], channel="email", status="granted", source="in_store"
    )
    run = journey(
        world,
        one_step(email_template(world, "Bienvenue"), {"kind": "consent", "channel": "email"}),
        reentry=JourneyTemplate.Reentry.EVERY,
    )
    backdate_consents(people[0], timezone.now() - dt.timedelta(hours=1))
    for person in people[1:3]:
        consent_record(actor=None, contact=person, channel="email", status="granted", source="form")
    consent_record(  # another channel: not this journey's
        actor=None, contact=people[3], channel="sms", status="granted", source="form"
    )
    now = timezone.now() + dt.timedelta(seconds=1)
    assert triggers.run_triggers(now) == 2
    assert triggers.run_triggers(now + dt.timedelta(minutes=1)) == 0  # read again: no double
    entered = set(Enrollment.objects.values_list("contact_id", flat=True))
    assert entered == {people[1].pk, people[2].pk}
    # A withdrawal before the pass: not welcomed.
    consent_record(actor=None, contact=people[3], channel="email", status="granted", source="form")
    consent_record(
        actor=None, contact=people[3], channel="email", status="withdrawn", source="form"
    )
    assert triggers.run_triggers(timezone.now() + dt.timedelta(seconds=1)) == 0
    engine.advance_all(now=timezone.now() + dt.timedelta(minutes=5))
    run_campaign(JourneySend.objects.get(run=run).campaign_id)
    assert sorted(m.to for m in locmem.outbox) == sorted([people[1].email, people[2].email])


def test_a_consent_committed_a_little_late_is_still_read(world):
    (person,) = contacts(world.unit_a, 1, email=False)
    run = journey(
        world, one_step(email_template(world, "Bienvenue"), {"kind": "consent", "channel": "email"})
    )
    JourneyRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))
    assert triggers.run_triggers(timezone.now()) == 0
    consent_record(actor=None, contact=person, channel="email", status="granted", source="form")
    # Its transaction started before the last pass: recorded_at is older than that pass.
    backdate_consents(person, timezone.now() - dt.timedelta(minutes=3))
    assert triggers.run_triggers(timezone.now()) == 1


def birthdays_world(world, days: list[dt.date]):
    people = contacts(world.unit_a, len(days))
    for person, day in zip(people, days, strict=True):
        person.birthday = day.replace(year=1990 if day.month != 2 or day.day != 29 else 1992)
        person.save()
    return people


def test_birthdays_enter_on_the_stores_local_day_across_the_change_of_time(world):
    """Paris goes to summer time on 2026-03-29: every birthday of 27–31 March enters on its
    own local day, whatever hour (UTC) the passes run, and once."""
    days = [dt.date(2026, 3, d) for d in (27, 28, 29, 30, 31) for _ in range(3)]
    people = birthdays_world(world, days)
    run = journey(
        world,
        one_step(email_template(world, "Anniversaire"), {"kind": "date", "field": "birthday"}),
        reentry=JourneyTemplate.Reentry.EVERY,
    )
    JourneyRun.objects.filter(pk=run.pk).update(starts_on=dt.date(2026, 3, 1))
    moment = dt.datetime(2026, 3, 26, 21, 37, tzinfo=dt.UTC)  # a pass every 47 minutes
    while moment < dt.datetime(2026, 4, 1, 3, 0, tzinfo=dt.UTC):
        triggers.run_triggers(moment)
        engine.advance_due(now=moment)
        moment += dt.timedelta(minutes=47)
    by_contact = {e.contact_id: e for e in Enrollment.objects.all()}
    assert set(by_contact) == {p.pk for p in people}
    for person in people:
        entered = by_contact[person.pk].entered_at.astimezone(PARIS)
        assert (entered.month, entered.day) == (person.birthday.month, person.birthday.day)
        assert by_contact[person.pk].occurrence == "2026"
        assert by_contact[person.pk].status == Enrollment.Status.DONE
    run_campaign(JourneySend.objects.get(run=run).campaign_id)
    assert Counter(m.to for m in locmem.outbox) == Counter(p.email for p in people)


def test_a_birthday_each_year_and_29_february_on_the_28th(world):
    leap, plain = birthdays_world(world, [dt.date(1992, 2, 29), dt.date(1990, 2, 28)])
    run = journey(
        world,
        one_step(email_template(world, "Anniversaire"), {"kind": "date", "field": "birthday"}),
        reentry=JourneyTemplate.Reentry.EVERY,
    )
    JourneyRun.objects.filter(pk=run.pk).update(starts_on=dt.date(2026, 1, 1))
    for year in (2027, 2028):
        for day in (27, 28, 29):
            if day == 29 and year != 2028:
                continue
            moment = dt.datetime(year, 2, day, 10, 0, tzinfo=dt.UTC)
            triggers.run_triggers(moment)
    got = sorted(Enrollment.objects.values_list("contact_id", "occurrence"))
    assert got == sorted(
        [(leap.pk, "2027"), (plain.pk, "2027"), (leap.pk, "2028"), (plain.pk, "2028")]
    )
    for enrollment in Enrollment.objects.filter(occurrence="2028", contact=leap):
        assert enrollment.entered_at.date() == dt.date(2028, 2, 29)


def test_days_missed_while_no_worker_ran_are_read_and_a_week_before_offsets(world):
    (person,) = birthdays_world(world, [dt.date(1990, 6, 10)])
    run = journey(
        world,
        one_step(
            email_template(world, "Bientôt"),
            {"kind": "date", "field": "birthday", "offset_days": -7},
        ),
        reentry=JourneyTemplate.Reentry.EVERY,
    )
    JourneyRun.objects.filter(pk=run.pk).update(
        starts_on=dt.date(2026, 5, 1), days_read_on=dt.date(2026, 5, 31)
    )
    # No pass between 1 and 5 June; the 3rd (a week before the 10th) is read on the 5th.
    assert triggers.run_triggers(dt.datetime(2026, 6, 5, 8, 0, tzinfo=dt.UTC)) == 1
    assert Enrollment.objects.get().occurrence == "2026"
    run.refresh_from_db()
    assert run.days_read_on == dt.date(2026, 6, 5)


def test_a_date_attribute_and_hostile_field_names(world):
    (person,) = contacts(world.unit_a, 1, attributes={"first_visit": "2019-09-14"})
    run = journey(
        world,
        one_step(email_template(world, "Visite"), {"kind": "date", "field": "first_visit"}),
        reentry=JourneyTemplate.Reentry.EVERY,
    )
    JourneyRun.objects.filter(pk=run.pk).update(starts_on=dt.date(2026, 1, 1))
    assert triggers.run_triggers(dt.datetime(2026, 9, 14, 9, 0, tzinfo=dt.UTC)) == 1
    for field in ("first_visit'; DROP TABLE x;--", "a__b", "Birthday"):
        flow = one_step(email_template(world, f"V-{len(field)}"), {"kind": "date", "field": field})
        other = journey(world, flow, name=f"Hostile {field[:20]}", unit=world.unit_a2)
        JourneyRun.objects.filter(pk=other.pk).update(starts_on=dt.date(2026, 1, 1))
    assert triggers.run_triggers(dt.datetime(2026, 9, 15, 9, 0, tzinfo=dt.UTC)) == 0


def test_inactivity_enters_each_lapse_once(world):
    people = contacts(world.unit_a, 3)
    run = journey(
        world,
        one_step(email_template(world, "Revenez"), {"kind": "inactivity", "days": 90}),
        reentry=JourneyTemplate.Reentry.EVERY,
    )
    JourneyRun.objects.filter(pk=run.pk).update(starts_on=dt.date(2026, 1, 1))
    today = dt.date(2026, 9, 1)
    lapsed_day = today - dt.timedelta(days=90)
    for n, (person, day) in enumerate(
        [
            (people[0], lapsed_day),  # last order 90 days ago: enters
            (people[1], lapsed_day),
            (people[1], lapsed_day + dt.timedelta(days=10)),  # came back since: not lapsed
            (people[2], lapsed_day - dt.timedelta(days=1)),  # 91 days: entered yesterday
        ]
    ):
        Order.objects.create(
            unit=world.unit_a,
            unit_path=world.unit_a.path,
            external_id=f"O-{n}",
            contact=person,
            occurred_at=dt.datetime.combine(day, dt.time(23, 30), tzinfo=PARIS),
            total=Decimal("10"),
            source="api",
        )
    JourneyRun.objects.filter(pk=run.pk).update(days_read_on=today - dt.timedelta(days=1))
    assert triggers.run_triggers(dt.datetime(2026, 9, 1, 12, 0, tzinfo=dt.UTC)) == 1
    assert list(Enrollment.objects.values_list("contact_id", "occurrence")) == [
        (people[0].pk, lapsed_day.isoformat())
    ]
    assert triggers.run_triggers(dt.datetime(2026, 9, 1, 18, 0, tzinfo=dt.UTC)) == 0


def test_a_paused_or_not_yet_started_run_reads_nothing(world):
    (person,) = birthdays_world(world, [dt.date(1990, 9, 14)])
    run = journey(
        world,
        one_step(email_template(world, "Anniversaire"), {"kind": "date", "field": "birthday"}),
    )
    moment = dt.datetime(2026, 9, 14, 9, 0, tzinfo=dt.UTC)
    JourneyRun.objects.filter(pk=run.pk).update(starts_on=dt.date(2026, 9, 15))
    assert triggers.run_triggers(moment) == 0
    JourneyRun.objects.filter(pk=run.pk).update(
        starts_on=dt.date(2026, 9, 1), status=JourneyRun.Status.PAUSED
    )
    assert triggers.run_triggers(moment) == 0
    JourneyRun.objects.filter(pk=run.pk).update(status=JourneyRun.Status.ACTIVE)
    assert triggers.run_triggers(moment) == 1
