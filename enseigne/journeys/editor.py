"""The flow editor's state: a journey's flow as plain forms (a trigger, a list of steps) and
back, so a marketer never writes JSON.

The page posts every step's fields (``step-<n>-<field>``) and a command (``editor``):
``add``, ``remove:<n>``, ``up:<n>``, ``down:<n>``, ``branch:<n>``, ``refresh`` or
``publish``. A command other than publish only redraws the forms with what was typed (and
the change); publish builds the flow JSON (``flow_of``), which ``flow.parse`` and the
publishing service check as they check an expert's JSON. The first step of the list is
where the journey starts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from enseigne.contacts.fields import field_label
from enseigne.contacts.models import CustomAttribute
from enseigne.contacts.segments import extra_fields
from enseigne.network.models import User

from . import flow as flows
from . import services
from .forms import MAX_BRANCHES, StepForm, TriggerForm

STEP_FIELDS = (
    "name",
    "was",
    "kind",
    "template_email",
    "template_sms",
    "wait_mode",
    "days",
    "hours",
    "minutes",
    "weekday",
    "time",
    "rules",
    "next",
    "yes",
    "no",
    "branches",
    *(f"share_{n}" for n in range(1, MAX_BRANCHES + 1)),
    *(f"branch_{n}" for n in range(1, MAX_BRANCHES + 1)),
)
TARGETS = ("next", "yes", "no", *(f"branch_{n}" for n in range(1, MAX_BRANCHES + 1)))
TRIGGER_FIELDS = tuple(TriggerForm.base_fields)
# A new step's name: its kind's word and a number ("email-2").
NAME_STEMS = {
    "send_email": "email",
    "send_sms": "sms",
    "wait": "wait",
    "condition": "check",
    "random": "split",
    "exit": "end",
}
EMPTY_RULES = json.dumps({"match": "all", "rules": []})
# "Enters an RFM group / a persona": a segment trigger whose rules are that one condition.
AUDIENCE_FIELDS = ("rfm_group", "persona")
MAX_TEXT = 20_000


@dataclass
class Choices:
    """What the editor's dropdowns offer, from the data: ``[(key, label)]`` each."""

    date_fields: list = field(default_factory=list)
    categories: list = field(default_factory=list)
    campaigns: list = field(default_factory=list)
    rfm_groups: list = field(default_factory=list)
    personas: list = field(default_factory=list)
    email_templates: list = field(default_factory=list)
    sms_templates: list = field(default_factory=list)


def choices_for(user: User, owner_path: str) -> Choices:
    """The dropdowns' values for ``user`` designing a journey owned at ``owner_path``."""
    extras = extra_fields()

    def offered(name: str) -> list:
        extra = extras.get(name)
        if extra is None or extra.choices is None or not extra.available(user):
            return []
        return [(str(key), str(label)) for key, label in extra.choices(user)]

    dates = [("birthday", str(field_label("birthday")))]
    dates += [
        (a.key, a.label)
        for a in CustomAttribute.objects.filter(kind=CustomAttribute.Kind.DATE).order_by("label")
    ]
    return Choices(
        date_fields=dates,
        categories=offered("bought_category"),
        campaigns=offered("clicked"),
        rfm_groups=offered("rfm_group"),
        personas=offered("persona"),
        email_templates=[
            (str(t.public_id), t.name) for t in services.sendable_templates(owner_path, "email")
        ],
        sms_templates=[
            (str(t.public_id), t.name) for t in services.sendable_templates(owner_path, "sms")
        ],
    )


