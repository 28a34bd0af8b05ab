from django import forms
from django.utils.translation import gettext_lazy as _

from enseigne.lib.forms import StyledForm


class PersonaForm(StyledForm):
    name = forms.CharField(label=_("Name"), max_length=80)
    description = forms.CharField(label=_("Description"), required=False, max_length=300)
    rules = forms.JSONField(widget=forms.HiddenInput)
