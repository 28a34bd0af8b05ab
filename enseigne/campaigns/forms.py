from __future__ import annotations

import holidays
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from enseigne.brand.selectors import local_versions_for_user, templates_for_user
from enseigne.campaigns.models import SendingPolicy
from enseigne.contacts.models import Channel
from enseigne.contacts.selectors import segments_for_user
from enseigne.lib.forms import StyledForm, StyledModelForm
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, UnitTag
from enseigne.network.selectors import nodes_for_user, units_with


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _datetime_field(label, required=False):
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=LocalDateTimeInput(),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )


def _offer_units(form: forms.Form, user, capability: str) -> None:
    """The form's ``unit`` choices: the units where ``user`` holds ``capability`` (chosen if only one)."""
    units = units_with(user, capability)
    form.fields["unit"].queryset = OrgNode.objects.filter(pk__in=[u.pk for u in units]).order_by(
        "name"
    )
    if len(units) == 1:
        form.fields["unit"].initial = units[0].pk


class LocalCampaignForm(StyledForm):
    unit = forms.ModelChoiceField(label=_("Unit"), queryset=OrgNode.objects.none())
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    template = forms.ModelChoiceField(label=_("Template"), queryset=None)
    local_version = forms.ModelChoiceField(
        label=_("Personalised version"),
        queryset=None,
        required=False,
        empty_label=_("Head office's version, unchanged"),
    )
    segment = forms.ModelChoiceField(label=_("Audience (segment)"), queryset=None)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    send_at = _datetime_field(_("Send at"))

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _offer_units(self, user, Capability.CREATE_LOCAL_CAMPAIGNS)
        # The units' free frames too: a free campaign is a local one sending the unit's own text.
        self.fields["template"].queryset = (
            templates_for_user(user, free=True)
            .exclude(current=None)
            .order_by("is_free", "channel", "name")
        )
        self.fields["local_version"].queryset = local_versions_for_user(user).select_related(
            "template"
        )
        self.fields["segment"].queryset = segments_for_user(user)


class LocalCampaignEditForm(LocalCampaignForm):
    """A local draft's edit: everything but the unit that sends it."""

    def __init__(self, user, campaign, *args, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "name": campaign.name,
                "channel": campaign.channel,
                "template": campaign.template_id,
                "local_version": campaign.local_version_id,
                "segment": campaign.segment_id,
                "send_at": campaign.send_at,
            },
        )
        super().__init__(user, *args, **kwargs)
        del self.fields["unit"]
        # Only this unit's versions and the segments it may use.
        self.fields["local_version"].queryset = self.fields["local_version"].queryset.filter(
            unit=campaign.owner
        )
        self.fields["segment"].required = False
        self.fields["segment"].queryset = segments_for_user(user).filter(
            unit_path__in=_ancestor_paths(campaign.owner.path)
        )


def _ancestor_paths(path: str) -> list[str]:
    step = OrgNode.steplen
    return [path[:end] for end in range(step, len(path) + 1, step)]


class FreeMessageForm(StyledForm):
    """Where a free campaign starts: which unit writes, on which channel."""

    unit = forms.ModelChoiceField(label=_("Unit"), queryset=OrgNode.objects.none())
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _offer_units(self, user, Capability.CREATE_FREE_CAMPAIGNS)


