"""A journey's flow: its trigger and its steps, as JSON, and the checks it must pass.

The flow is data HQ (or a store) writes, so it is read defensively: every problem is named
with the step it is on, and a flow with any problem is never published. The shape::

    {"trigger": {"kind": "date", "field": "birthday", "offset_days": 0},
     "goal": {"kind": "purchase"},                     # optional: a purchase ends it
     "start": "welcome",
     "steps": {
        "welcome": {"kind": "send_email", "template": "<template public id>", "next": "pause"},
        "pause":   {"kind": "wait", "days": 3, "next": "check"},
        "check":   {"kind": "condition", "rules": {...segment rules...}, "yes": "end", "no": "ab"},
        "ab":      {"kind": "random", "branches": [{"share": 50, "next": "sms"},
                                                   {"share": 50, "next": "end"}]},
        "sms":     {"kind": "send_sms", "template": "<template public id>"},
        "end":     {"kind": "exit"}}}

The triggers (``journeys.triggers`` reads them)::

    {"kind": "consent", "channel": "email"}
    {"kind": "date", "field": "birthday", "offset_days": -7}
    {"kind": "inactivity", "days": 90}
    {"kind": "event", "event": "purchase"}              # or "first_purchase"
    {"kind": "event", "event": "category_purchase", "category": "Chaussures"}
    {"kind": "event", "event": "click", "campaign": "<campaign public id>"}  # campaign optional
    {"kind": "segment", "rules": {...segment rules...}}  # or exactly one of:
        "segment": "<saved segment public id>", "rfm_group": "champions" (or a list),
        "persona": "<persona public id>" (or a list)

A step without ``next`` ends the journey after it. Waits count days on the store's
calendar (a wait of a day across a change of time is still 24 wall-clock hours later on the
store's clock), hours and minutes in elapsed time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from enseigne.lib.ids import parse_uuid

STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
SEND_KINDS = ("send_email", "send_sms")
STEP_KINDS = (*SEND_KINDS, "wait", "condition", "random", "exit")
TRIGGER_KINDS = ("consent", "date", "event", "segment", "inactivity")
EVENTS = ("purchase", "first_purchase", "category_purchase", "click")
# What a segment trigger may follow (exactly one): rules written in the flow, a saved
# segment (its public id), RFM groups (keys) or personas (public ids).
SEGMENT_SOURCES = ("rules", "segment", "rfm_group", "persona")
MAX_CHOICES = 20
MAX_CATEGORY = 120  # commerce.OrderLine.category
CONSENT_CHANNELS = ("email", "sms")
MAX_WAIT_DAYS = 366
MAX_STEPS = 60
# A condition's events since entering: a purchase in the store, a click on one of the
# journey's own messages to that person.
SINCE_ENTRY = ("purchase", "click")


@dataclass(frozen=True)
class Wait:
    days: int = 0
    hours: int = 0
    minutes: int = 0
    # "Until": the next such weekday (0 = Monday; None = any day) at this local time.
    weekday: int | None = None
    time: dt.time | None = None


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    next: str | None = None
    template: str | None = None
    wait: Wait | None = None
    rules: Mapping[str, Any] | None = None
    # A condition on what the person did since entering the journey (``SINCE_ENTRY``)
    # rather than on segment rules.
    since_entry: str | None = None
    yes: str | None = None
    no: str | None = None
    branches: tuple[tuple[int, str], ...] = ()

    def targets(self) -> list[str]:
        found = [t for t in (self.next, self.yes, self.no) if t]
        return found + [target for _share, target in self.branches]


@dataclass(frozen=True)
class Flow:
    trigger: Mapping[str, Any]
    start: str
    steps: dict[str, Step] = field(default_factory=dict)
    goal: Mapping[str, Any] | None = None

    def templates(self) -> dict[str, str]:
        """Each send step's template public id, by step id."""
        return {s.id: s.template for s in self.steps.values() if s.template}


