import json

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.forms.utils import flatatt
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from enseigne.lib.forms import StyledForm

from .flow import SINCE_ENTRY
from .models import JourneyTemplate


def _choices(form: forms.Form, name: str, choices: list) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


class JourneySettingsForm(StyledForm):
    """A journey's re-entry rule and control group (the editor shows them with its flow)."""

    reentry = forms.ChoiceField(
        label=_("Enter again"),
        choices=JourneyTemplate.Reentry.choices,
        initial=JourneyTemplate.Reentry.NEVER,
    )
    reentry_days = forms.IntegerField(
        label=_("Days before entering again"), required=False, min_value=1, max_value=3650
    )
    holdout_percent = forms.IntegerField(
        label=_("Control group (%)"),
        # A new journey measures its effect unless its author chooses not to.
        initial=10,
        min_value=0,
        max_value=50,
        help_text=_("Entrants kept out of every message, to measure the journey's lift."),
    )


class JourneyTemplateForm(JourneySettingsForm):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(label=_("Description"), required=False, max_length=300)
    field_order = ["name", "description"]


class OwnJourneyForm(JourneyTemplateForm):
    """A store's own journey: which of its stores designs it."""

    unit = forms.ChoiceField(label=_("Store"))

    def __init__(self, *args, units=(), **kwargs):
        super().__init__(*args, **kwargs)
        _choices(self, "unit", list(units))


class PublishForm(StyledForm):
    flow = forms.CharField(
        label=_("Flow (JSON)"),
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "font-monospace"}),
    )
    move_people = forms.BooleanField(
        label=_("Move people in progress to the new version (when their step still exists)"),
        required=False,
    )

    def clean_flow(self):
        try:
            return json.loads(self.cleaned_data["flow"])
        except ValueError as exc:
            raise ValidationError(
                _("The flow is not valid JSON (line %(line)s, column %(column)s).")
                % {"line": getattr(exc, "lineno", "?"), "column": getattr(exc, "colno", "?")}
            ) from None


class MandatoryForm(StyledForm):
    node = forms.ChoiceField(label=_("Region"), required=False)
    tag = forms.ChoiceField(label=_("Or stores with the tag"), required=False)

    def __init__(self, *args, regions=(), tags=(), **kwargs):
        super().__init__(*args, **kwargs)
        _choices(self, "node", [("", "—"), *regions])
        _choices(self, "tag", [("", "—"), *tags])

    def clean(self):
        data = super().clean() or {}
        if bool(data.get("node")) == bool(data.get("tag")):
            raise ValidationError(_("Choose a region or a tag."))
        return data