class NationalCampaignForm(StyledForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    template = forms.ModelChoiceField(label=_("Template"), queryset=None)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    target_node = forms.ModelChoiceField(
        label=_("Units in"), queryset=None, required=False, empty_label=_("The whole network")
    )
    target_tag = forms.ModelChoiceField(
        label=_("Only units tagged"), queryset=UnitTag.objects.order_by("name"), required=False
    )
    audience_segment = forms.ChoiceField(
        label=_("Contacts who receive it"),
        required=False,
        help_text=_(
            "Head office's segment rules, applied inside each unit; none: every contact who "
            "consented to the channel."
        ),
    )
    allow_opt_out = forms.BooleanField(label=_("Units may opt out"), required=False, initial=True)
    relay_deadline = _datetime_field(_("Units decide before"))
    send_at = _datetime_field(_("Send at"))

    KEEP = "keep"

    def __init__(self, user, *args, campaign=None, **kwargs):
        if campaign is not None:
            kwargs.setdefault(
                "initial",
                {
                    "channel": campaign.channel,
                    "template": campaign.template_id,
                    "name": campaign.name,
                    "target_node": campaign.target_node_id,
                    "target_tag": campaign.target_tag_id,
                    "allow_opt_out": campaign.allow_opt_out,
                    "relay_deadline": campaign.relay_deadline,
                    "send_at": campaign.send_at,
                },
            )
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = (
            templates_for_user(user).exclude(current=None).order_by("channel", "name")
        )
        self.fields["target_node"].queryset = nodes_for_user(user).exclude(kind=OrgNode.Kind.UNIT)
        # Head office's segments (owned by the network or a region, not by one unit).
        self.segments = {
            str(s.public_id): s
            for s in segments_for_user(user).exclude(owner__kind=OrgNode.Kind.UNIT).order_by("name")
        }
        choices = [("", _("Every contact who consented to the channel"))]
        rules = campaign.audience_rules if campaign is not None else {}
        chosen = next((key for key, s in self.segments.items() if rules and s.rules == rules), "")
        if rules and not chosen:  # rules set through the API: kept unless another is chosen
            choices.append((self.KEEP, _("The campaign's current rules (set through the API)")))
            chosen = self.KEEP
        choices += [(key, s.name) for key, s in self.segments.items()]
        self.fields["audience_segment"].choices = choices
        self.fields["audience_segment"].initial = chosen
        self.current_rules = rules
        self.style_fields()

    def clean(self):
        data = super().clean()
        key = data.pop("audience_segment", "")
        if key == self.KEEP:
            data["audience_rules"] = self.current_rules
        else:
            data["audience_rules"] = dict(self.segments[key].rules) if key else {}
        return data


class ScheduleForm(StyledForm):
    send_at = _datetime_field(_("Send at"), required=True)

    def clean_send_at(self):
        value = self.cleaned_data["send_at"]
        if value < timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."))
        return value


class DecisionForm(StyledForm):
    comment = forms.CharField(
        label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    over_budget = forms.BooleanField(label=_("Approve even over budget"), required=False)


WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


class SendingPolicyForm(StyledModelForm):
    sms_days = forms.TypedMultipleChoiceField(
        label=_("SMS may be sent on"),
        choices=WEEKDAYS,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = SendingPolicy
        fields = [
            "sms_days",
            "sms_start",
            "sms_end",
            "sms_holiday_country",
            "pressure_priority",
            "sms_segment_cost",
            "email_thousand_cost",
            "national_cofunding_percent",
            "late_start_minutes",
            "sms_stop_scope",
            "attribution_model",
            "attribution_window_days",
        ]
        widgets = {
            "sms_start": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "sms_end": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }
        help_texts = {
            "sms_holiday_country": _("Two-letter country code (FR); empty: no holiday rule.")
        }

    def clean_sms_holiday_country(self):
        code = (self.cleaned_data.get("sms_holiday_country") or "").strip().upper()
        if code and code not in holidays.list_supported_countries():
            raise forms.ValidationError(
                _("%(code)s is not a country whose public holidays are known.") % {"code": code}
            )
        return code

    def clean_national_cofunding_percent(self):
        value = self.cleaned_data["national_cofunding_percent"]
        if value > 100:
            raise forms.ValidationError(_("A share is at most 100 %."))
        return value


PRESSURE_ROWS = 4


class PressureForm(StyledForm):
    """Up to four caps: 'at most N messages on a channel in D days'; empty rows are ignored."""

    def __init__(self, *args, rules=(), **kwargs):
        super().__init__(*args, **kwargs)
        rules = list(rules)
        for i in range(PRESSURE_ROWS):
            rule = rules[i] if i < len(rules) else None
            self.fields[f"channel_{i}"] = forms.ChoiceField(
                label=_("Channel"),
                required=False,
                choices=[("", "—"), *Channel.choices],
                initial=rule.channel if rule else "",
            )
            self.fields[f"most_{i}"] = forms.IntegerField(
                label=_("at most"),
                required=False,
                min_value=1,
                max_value=100,
                initial=rule.max_messages if rule else None,
            )
            self.fields[f"days_{i}"] = forms.IntegerField(
                label=_("in (days)"),
                required=False,
                min_value=1,
                max_value=365,
                initial=rule.window_days if rule else None,
            )
            # The table's column headers are visual only: each field says which cap it is.
            for name in ("channel", "most", "days"):
                field = self.fields[f"{name}_{i}"]
                field.widget.attrs["aria-label"] = _("Cap %(number)s: %(field)s") % {
                    "number": i + 1,
                    "field": field.label,
                }
        self.style_fields()

    def rows(self):
        return [
            (self[f"channel_{i}"], self[f"most_{i}"], self[f"days_{i}"])
            for i in range(PRESSURE_ROWS)
        ]

    def clean(self):
        data = super().clean()
        rules, seen = [], set()
        for i in range(PRESSURE_ROWS):
            channel, most, days = (
                data.get(f"channel_{i}"),
                data.get(f"most_{i}"),
                data.get(f"days_{i}"),
            )
            if not channel and most is None and days is None:
                continue
            if not channel or most is None or days is None:
                raise forms.ValidationError(
                    _("Cap %(n)s: choose a channel, a number of messages and a number of days.")
                    % {"n": i + 1}
                )
            if (channel, days) in seen:
                raise forms.ValidationError(
                    ngettext(
                        "Cap %(n)s: there is already a cap over %(days)s day for this channel.",
                        "Cap %(n)s: there is already a cap over %(days)s days for this channel.",
                        days,
                    )
                    % {"n": i + 1, "days": days}
                )
            seen.add((channel, days))
            rules.append((channel, most, days))
        data["rules"] = rules
        return data


class BudgetForm(StyledForm):
    unit = forms.ModelChoiceField(label=_("Unit"), queryset=OrgNode.objects.none())
    starts_on = forms.DateField(
        label=_("Period starts on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    ends_on = forms.DateField(
        label=_("Period ends on"), widget=forms.DateInput(attrs={"type": "date"})
    )
    amount = forms.DecimalField(label=_("Amount (€)"), min_value=0, max_digits=10, decimal_places=2)

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        allowed = [u.pk for u in units_with(user, Capability.MANAGE_SENDING_RULES)]
        self.fields["unit"].queryset = OrgNode.objects.filter(pk__in=allowed).order_by("name")