class FlowErrors:
    """Collects every problem of a flow, each naming its step, before refusing it."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, step: str | None, message: str) -> None:
        if step is None:
            self.messages.append(message)
        else:
            self.messages.append(
                _("Step “%(step)s”: %(problem)s") % {"step": step, "problem": message}
            )

    def raise_if_any(self) -> None:
        if self.messages:
            raise ValidationError(self.messages)


def _int(value: Any, low: int, high: int) -> int | None:
    """An integer within [low, high] (JSON numbers, or their text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,6}", value.strip()):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def _target(raw: Mapping, key: str, step: str, errors: FlowErrors) -> str | None:
    value = raw.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not STEP_ID.match(value):
        errors.add(step, _("“%(key)s” must name a step.") % {"key": key})
        return None
    return value


def _wait(raw: Mapping, step: str, errors: FlowErrors) -> Wait | None:
    if "until" in raw:
        until = raw["until"]
        if not isinstance(until, Mapping):
            errors.add(step, _("“until” needs a time (and optionally a weekday)."))
            return None
        clock = until.get("time")
        try:
            moment = dt.time.fromisoformat(clock) if isinstance(clock, str) else None
        except ValueError:
            moment = None
        if moment is None:
            errors.add(step, _("“until” needs a time written HH:MM."))
            return None
        weekday = until.get("weekday")
        if weekday is not None:
            weekday = _int(weekday, 0, 6)
            if weekday is None:
                errors.add(step, _("The weekday must be 0 (Monday) to 6 (Sunday)."))
                return None
        return Wait(weekday=weekday, time=moment.replace(second=0, microsecond=0))
    parts: dict[str, int] = {}
    for unit, high in (("days", MAX_WAIT_DAYS), ("hours", 24 * MAX_WAIT_DAYS), ("minutes", 59)):
        if unit in raw:
            value = _int(raw[unit], 0, high)
            if value is None:
                errors.add(
                    step,
                    _("“%(unit)s” must be a whole number from 0 to %(high)s.")
                    % {"unit": unit, "high": high},
                )
                return None
            parts[unit] = value
    wait = Wait(
        days=parts.get("days", 0), hours=parts.get("hours", 0), minutes=parts.get("minutes", 0)
    )
    total = dt.timedelta(days=wait.days, hours=wait.hours, minutes=wait.minutes)
    if total <= dt.timedelta(0):
        errors.add(step, _("A wait must last at least a minute."))
        return None
    if total > dt.timedelta(days=MAX_WAIT_DAYS):
        errors.add(
            step, _("A wait may not last more than %(days)s days.") % {"days": MAX_WAIT_DAYS}
        )
        return None
    return wait