# --- a flow into the forms' values ---------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _step_values(step_id: str, raw: Mapping) -> dict[str, str]:
    kind = _text(raw.get("kind"))
    values = {"name": step_id, "was": step_id, "kind": kind}
    if kind == "send_email":
        values["template_email"] = _text(raw.get("template"))
    elif kind == "send_sms":
        values["template_sms"] = _text(raw.get("template"))
    elif kind == "wait":
        until = raw.get("until")
        if isinstance(until, Mapping):
            values.update(
                wait_mode="until",
                weekday=_text(until.get("weekday")),
                time=_text(until.get("time")),
            )
        else:
            values["wait_mode"] = "duration"
            values.update({unit: _text(raw.get(unit)) for unit in ("days", "hours", "minutes")})
    elif kind == "condition" and raw.get("since_entry"):
        values["looks_at"] = _text(raw.get("since_entry"))
        values["rules"] = EMPTY_RULES
    elif kind == "condition":
        values["looks_at"] = "rules"
        values["rules"] = json.dumps(raw.get("rules"), ensure_ascii=False)
    elif kind == "random":
        branches = _list(raw.get("branches"))
        values["branches"] = str(min(max(len(branches), 2), MAX_BRANCHES))
        for number, branch in enumerate(branches[:MAX_BRANCHES], start=1):
            if isinstance(branch, Mapping):
                values[f"share_{number}"] = _text(branch.get("share"))
                values[f"branch_{number}"] = _text(branch.get("next"))
    for target in ("next", "yes", "no"):
        if target in raw:
            values[target] = _text(raw.get(target))
    return values


def _in_flow_order(raw_steps: Mapping, start: Any) -> list[str]:
    """The steps from the start, depth first (as they are drawn), then any other."""
    order: list[str] = []
    todo = [start] if start in raw_steps else []
    while todo:
        step_id = todo.pop()
        if step_id in order or step_id not in raw_steps:
            continue
        order.append(step_id)
        raw = raw_steps[step_id] if isinstance(raw_steps[step_id], Mapping) else {}
        targets = [raw.get("next"), raw.get("yes"), raw.get("no")]
        branches = _list(raw.get("branches"))
        targets += [b.get("next") for b in branches if isinstance(b, Mapping)]
        todo.extend(reversed([t for t in targets if isinstance(t, str)]))
    return order + [s for s in raw_steps if s not in order]


def _trigger_values(raw: Any, goal: Any) -> dict[str, str]:
    trigger = raw if isinstance(raw, Mapping) else {}
    values = {name: _text(trigger.get(name)) for name in TRIGGER_FIELDS if name in trigger}
    values["kind"] = _text(trigger.get("kind")) or "consent"
    if values["kind"] == "segment":
        rules = trigger.get("rules")
        values["audience"] = "rules"
        values["rules"] = json.dumps(rules, ensure_ascii=False)
        inner = rules.get("rules") if isinstance(rules, Mapping) else None
        if isinstance(inner, list) and len(inner) == 1 and isinstance(inner[0], Mapping):
            only = inner[0]
            if only.get("field") in AUDIENCE_FIELDS and only.get("op") == "equals":
                values["audience"] = str(only["field"])
                values[str(only["field"])] = _text(only.get("value"))
    values["goal"] = "on" if goal else ""
    return values


def values_of(raw_flow: Any) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A flow (as published) as the forms' values: the trigger's, and each step's in order."""
    if not isinstance(raw_flow, Mapping):
        return {"kind": "consent"}, []
    found = raw_flow.get("steps")
    raw_steps: Mapping = found if isinstance(found, Mapping) else {}
    steps = [
        _step_values(
            str(step_id), raw_steps[step_id] if isinstance(raw_steps[step_id], Mapping) else {}
        )
        for step_id in _in_flow_order(raw_steps, raw_flow.get("start"))
    ]
    return _trigger_values(raw_flow.get("trigger"), raw_flow.get("goal")), steps


# --- the posted page into values, and its commands -----------------------------------------


def _clean_text(value: Any) -> str:
    """What was typed, without NUL bytes (no database stores them) and of a sane length."""
    return str(value).replace("\x00", "")[:MAX_TEXT]


