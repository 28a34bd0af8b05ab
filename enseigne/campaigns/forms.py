from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enseigne.brand.selectors import local_versions_for_user, templates_for_user
from enseigne.contacts.models import Channel
from enseigne.contacts.selectors import segments_for_user
from enseigne.lib.forms import StyledForm
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, UnitTag
from enseigne.network.selectors import nodes_for_user, units_with


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


def _datetime_field(label, required=False):
    return forms.DateTimeField(label=label, required=required, widget=LocalDateTimeInput(),
                               input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])


class LocalCampaignForm(StyledForm):
    unit = forms.ModelChoiceField(label=_("Unit"), queryset=OrgNode.objects.none())
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    template = forms.ModelChoiceField(label=_("Template"), queryset=None)
    local_version = forms.ModelChoiceField(label=_("Personalised version"), queryset=None, required=False,
                                           empty_label=_("Head office's version, unchanged"))
    segment = forms.ModelChoiceField(label=_("Audience (segment)"), queryset=None)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    send_at = _datetime_field(_("Send at"))

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        units = units_with(user, Capability.CREATE_LOCAL_CAMPAIGNS)
        self.fields["unit"].queryset = OrgNode.objects.filter(pk__in=[u.pk for u in units]).order_by("name")
        if len(units) == 1:
            self.fields["unit"].initial = units[0].pk
        self.fields["template"].queryset = templates_for_user(user).exclude(current=None).order_by("channel", "name")
        self.fields["local_version"].queryset = local_versions_for_user(user).select_related("template")
        self.fields["segment"].queryset = segments_for_user(user)


class NationalCampaignForm(StyledForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    template = forms.ModelChoiceField(label=_("Template"), queryset=None)
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    target_node = forms.ModelChoiceField(label=_("Units in"), queryset=None, required=False,
                                         empty_label=_("The whole network"))
    target_tag = forms.ModelChoiceField(label=_("Only units tagged"), queryset=UnitTag.objects.order_by("name"),
                                        required=False)
    allow_opt_out = forms.BooleanField(label=_("Units may opt out"), required=False, initial=True)
    relay_deadline = _datetime_field(_("Units decide before"))
    send_at = _datetime_field(_("Send at"))

    def __init__(self, user, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = templates_for_user(user).exclude(current=None).order_by("channel", "name")
        self.fields["target_node"].queryset = nodes_for_user(user).exclude(kind=OrgNode.Kind.UNIT)


class ScheduleForm(StyledForm):
    send_at = _datetime_field(_("Send at"), required=True)

    def clean_send_at(self):
        value = self.cleaned_data["send_at"]
        if value < timezone.now():
            raise forms.ValidationError(_("Choose a time in the future."))
        return value


class DecisionForm(StyledForm):
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    over_budget = forms.BooleanField(label=_("Approve even over budget"), required=False)