def _step(step_id: str, raw: Any, errors: FlowErrors) -> Step | None:
    if not isinstance(raw, Mapping):
        errors.add(step_id, _("a step must be an object with a kind."))
        return None
    kind = raw.get("kind")
    if kind not in STEP_KINDS:
        errors.add(
            step_id,
            _("unknown kind “%(kind)s” (expected one of: %(kinds)s).")
            % {"kind": str(kind)[:40], "kinds": ", ".join(STEP_KINDS)},
        )
        return None
    if kind in SEND_KINDS:
        template = raw.get("template")
        if not isinstance(template, str) or not template.strip():
            errors.add(step_id, _("a message step needs a template."))
            return None
        return Step(step_id, kind, next=_target(raw, "next", step_id, errors), template=template)
    if kind == "wait":
        wait = _wait(raw, step_id, errors)
        if wait is None:
            return None
        return Step(step_id, kind, next=_target(raw, "next", step_id, errors), wait=wait)
    if kind == "condition":
        rules, since = raw.get("rules"), raw.get("since_entry")
        yes, no = _target(raw, "yes", step_id, errors), _target(raw, "no", step_id, errors)
        if since is not None and (since not in SINCE_ENTRY or rules):
            errors.add(
                step_id,
                _("a condition on what happened since entering is one of: %(events)s.")
                % {"events": ", ".join(SINCE_ENTRY)},
            )
            return None
        if since is None and (not isinstance(rules, Mapping) or not rules):
            errors.add(step_id, _("a condition needs its rules."))
            return None
        if yes is None or no is None:
            errors.add(step_id, _("a condition needs both branches, “yes” and “no”."))
            return None
        if since is not None:
            return Step(step_id, kind, since_entry=since, yes=yes, no=no)
        return Step(step_id, kind, rules=rules, yes=yes, no=no)
    if kind == "random":
        branches = raw.get("branches")
        if not isinstance(branches, list) or not 2 <= len(branches) <= 5:
            errors.add(step_id, _("a random split needs 2 to 5 branches."))
            return None
        parsed = []
        for branch in branches:
            share = _int(branch.get("share"), 1, 99) if isinstance(branch, Mapping) else None
            target = (
                _target(branch, "next", step_id, errors) if isinstance(branch, Mapping) else None
            )
            if share is None or target is None:
                errors.add(step_id, _("each branch needs a share (1–99 %) and a next step."))
                return None
            parsed.append((share, target))
        if sum(share for share, _t in parsed) != 100:
            errors.add(step_id, _("the branches' shares must add up to 100 %."))
            return None
        return Step(step_id, kind, branches=tuple(parsed))
    return Step(step_id, kind)  # exit


def _trigger(raw: Any, errors: FlowErrors) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping) or raw.get("kind") not in TRIGGER_KINDS:
        errors.add(
            None,
            _("The trigger must be one of: %(kinds)s.") % {"kinds": ", ".join(TRIGGER_KINDS)},
        )
        return {}
    kind = raw["kind"]
    if kind == "consent" and raw.get("channel") not in CONSENT_CHANNELS:
        errors.add(None, _("A consent trigger needs its channel (email or sms)."))
    elif kind == "date":
        if not isinstance(raw.get("field"), str) or not raw["field"]:
            errors.add(None, _("A date trigger needs the date field it reads."))
        if _int(raw.get("offset_days", 0), -365, 365) is None:
            errors.add(None, _("A date trigger's offset must be -365 to 365 days."))
    elif kind == "event":
        _event_trigger(raw, errors)
    elif kind == "segment":
        _segment_trigger(raw, errors)
    elif kind == "inactivity" and _int(raw.get("days"), 1, 3650) is None:
        errors.add(None, _("An inactivity trigger needs a number of days (1 to 3650)."))
    return raw


def _uuid(value: Any) -> bool:
    return isinstance(value, str) and parse_uuid(value) is not None


def _event_trigger(raw: Mapping[str, Any], errors: FlowErrors) -> None:
    event = raw.get("event")
    if event not in EVENTS:
        errors.add(
            None, _("An event trigger needs one of: %(events)s.") % {"events": ", ".join(EVENTS)}
        )
    elif event == "category_purchase":
        category = raw.get("category")
        if (
            not isinstance(category, str)
            or not category.strip()
            or len(category) > MAX_CATEGORY
            or "\x00" in category
        ):
            errors.add(
                None,
                _(
                    "The trigger: a category purchase needs its category (%(most)s characters at most)."
                )
                % {"most": MAX_CATEGORY},
            )
    elif event == "click" and raw.get("campaign") not in (None, "") and not _uuid(raw["campaign"]):
        errors.add(None, _("The trigger: the clicked campaign must be named by its id."))