def posted_values(data: Mapping) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The trigger's and the steps' values as posted (``step-count`` steps, at most
    ``flow.MAX_STEPS``), renamed steps followed into every target."""
    trigger = {
        name: _clean_text(data.get(f"trigger-{name}", ""))
        for name in TRIGGER_FIELDS
        if f"trigger-{name}" in data
    }
    count = _clean_text(data.get("step-count", "0")).strip()
    total = min(int(count), flows.MAX_STEPS + 1) if count.isdigit() else 0
    steps = [
        {
            name: _clean_text(data.get(f"step-{i}-{name}", ""))
            for name in STEP_FIELDS
            if f"step-{i}-{name}" in data
        }
        for i in range(total)
    ]
    renamed = {
        s["was"]: s.get("name", "")
        for s in steps
        if s.get("was") and s.get("name") and s["was"] != s["name"]
    }
    for step in steps:
        for target in TARGETS:
            if step.get(target) in renamed:
                step[target] = renamed[step[target]]
        step["was"] = step.get("name", "")
    return trigger, steps


def _new_name(kind: str, steps: list[dict[str, str]]) -> str:
    taken = {s.get("name") for s in steps}
    stem = NAME_STEMS.get(kind, "step")
    number = 1
    while f"{stem}-{number}" in taken:
        number += 1
    return f"{stem}-{number}"


def new_step(kind: str, steps: list[dict[str, str]]) -> dict[str, str]:
    """A step of ``kind`` named after it, with the values a marketer starts from."""
    if kind not in NAME_STEMS:
        kind = "send_email"
    name = _new_name(kind, steps)
    step = {"name": name, "was": name, "kind": kind}
    if kind == "wait":
        step.update(wait_mode="duration", days="1")
    if kind == "condition":
        step["rules"] = EMPTY_RULES
    if kind == "random":
        step.update(branches="2", share_1="50", share_2="50")
    return step


def apply(command: str, steps: list[dict[str, str]], add_kind: str) -> list[dict[str, str]]:
    """The steps after ``command`` (anything unknown changes nothing)."""
    verb, _sep, where = command.partition(":")
    index = int(where) if where.isdigit() else -1
    steps = list(steps)
    if verb == "add" and len(steps) < flows.MAX_STEPS:
        step = new_step(add_kind, steps)
        # The step before, when it leads nowhere yet, now leads to the new one.
        if steps and steps[-1].get("kind") in {"send_email", "send_sms", "wait"}:
            steps[-1].setdefault("next", "")
            if not steps[-1]["next"]:
                steps[-1]["next"] = step["name"]
        steps.append(step)
    elif not 0 <= index < len(steps):
        return steps
    elif verb == "remove":
        gone = steps.pop(index).get("name")
        for step in steps:
            for target in TARGETS:
                if gone and step.get(target) == gone:
                    step[target] = ""
    elif verb == "up" and index > 0:
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
    elif verb == "down" and index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
    elif verb == "branch":
        count = steps[index].get("branches", "2")
        shown = int(count) if count.isdigit() else 2
        steps[index]["branches"] = str(min(max(shown, 2) + 1, MAX_BRANCHES))
    return steps


# --- the forms -----------------------------------------------------------------------------


def _prefixed(prefix: str, values: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}-{name}": value for name, value in values.items()}


def build_forms(
    trigger: dict[str, str],
    steps: list[dict[str, str]],
    choices: Choices,
    *,
    bound: bool,
    url: str = "",
) -> tuple[TriggerForm, list[StepForm]]:
    """The trigger's form and each step's, bound (to be checked) or showing the values.

    A step shows only the fields of its kind: choosing another kind redraws that step
    (htmx posts the whole form to ``url`` and swaps the step's fieldset; without
    JavaScript, "Update the drawing" does the same for the page)."""
    targets = [s["name"] for s in steps if s.get("name")]
    if bound:
        trigger_form = TriggerForm(_prefixed("trigger", trigger), prefix="trigger", choices=choices)
        step_forms = [
            StepForm(
                _prefixed(f"step-{i}", values),
                prefix=f"step-{i}",
                choices=choices,
                targets=targets,
            )
            for i, values in enumerate(steps)
        ]
    else:
        trigger_form = TriggerForm(initial=trigger, prefix="trigger", choices=choices)
        step_forms = [
            StepForm(initial=values, prefix=f"step-{i}", choices=choices, targets=targets)
            for i, values in enumerate(steps)
        ]
    for i, form in enumerate(step_forms):
        fieldset = f"#edit-{i}"
        form.fields["kind"].widget.attrs.update(
            {
                "hx-post": url,
                "hx-vals": json.dumps({"editor": "refresh"}),
                "hx-select": fieldset,
                "hx-target": fieldset,
                "hx-swap": "outerHTML",
            }
        )
    return trigger_form, step_forms


def _trigger_json(data: Mapping[str, Any]) -> dict[str, Any]:
    kind = data["kind"]
    if kind == "consent":
        return {"kind": kind, "channel": data["channel"]}
    if kind == "date":
        return {"kind": kind, "field": data["field"], "offset_days": data.get("offset_days") or 0}
    if kind == "event":
        trigger = {"kind": kind, "event": data["event"]}
        if data["event"] == "category_purchase":
            trigger["category"] = data["category"]
        if data["event"] == "click" and data.get("campaign"):
            trigger["campaign"] = data["campaign"]
        return trigger
    if kind == "segment":
        audience = data["audience"]
        if audience in AUDIENCE_FIELDS:
            only = {"field": audience, "op": "equals", "value": data[audience]}
            return {"kind": kind, "rules": {"match": "all", "rules": [only]}}
        return {"kind": kind, "rules": data["rules"]}
    return {"kind": kind, "days": data["days"]}


def _step_json(data: Mapping[str, Any]) -> dict[str, Any]:
    kind = data["kind"]
    step: dict[str, Any] = {"kind": kind}
    if kind in {"send_email", "send_sms"}:
        step["template"] = data["template_email" if kind == "send_email" else "template_sms"]
    elif kind == "wait" and data.get("wait_mode") == "until":
        until: dict[str, Any] = {"time": data["time"].strftime("%H:%M")}
        if data.get("weekday") not in (None, ""):
            until["weekday"] = int(data["weekday"])
        step["until"] = until
    elif kind == "wait":
        step.update({u: data[u] for u in ("days", "hours", "minutes") if data.get(u)})
    elif kind == "condition" and data.get("looks_at") in flows.SINCE_ENTRY:
        step.update(since_entry=data["looks_at"], yes=data["yes"], no=data["no"])
    elif kind == "condition":
        step.update(rules=data["rules"], yes=data["yes"], no=data["no"])
    elif kind == "random":
        step["branches"] = [
            {"share": data.get(f"share_{n}"), "next": data.get(f"branch_{n}") or None}
            for n in range(1, MAX_BRANCHES + 1)
            if data.get(f"share_{n}") is not None or data.get(f"branch_{n}")
        ]
    if kind in {"send_email", "send_sms", "wait"} and data.get("next"):
        step["next"] = data["next"]
    return step


def flow_of(trigger_form: TriggerForm, step_forms: list[StepForm]) -> dict[str, Any] | None:
    """The flow JSON the valid forms describe (None while a form has an error). Two steps
    of one name are an error on the second."""
    seen: set[str] = set()
    for form in step_forms:
        if form.is_valid():
            name = form.cleaned_data["name"]
            if name in seen:
                form.add_error("name", _("Another step already has this name."))
            seen.add(name)
    if not trigger_form.is_valid() or not all(f.is_valid() for f in step_forms):
        return None
    flow: dict[str, Any] = {"trigger": _trigger_json(trigger_form.cleaned_data)}
    if trigger_form.cleaned_data.get("goal"):
        flow["goal"] = {"kind": "purchase"}
    steps = {f.cleaned_data["name"]: _step_json(f.cleaned_data) for f in step_forms}
    flow["start"] = next(iter(steps), "")
    flow["steps"] = steps
    return flow


def place_errors(messages: list[str], step_forms: list[StepForm]) -> list[str]:
    """Each of the checks' messages beside the step it names; the others are returned."""
    forms_by_name = {
        f.cleaned_data["name"]: f
        for f in step_forms
        if hasattr(f, "cleaned_data") and "name" in f.cleaned_data
    }
    general = []
    for message in messages:
        for name, form in forms_by_name.items():
            prefix = _("Step “%(step)s”: %(problem)s") % {"step": name, "problem": ""}
            if message.startswith(prefix):
                form.add_error(None, message[len(prefix) :])
                break
        else:
            general.append(message)
    return general