class ActivateForm(StyledForm):
    template = forms.ChoiceField(label=_("Journey"))
    unit = forms.ChoiceField(label=_("Store"))
    starts_on = forms.DateField(
        label=_("Start date"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def __init__(self, *args, templates=(), units=(), **kwargs):
        super().__init__(*args, **kwargs)
        _choices(self, "template", list(templates))
        _choices(self, "unit", list(units))


# --- the flow editor ---------------------------------------------------------------------
# Plain forms for a journey's trigger and steps; ``editor`` turns them into the flow JSON
# ``flow.parse`` checks, and a flow back into them.

TRIGGER_KINDS = [
    ("consent", _("A customer gives consent (welcome)")),
    ("date", _("A date (birthday, anniversary…)")),
    ("event", _("An event (purchase, click)")),
    ("segment", _("A customer enters a segment, an RFM group or a persona")),
    ("inactivity", _("No purchase for a number of days")),
]
CHANNELS = [("email", _("E-mail")), ("sms", _("SMS"))]
EVENT_KINDS = [
    ("purchase", _("A purchase")),
    ("first_purchase", _("A first purchase")),
    ("category_purchase", _("A purchase in a category")),
    ("click", _("A click in a campaign")),
]
AUDIENCES = [
    ("rules", _("Segment rules")),
    ("rfm_group", _("An RFM group")),
    ("persona", _("A persona")),
]
STEP_KINDS = [
    ("send_email", _("Send an e-mail")),
    ("send_sms", _("Send an SMS")),
    ("wait", _("Wait")),
    ("condition", _("Condition (yes / no)")),
    ("random", _("Random split")),
    ("exit", _("Exit")),
]
WAIT_MODES = [("duration", _("for a duration")), ("until", _("until a day and time"))]
WEEKDAY_CHOICES = [
    ("", _("any day")),
    ("0", _("Monday")),
    ("1", _("Tuesday")),
    ("2", _("Wednesday")),
    ("3", _("Thursday")),
    ("4", _("Friday")),
    ("5", _("Saturday")),
    ("6", _("Sunday")),
]
MAX_BRANCHES = 5
STEP_NAME = RegexValidator(
    r"^[A-Za-z0-9_-]{1,40}$", _("Use letters, digits, - and _ (40 at most), no spaces.")
)


class QuickSelect(forms.Select):
    """A select written in Python: Django renders each option through a template, and the
    editor draws a dropdown of every step's name in every step (thousands of options for a
    long journey: seconds, where this takes milliseconds)."""

    def render(self, name, value, attrs=None, renderer=None):
        final = self.build_attrs(self.attrs, attrs)
        chosen = "" if value is None else str(value)
        options = [
            f'<option value="{escape(key)}"{" selected" if str(key) == chosen else ""}>'
            f"{escape(label)}</option>"
            for key, label in self.choices
        ]
        # Every value and label above is escaped; the attributes by flatatt.
        return mark_safe(  # noqa: S308
            f'<select name="{escape(name)}"{flatatt(final)}>{"".join(options)}</select>'
        )


def _optional_choice(label, **kwargs) -> forms.ChoiceField:
    return forms.ChoiceField(label=label, required=False, choices=(), widget=QuickSelect, **kwargs)


def rules_from_text(text: str) -> object:
    """Segment rules typed or built as JSON: the object, or a ValidationError."""
    try:
        rules = json.loads(text)
    except ValueError:
        raise ValidationError(_("The rules are not valid JSON.")) from None
    if not isinstance(rules, dict):
        raise ValidationError(_("The rules must be a group: match all or any."))
    return rules


class TriggerForm(StyledForm):
    """What starts the journey and what ends it early (its goal)."""

    kind = forms.ChoiceField(label=_("Starts when"), choices=TRIGGER_KINDS)
    channel = forms.ChoiceField(label=_("Consent to"), choices=CHANNELS, required=False)
    field = _optional_choice(_("Date"))
    offset_days = forms.IntegerField(
        label=_("Days from the date (−7: a week before)"),
        required=False,
        min_value=-365,
        max_value=365,
        initial=0,
    )
    event = forms.ChoiceField(label=_("Event"), choices=EVENT_KINDS, required=False)
    category = _optional_choice(_("Category"))
    campaign = _optional_choice(_("Campaign"))
    audience = forms.ChoiceField(label=_("Enters"), choices=AUDIENCES, required=False)
    rules = forms.CharField(
        label=_("Segment rules"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "data-rules-builder": ""}),
    )
    rfm_group = _optional_choice(_("RFM group"))
    persona = _optional_choice(_("Persona"))
    days = forms.IntegerField(
        label=_("Days without a purchase"), required=False, min_value=1, max_value=3650
    )
    goal = forms.BooleanField(label=_("Goal: a purchase ends the journey"), required=False)

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        _choices(self, "field", [("", "—"), *choices.date_fields])
        _choices(self, "category", [("", "—"), *choices.categories])
        _choices(self, "campaign", [("", _("any campaign")), *choices.campaigns])
        _choices(self, "rfm_group", [("", "—"), *choices.rfm_groups])
        _choices(self, "persona", [("", "—"), *choices.personas])

    def clean(self):
        data = super().clean() or {}
        kind = data.get("kind")
        needed = {
            "consent": ["channel"],
            "date": ["field"],
            "event": ["event"],
            "segment": ["audience"],
            "inactivity": ["days"],
        }.get(kind or "", [])
        if kind == "event" and data.get("event") == "category_purchase":
            needed.append("category")
        if kind == "segment" and data.get("audience") in {"rfm_group", "persona"}:
            needed.append(data["audience"])
        if kind == "segment" and data.get("audience") == "rules":
            needed.append("rules")
        for name in needed:
            if data.get(name) in (None, "") and name not in self.errors:
                self.add_error(name, _("This is needed for this trigger."))
        if kind == "segment" and data.get("audience") == "rules" and data.get("rules"):
            try:
                data["rules"] = rules_from_text(data["rules"])
            except ValidationError as exc:
                self.add_error("rules", exc)
        return data


# What a condition step reads: segment rules, or what the person did since entering.
CONDITION_SOURCES = [
    ("rules", _("Segment rules")),
    ("purchase", _("A purchase in the store since entering the journey")),
    ("click", _("A click on one of the journey's messages since entering")),
]


class StepForm(StyledForm):
    """One step of the flow. Its targets are chosen among the steps' names."""

    name = forms.CharField(label=_("Step name"), max_length=40, validators=[STEP_NAME])
    # The name the step had when the page was drawn: a rename follows into the targets.
    was = forms.CharField(required=False, max_length=40, widget=forms.HiddenInput)
    kind = forms.ChoiceField(label=_("Kind"), choices=STEP_KINDS, widget=QuickSelect)
    template_email = _optional_choice(_("E-mail template"))
    template_sms = _optional_choice(_("SMS template"))
    wait_mode = forms.ChoiceField(
        label=_("Wait"), choices=WAIT_MODES, required=False, widget=QuickSelect
    )
    days = forms.IntegerField(label=_("Days"), required=False, min_value=0, max_value=366)
    hours = forms.IntegerField(label=_("Hours"), required=False, min_value=0, max_value=24 * 366)
    minutes = forms.IntegerField(label=_("Minutes"), required=False, min_value=0, max_value=59)
    weekday = forms.ChoiceField(
        label=_("Day"), choices=WEEKDAY_CHOICES, required=False, widget=QuickSelect
    )
    time = forms.TimeField(
        label=_("Time"),
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    looks_at = forms.ChoiceField(
        label=_("The condition looks at"),
        choices=CONDITION_SOURCES,
        required=False,
        widget=QuickSelect,
    )
    rules = forms.CharField(
        label=_("Condition rules"),
        required=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "data-rules-builder": ""}),
    )
    next = _optional_choice(_("Then"))
    yes = _optional_choice(_("If yes, go to"))
    no = _optional_choice(_("If no, go to"))
    branches = forms.IntegerField(
        required=False, min_value=2, max_value=MAX_BRANCHES, widget=forms.HiddenInput
    )

    def __init__(self, *args, choices, targets, **kwargs):
        super().__init__(*args, **kwargs)
        for number in range(1, MAX_BRANCHES + 1):
            self.fields[f"share_{number}"] = forms.IntegerField(
                label=_("Branch %(n)s: share (%%)") % {"n": number},
                required=False,
                min_value=1,
                max_value=99,
            )
            self.fields[f"branch_{number}"] = _optional_choice(
                _("Branch %(n)s: go to") % {"n": number}
            )
        for name, offered in (
            ("template_email", choices.email_templates),
            ("template_sms", choices.sms_templates),
        ):
            current = self._current(name)
            if current and current not in {key for key, _label in offered}:
                # A template no longer offered stays chosen: publishing names the problem.
                offered = [*offered, (current, _("(template no longer available)"))]
            _choices(self, name, [("", "—"), *offered])
        for name in ("next", "yes", "no", *self.branch_fields()):
            current = self._current(name)
            known = [(t, t) for t in targets]
            if current and current not in targets:
                # Kept as it was typed: the flow's check names the step it leads nowhere.
                known.append((current, current))
            empty = _("(end of the journey)") if name == "next" else "—"
            _choices(self, name, [("", empty), *known])
        self.style_fields()

    def _current(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(self.add_prefix(name), ""))[:40]
        return str(self.initial.get(name, "") or "")[:40]

    @staticmethod
    def branch_fields() -> list[str]:
        return [f"branch_{n}" for n in range(1, MAX_BRANCHES + 1)]

    def branch_rows(self) -> list[tuple[int, forms.BoundField, forms.BoundField]]:
        """The random split's branches the page shows (2 at least)."""
        count = self._current("branches")
        shown = int(count) if count.isdigit() and 2 <= int(count) <= MAX_BRANCHES else 2
        return [(n, self[f"share_{n}"], self[f"branch_{n}"]) for n in range(1, shown + 1)]

    def clean(self):
        data = super().clean() or {}
        kind = data.get("kind")
        needed = {
            "send_email": ["template_email"],
            "send_sms": ["template_sms"],
            "condition": ["rules", "yes", "no"],
        }.get(kind or "", [])
        if kind == "condition" and data.get("looks_at") in SINCE_ENTRY:
            needed = ["yes", "no"]
        if kind == "wait":
            needed = ["time"] if data.get("wait_mode") == "until" else []
        for name in needed:
            if data.get(name) in (None, "") and name not in self.errors:
                self.add_error(name, _("This is needed for this kind of step."))
        if kind == "condition" and data.get("rules") and data.get("looks_at") not in SINCE_ENTRY:
            try:
                data["rules"] = rules_from_text(data["rules"])
            except ValidationError as exc:
                self.add_error("rules", exc)
        return data
