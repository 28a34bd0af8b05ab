import json

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from enseigne.lib.forms import StyledForm

from .models import JourneyTemplate


def _choices(form: forms.Form, name: str, choices: list) -> None:
    field = form.fields[name]
    assert isinstance(field, forms.ChoiceField)
    field.choices = choices


class JourneyTemplateForm(StyledForm):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(label=_("Description"), required=False, max_length=300)
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
        initial=0,
        min_value=0,
        max_value=50,
        help_text=_("Entrants kept out of every message, to measure the journey's lift."),
    )


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
