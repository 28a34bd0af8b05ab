"""A journey's flow in plain words, as nested boxes for the page that draws it.

Each step is a box saying what it does ("Wait 3 days", "If: … → yes / no", "Send e-mail:
<template>"); a split's branches are drawn inside it, indented; a step reached a second
time (two branches meeting again) is drawn once and pointed at afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from enseigne.brand.models import Template
from enseigne.contacts.fields import field_label, operator_label
from enseigne.contacts.models import Channel
from enseigne.contacts.segments import extra_fields
from enseigne.lib.ids import parse_uuid

from . import flow as flows

WEEKDAYS = (  # lazy: read in the language of the page
    gettext_lazy("Monday"),
    gettext_lazy("Tuesday"),
    gettext_lazy("Wednesday"),
    gettext_lazy("Thursday"),
    gettext_lazy("Friday"),
    gettext_lazy("Saturday"),
    gettext_lazy("Sunday"),
)


@dataclass
class Box:
    step: str
    kind: str
    label: str
    branches: list[tuple[str, list[Box]]] = field(default_factory=list)
    # Drawn earlier: this box only says "continues at <step>".
    goto: bool = False
    # The step's figures (``selectors.StepFigures``), when the page shows them.
    figures: Any = None


def with_figures(boxes: list[Box], figures: Mapping[str, Any]) -> list[Box]:
    """The boxes, each given its step's figures."""
    for box in boxes:
        box.figures = figures.get(box.step)
        for _label, inner in box.branches:
            with_figures(inner, figures)
    return boxes


def rules_summary(rules: Any) -> str:
    """Segment rules in words: "Customer is true and (City is Lyon or …)"."""
    if not isinstance(rules, Mapping):
        return ""
    parts = []
    for rule in rules.get("rules") or []:
        if isinstance(rule, Mapping) and "match" in rule:
            inner = rules_summary(rule)
            if inner:
                parts.append(f"({inner})")
        elif isinstance(rule, Mapping):
            parts.append(_condition_words(rule))
    joiner = f" {_('or')} " if rules.get("match") == "any" else f" {_('and')} "
    return joiner.join(parts)


def _condition_words(rule: Mapping) -> str:
    """One condition as the builder words it: the field's label (a later app's condition by
    its own label), the operator, the value in the operator's "…" when it has one."""
    key = str(rule.get("field", ""))
    extra = extra_fields().get(key)
    label = str(extra.label) if extra is not None else field_label(key)
    op = rule.get("op")
    operator, value = (operator_label(str(op)) if op else ""), rule.get("value")
    if isinstance(value, bool):
        value = _("yes") if value else _("no")
    if value in (None, ""):
        return f"{label} {operator}".strip()
    if "…" in operator:
        return f"{label} {operator.replace('…', str(value))}"
    return f"{label} {operator} {value}"


def wait_label(wait: flows.Wait) -> str:
    if wait.time is not None:
        clock = wait.time.strftime("%H:%M")
        if wait.weekday is None:
            return _("Wait until %(time)s") % {"time": clock}
        return _("Wait until %(day)s %(time)s") % {"day": WEEKDAYS[wait.weekday], "time": clock}
    parts = []
    if wait.days:
        parts.append(ngettext("%(n)s day", "%(n)s days", wait.days) % {"n": wait.days})
    if wait.hours:
        parts.append(ngettext("%(n)s hour", "%(n)s hours", wait.hours) % {"n": wait.hours})
    if wait.minutes:
        parts.append(ngettext("%(n)s minute", "%(n)s minutes", wait.minutes) % {"n": wait.minutes})
    return _("Wait %(duration)s") % {"duration": " ".join(parts)}


def trigger_label(trigger: Mapping[str, Any]) -> str:
    kind = trigger.get("kind")
    if kind == "consent":
        labels = dict(Channel.choices)
        channel = labels.get(str(trigger.get("channel")), trigger.get("channel"))
        return _("Starts when a customer gives consent (%(channel)s)") % {"channel": channel}
    if kind == "date":
        return _("Starts on the date “%(field)s” (offset in days: %(offset)s)") % {
            "field": field_label(str(trigger.get("field"))),
            "offset": trigger.get("offset_days", 0),
        }
    if kind == "event":
        return _("Starts on the event “%(event)s”") % {"event": trigger.get("event")}
    if kind == "segment":
        return _("Starts when a customer enters: %(rules)s") % {
            "rules": rules_summary(trigger.get("rules"))
        }
    if kind == "inactivity":
        return _("Starts after %(days)s days without a purchase") % {"days": trigger.get("days")}
    return str(kind)


def template_names(flow: flows.Flow) -> dict[str, str]:
    """Each send step's template name, by step id (one query)."""
    keys = {step: parse_uuid(key) for step, key in flow.templates().items()}
    names = dict(
        Template.objects.filter(public_id__in=[k for k in keys.values() if k]).values_list(
            "public_id", "name"
        )
    )
    missing = _("(missing template)")
    return {step: names.get(key, missing) if key else missing for step, key in keys.items()}


def draw(flow: flows.Flow) -> list[Box]:
    """The flow from its start as boxes (the flow was checked: no cycle, all targets exist)."""
    names = template_names(flow)
    drawn: set[str] = set()

    def sequence(start: str | None) -> list[Box]:
        boxes: list[Box] = []
        current = start
        while current is not None:
            step = flow.steps[current]
            if current in drawn:
                boxes.append(Box(current, step.kind, "", goto=True))
                break
            drawn.add(current)
            box = Box(current, step.kind, _label(step, names))
            boxes.append(box)
            if step.kind == "condition":
                box.branches = [(_("yes"), sequence(step.yes)), (_("no"), sequence(step.no))]
                break
            if step.kind == "random":
                box.branches = [(f"{share} %", sequence(target)) for share, target in step.branches]
                break
            current = step.next
        return boxes

    return sequence(flow.start)


def _label(step: flows.Step, names: dict[str, str]) -> str:
    if step.kind == "send_email":
        return _("Send e-mail: %(template)s") % {"template": names.get(step.id, "")}
    if step.kind == "send_sms":
        return _("Send SMS: %(template)s") % {"template": names.get(step.id, "")}
    if step.kind == "wait" and step.wait is not None:
        return wait_label(step.wait)
    if step.kind == "condition":
        if step.since_entry == "purchase":
            return _("If: bought in the store since entering the journey")
        if step.since_entry == "click":
            return _("If: clicked one of the journey's messages since entering")
        return _("If: %(rules)s") % {"rules": rules_summary(step.rules)}
    if step.kind == "random":
        return _("Random split")
    return _("Exit")
