"""Journeys (issue 22), first step: the flow's checks name the step of every problem, and
waits land on the store's clock across changes of time."""

from __future__ import annotations

import copy
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from enseigne.journeys import flow, timing
from enseigne.journeys.flow import Wait

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.UTC

GOOD = {
    "trigger": {"kind": "date", "field": "birthday", "offset_days": 0},
    "goal": {"kind": "purchase"},
    "start": "welcome",
    "steps": {
        "welcome": {"kind": "send_email", "template": "t-1", "next": "pause"},
        "pause": {"kind": "wait", "days": 3, "next": "check"},
        "check": {
            "kind": "condition",
            "rules": {"op": "and", "rules": []},
            "yes": "end",
            "no": "ab",
        },
        "ab": {
            "kind": "random",
            "branches": [{"share": 50, "next": "sms"}, {"share": 50, "next": "end"}],
        },
        "sms": {"kind": "send_sms", "template": "t-2"},
        "end": {"kind": "exit"},
    },
}


def messages(raw) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        flow.parse(raw)
    return caught.value.messages


def changed(path: list, value):
    raw = copy.deepcopy(GOOD)
    target = raw
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return raw


def test_a_good_flow_reads_whole():
    parsed = flow.parse(GOOD)
    assert parsed.start == "welcome"
    assert parsed.templates() == {"welcome": "t-1", "sms": "t-2"}
    assert parsed.steps["pause"].wait == Wait(days=3)
    assert parsed.steps["ab"].branches == ((50, "sms"), (50, "end"))
    assert parsed.steps["sms"].next is None  # ends the journey after it
    assert parsed.goal == {"kind": "purchase"}


@pytest.mark.parametrize(
    ("path", "value", "step", "words"),
    [
        (["steps", "welcome", "template"], KeyError, "welcome", "needs a template"),
        (["steps", "welcome", "template"], "  ", "welcome", "needs a template"),
        (["steps", "welcome", "kind"], "send_fax", "welcome", "unknown kind"),
        (["steps", "welcome"], "send_email", "welcome", "must be an object"),
        (["steps", "welcome", "next"], "nowhere", "welcome", "not a step"),
        (["steps", "welcome", "next"], 12, "welcome", "must name a step"),
        (["steps", "check", "no"], KeyError, "check", "both branches"),
        (["steps", "check", "rules"], {}, "check", "needs its rules"),
        (["steps", "ab", "branches"], [{"share": 100, "next": "sms"}], "ab", "2 to 5"),
        (
            ["steps", "ab", "branches"],
            [{"share": 60, "next": "sms"}, {"share": 50, "next": "end"}],
            "ab",
            "add up to 100",
        ),
        (
            ["steps", "ab", "branches"],
            [{"share": "half", "next": "sms"}, {"share": 50, "next": "end"}],
            "ab",
            "needs a share",
        ),
        (["steps", "ab", "branches"], ["sms", "end"], "ab", "needs a share"),
        (["steps", "pause", "days"], 0, "pause", "at least a minute"),
        (["steps", "pause", "days"], -2, "pause", "whole number"),
        (["steps", "pause", "days"], 3.5, "pause", "whole number"),
        (["steps", "pause", "days"], True, "pause", "whole number"),
        (["steps", "pause", "days"], 400, "pause", "whole number"),
        (["steps", "pause", "until"], {"time": "25:00"}, "pause", "HH:MM"),
        (["steps", "pause", "until"], {"time": "09:00", "weekday": 7}, "pause", "weekday"),
        (["steps", "pause", "until"], "monday", "pause", "needs a time"),
    ],
)
def test_each_problem_names_its_step(path, value, step, words):
    found = messages(changed(path, value))
    assert any(f"“{step}”" in m and words in m for m in found), found


def test_a_cycle_is_refused_naming_a_step_on_it():
    raw = changed(["steps", "sms", "next"], "pause")
    found = messages(raw)
    assert any("may not loop" in m for m in found), found
    assert any(f"“{s}”" in m for m in found for s in ("pause", "check", "ab", "sms"))


def test_a_step_loop_on_itself_is_refused():
    raw = changed(["steps", "pause", "next"], "pause")
    assert any("“pause”" in m and "loop" in m for m in messages(raw))


def test_an_unreachable_step_is_named():
    raw = changed(["steps", "orphan"], {"kind": "exit"})
    assert messages(raw) == ["Step “orphan”: no path from the start reaches this step."]