def _segment_trigger(raw: Mapping[str, Any], errors: FlowErrors) -> None:
    given = [key for key in SEGMENT_SOURCES if raw.get(key) not in (None, "", [], {})]
    if len(given) != 1:
        errors.add(
            None,
            _(
                "A segment trigger needs one of: its rules, a saved segment, an RFM group or a "
                "persona."
            ),
        )
        return
    value = raw[given[0]]
    if given[0] == "rules" and not isinstance(value, Mapping):
        errors.add(None, _("A segment trigger needs its rules."))
    elif given[0] == "segment" and not _uuid(value):
        errors.add(None, _("The trigger: the saved segment must be named by its id."))
    elif given[0] in ("rfm_group", "persona"):
        keys = value if isinstance(value, list) else [value]
        if len(keys) > MAX_CHOICES or not all(
            isinstance(key, str) and 0 < len(key) <= 64 for key in keys
        ):
            errors.add(
                None,
                _("The trigger: name from 1 to %(most)s RFM groups or personas.")
                % {"most": MAX_CHOICES},
            )


def trigger_rules(trigger: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The segment rules a segment trigger gives itself: its rules, or "is in one of these
    RFM groups / personas" (the segment builder's own conditions); None for a saved segment,
    whose rules are read from the database when the trigger is."""
    if isinstance(trigger.get("rules"), Mapping):
        return trigger["rules"]
    for field_name in ("rfm_group", "persona"):
        if trigger.get(field_name):
            condition = {"field": field_name, "op": "equals", "value": trigger[field_name]}
            return {"match": "all", "rules": [condition]}
    return None


def _cycle(steps: dict[str, Step], start: str) -> str | None:
    """A step on a cycle reachable from ``start``, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[tuple[str, int]] = [(start, 0)]
    while stack:
        node, index = stack.pop()
        if index == 0:
            state[node] = 1
        targets = [t for t in steps[node].targets() if t in steps]
        if index < len(targets):
            stack.append((node, index + 1))
            target = targets[index]
            if state.get(target) == 1:
                return target
            if target not in state:
                stack.append((target, 0))
        else:
            state[node] = 2
    return None


def parse(raw: Any) -> Flow:
    """The flow ``raw`` describes, or a ``ValidationError`` naming every problem's step."""
    errors = FlowErrors()
    if not isinstance(raw, Mapping):
        errors.add(None, _("A journey's flow must be an object with a trigger and steps."))
        errors.raise_if_any()
    trigger = _trigger(raw.get("trigger"), errors)
    goal = raw.get("goal")
    if goal is not None and (not isinstance(goal, Mapping) or goal.get("kind") != "purchase"):
        errors.add(None, _("The only goal a journey may have is a purchase."))
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, Mapping) or not raw_steps:
        errors.add(None, _("A journey needs at least one step."))
        errors.raise_if_any()
    if len(raw_steps) > MAX_STEPS:
        errors.add(None, _("A journey may have at most %(n)s steps.") % {"n": MAX_STEPS})
        errors.raise_if_any()
    steps: dict[str, Step] = {}
    for step_id, raw_step in raw_steps.items():
        if not isinstance(step_id, str) or not STEP_ID.match(step_id):
            errors.add(None, _("A step's name may use letters, digits, - and _ (40 at most)."))
            continue
        step = _step(step_id, raw_step, errors)
        if step is not None:
            steps[step_id] = step
    start = raw.get("start")
    if start not in raw_steps:
        errors.add(None, _("The journey must start at one of its steps."))
        errors.raise_if_any()
    for step in steps.values():
        for target in step.targets():
            if target not in raw_steps:
                errors.add(
                    step.id,
                    _("it leads to “%(target)s”, which is not a step.") % {"target": target},
                )
    errors.raise_if_any()
    on_cycle = _cycle(steps, start)
    if on_cycle is not None:
        errors.add(on_cycle, _("the flow comes back to this step: a journey may not loop."))
    reachable, todo = {start}, [start]
    while todo:
        for target in steps[todo.pop()].targets():
            if target not in reachable:
                reachable.add(target)
                todo.append(target)
    for step_id in steps:
        if step_id not in reachable:
            errors.add(step_id, _("no path from the start reaches this step."))
    errors.raise_if_any()
    return Flow(trigger=trigger, start=start, steps=steps, goal=goal)
