from django import forms
from django.utils.translation import gettext_lazy as _

from enseigne.lib.forms import StyledForm, StyledModelForm
from enseigne.network.capabilities import Capability
from enseigne.network.models import CapabilityRule, OrgNode, Role, UnitProfile


class UnitProfileForm(StyledModelForm):
    tags = forms.CharField(
        label=_("Tags"), required=False, help_text=_("Comma-separated, e.g. pilot, city-centre")
    )
    website = forms.URLField(label=_("Website"), required=False, assume_scheme="https")

    class Meta:
        model = UnitProfile
        fields = [
            "address_line",
            "postal_code",
            "city",
            "country",
            "phone",
            "email",
            "website",
            "manager_name",
            "opening_hours",
            "time_zone",
        ]
        widgets = {"opening_hours": forms.Textarea(attrs={"rows": 3})}


class NodeCreateForm(StyledForm):
    parent = forms.ModelChoiceField(
        label=_("Parent"), queryset=OrgNode.objects.none(), to_field_name="public_id"
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[("region", _("Region")), ("unit", _("Unit"))]
    )
    name = forms.CharField(label=_("Name"), max_length=200)
    code = forms.SlugField(label=_("Code"), max_length=40)
    city = forms.CharField(label=_("City"), max_length=120, required=False)

    def __init__(self, *args, parents=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = parents


class UserCreateForm(StyledForm):
    email = forms.EmailField(label=_("Email"))
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    password = forms.CharField(
        label=_("Initial password"), widget=forms.PasswordInput, min_length=10
    )
    role = forms.ModelChoiceField(label=_("Role"), queryset=Role.objects.order_by("name"))
    node = forms.ModelChoiceField(
        label=_("At"), queryset=OrgNode.objects.order_by("path"), to_field_name="public_id"
    )


class MembershipForm(StyledForm):
    role = forms.ModelChoiceField(label=_("Role"), queryset=Role.objects.order_by("name"))
    node = forms.ModelChoiceField(
        label=_("At"), queryset=OrgNode.objects.order_by("path"), to_field_name="public_id"
    )


class RoleCreateForm(StyledForm):
    key = forms.SlugField(label=_("Key"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=120)
    level = forms.ChoiceField(label=_("Held at"), choices=Role.Level.choices)
    capabilities = forms.MultipleChoiceField(
        label=_("Capabilities"),
        choices=Capability.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )


class CapabilityRuleForm(StyledForm):
    node = forms.ModelChoiceField(
        label=_("Where"), queryset=OrgNode.objects.order_by("path"), to_field_name="public_id"
    )
    capability = forms.ChoiceField(label=_("Capability"), choices=Capability.choices)
    effect = forms.ChoiceField(label=_("Effect"), choices=CapabilityRule.Effect.choices)
    role = forms.ModelChoiceField(
        label=_("Only for role"), queryset=Role.objects.order_by("name"), required=False
    )
    unit_tag = forms.SlugField(label=_("Only for units tagged"), required=False)