def test_every_problem_is_reported_at_once():
    raw = changed(["steps", "welcome", "template"], KeyError)
    raw["steps"]["check"].pop("yes")
    found = messages(raw)
    assert any("“welcome”" in m for m in found) and any("“check”" in m for m in found)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        "flow",
        {},
        {"trigger": {"kind": "date", "field": "birthday"}, "start": "a", "steps": {}},
        {
            "trigger": {"kind": "date", "field": "birthday"},
            "start": "b",
            "steps": {"a": {"kind": "exit"}},
        },
        {
            "trigger": {"kind": "date", "field": "birthday"},
            "start": "a",
            "steps": {"a b": {"kind": "exit"}},
        },
        {
            "trigger": {"kind": "date", "field": "birthday"},
            "start": "s0",
            "steps": {f"s{i}": {"kind": "exit"} for i in range(61)},
        },
    ],
)
def test_shapeless_flows_are_refused_with_a_sentence(raw):
    found = messages(raw)
    assert found and all(isinstance(m, str) and m.strip() for m in found)


@pytest.mark.parametrize(
    ("trigger", "words"),
    [
        (None, "trigger must be one of"),
        ({"kind": "moon"}, "trigger must be one of"),
        ({"kind": "consent"}, "channel"),
        ({"kind": "consent", "channel": "fax"}, "channel"),
        ({"kind": "date"}, "date field"),
        ({"kind": "date", "field": "birthday", "offset_days": 400}, "offset"),
        ({"kind": "event", "event": "visit"}, "event trigger"),
        ({"kind": "segment", "rules": "all"}, "rules"),
        ({"kind": "inactivity", "days": 0}, "number of days"),
    ],
)
def test_bad_triggers_are_named(trigger, words):
    raw = changed(["trigger"], trigger)
    assert any(words in m for m in messages(raw))


def test_a_goal_other_than_a_purchase_is_refused():
    assert any("goal" in m for m in messages(changed(["goal"], {"kind": "click"})))


@pytest.mark.parametrize(
    "trigger",
    [
        {"kind": "consent", "channel": "email"},
        {"kind": "date", "field": "first_purchase", "offset_days": -7},
        {"kind": "event", "event": "purchase"},
        {"kind": "segment", "rules": {"op": "and", "rules": []}},
        {"kind": "inactivity", "days": "90"},
    ],
)
def test_every_trigger_kind_reads(trigger):
    assert flow.parse(changed(["trigger"], trigger)).trigger == trigger


# Waits on the store's clock. Paris: summer time from 2026-03-29 02:00 (to 03:00), winter
# time from 2026-10-25 03:00 (back to 02:00).


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


@pytest.mark.parametrize(
    ("start", "days", "elapsed_hours"),
    [
        (paris(2026, 3, 28, 10, 0), 1, 23),  # spring: the day is 23 hours long
        (paris(2026, 10, 24, 10, 0), 1, 25),  # autumn: 25 hours
        (paris(2026, 6, 1, 10, 0), 7, 168),
        (paris(2026, 3, 1, 9, 30), 30, 30 * 24 - 1),
    ],
)
def test_a_wait_in_days_keeps_the_stores_time_of_day(start, days, elapsed_hours):
    woke = timing.wake_at(Wait(days=days), start.astimezone(UTC), PARIS)
    assert woke.tzinfo is not None
    assert woke.astimezone(PARIS).time() == start.time()
    assert woke - start == dt.timedelta(hours=elapsed_hours)


def test_a_wait_in_hours_is_elapsed_time_across_the_change():
    start = paris(2026, 3, 29, 1, 30)
    woke = timing.wake_at(Wait(hours=2), start, PARIS)
    assert woke - start == dt.timedelta(hours=2)
    assert woke.astimezone(PARIS).hour == 4  # 01:30 + 2 h, the clock jumped an hour


def test_until_a_weekday_and_time():
    friday = paris(2026, 12, 4, 18, 0)  # a Friday evening
    woke = timing.wake_at(Wait(weekday=0, time=dt.time(9, 0)), friday, PARIS)
    assert woke.astimezone(PARIS) == paris(2026, 12, 7, 9, 0)
    # Strictly after now: Monday 09:00 asked on Monday 09:00 is next Monday.
    woke = timing.wake_at(Wait(weekday=0, time=dt.time(9, 0)), paris(2026, 12, 7, 9, 0), PARIS)
    assert woke.astimezone(PARIS) == paris(2026, 12, 14, 9, 0)
    # Any weekday: today if the time is still ahead, else tomorrow.
    assert timing.wake_at(Wait(time=dt.time(20, 0)), friday, PARIS).astimezone(PARIS) == paris(
        2026, 12, 4, 20, 0
    )
    assert timing.wake_at(Wait(time=dt.time(8, 0)), friday, PARIS).astimezone(PARIS) == paris(
        2026, 12, 5, 8, 0
    )


def test_a_time_in_the_spring_gap_and_in_the_autumn_fold():
    gap = timing.wake_at(Wait(time=dt.time(2, 30)), paris(2026, 3, 28, 12, 0), PARIS)
    assert gap == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 03:30 summer time
    fold = timing.wake_at(Wait(time=dt.time(2, 30)), paris(2026, 10, 24, 12, 0), PARIS)
    assert fold == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first 02:30


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Montreal", "Pacific/Noumea", "UTC"])
def test_a_day_is_always_the_next_calendar_day_at_the_same_local_time(zone):
    tz = ZoneInfo(zone)
    start = dt.datetime(2026, 1, 1, 8, 15, tzinfo=UTC)
    for _ in range(366):
        woke = timing.wake_at(Wait(days=1), start, tz)
        before, after = start.astimezone(tz), woke.astimezone(tz)
        assert after.date() == before.date() + dt.timedelta(days=1)
        assert woke > start
        start = woke


# The tables: one enrollment per occurrence; a store reads only its own runs (RLS).


def _journey(world):
    from django.utils import timezone

    from enseigne.journeys.models import JourneyRun, JourneyTemplate, JourneyVersion
    from enseigne.network.models import Network

    network = Network.objects.get(node=world.root)
    template = JourneyTemplate.objects.create(
        network=network, owner=world.root, owner_path=world.root.path, name="Anniversaire"
    )
    version = JourneyVersion.objects.create(
        template=template, number=1, owner_path=world.root.path, flow=GOOD
    )
    runs = {
        unit.code: JourneyRun.objects.create(
            template=template,
            version=version,
            unit=unit,
            unit_path=unit.path,
            starts_on=timezone.localdate(),
        )
        for unit in (world.unit_a, world.unit_b)
    }
    return version, runs


@pytest.mark.django_db
def test_a_trigger_seen_twice_enrolls_once_per_occurrence(world):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from enseigne.journeys.models import Enrollment
    from tests.factories import ContactFactory

    version, runs = _journey(world)
    contact = ContactFactory(unit=world.unit_a)
    now = timezone.now()

    def enroll(occurrence: str) -> Enrollment:
        return Enrollment.objects.create(
            run=runs["lyon"],
            version=version,
            contact=contact,
            unit_path=world.unit_a.path,
            occurrence=occurrence,
            step="welcome",
            wake_at=now,
            entered_at=now,
            updated_at=now,
        )

    enroll("2026")
    enroll("2027")  # next year's birthday: a new occurrence
    with pytest.raises(IntegrityError), transaction.atomic():
        enroll("2026")
    with pytest.raises(IntegrityError), transaction.atomic():
        Enrollment.objects.create(  # waiting with no wake-up time would never move
            run=runs["lyon"],
            version=version,
            contact=contact,
            unit_path=world.unit_a.path,
            occurrence="2028",
            step="welcome",
            wake_at=None,
            entered_at=now,
            updated_at=now,
        )
    assert Enrollment.objects.filter(contact=contact).count() == 2


@pytest.mark.django_db
def test_a_store_reads_its_own_runs_and_hqs_templates_only(world):
    from django.db import connection

    from enseigne.journeys.models import JourneyRun, JourneyTemplate, JourneyVersion
    from enseigne.lib.rowsecurity import db_scope

    if connection.vendor != "postgresql":
        pytest.skip("row-level security is PostgreSQL's (SQLite scopes through selectors)")
    _version, runs = _journey(world)
    with db_scope([world.unit_a.path]):
        assert list(JourneyRun.objects.values_list("pk", flat=True)) == [runs["lyon"].pk]
        assert JourneyTemplate.objects.count() == 1  # HQ's, inherited
        assert JourneyVersion.objects.count() == 1
    with db_scope([world.region_b.path]):
        assert list(JourneyRun.objects.values_list("pk", flat=True)) == [runs["lille"].pk]
