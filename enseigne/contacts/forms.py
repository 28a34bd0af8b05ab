from django import forms
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Channel, ConsentEvent, ConsentStatus
from enseigne.lib.forms import StyledForm


class ContactForm(StyledForm):
    email = forms.CharField(label=_("Email"), required=False, max_length=254)
    phone = forms.CharField(label=_("Mobile phone"), required=False, max_length=30)
    first_name = forms.CharField(label=_("First name"), required=False, max_length=100)
    last_name = forms.CharField(label=_("Last name"), required=False, max_length=100)
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", "—"), ("fr", "Français"), ("en", "English")],
    )
    is_customer = forms.BooleanField(label=_("Existing customer (has bought)"), required=False)
    tags = forms.CharField(label=_("Tags"), required=False, help_text=_("Comma-separated"))


class NewContactForm(ContactForm):
    email_consent = forms.BooleanField(
        label=_("Agrees to receive marketing emails"), required=False
    )
    sms_consent = forms.BooleanField(label=_("Agrees to receive marketing SMS"), required=False)
    consent_wording = forms.CharField(
        label=_("Consent wording version"),
        required=False,
        max_length=40,
        initial="formulaire-magasin-v1",
    )
    unit = forms.ChoiceField(label=_("Unit"))


class ConsentForm(StyledForm):
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    status = forms.ChoiceField(
        label=_("Status"),
        choices=[
            (ConsentStatus.GRANTED, ConsentStatus.GRANTED.label),
            (ConsentStatus.SOFT_OPT_IN, ConsentStatus.SOFT_OPT_IN.label),
            (ConsentStatus.WITHDRAWN, ConsentStatus.WITHDRAWN.label),
        ],
    )
    source = forms.ChoiceField(
        label=_("How it was collected"),
        choices=[
            (ConsentEvent.Source.IN_STORE, ConsentEvent.Source.IN_STORE.label),
            (ConsentEvent.Source.FORM, ConsentEvent.Source.FORM.label),
            (ConsentEvent.Source.STAFF, ConsentEvent.Source.STAFF.label),
        ],
    )
    wording_version = forms.CharField(
        label=_("Consent wording version"), required=False, max_length=40
    )


class ImportUploadForm(StyledForm):
    file = forms.FileField(label=_("CSV file"))
    unit = forms.ChoiceField(label=_("Into unit"))


class SegmentForm(StyledForm):
    name = forms.CharField(label=_("Name"), max_length=150)
    description = forms.CharField(label=_("Description"), required=False, max_length=300)
    owner = forms.ChoiceField(label=_("Owned by"))
    rules = forms.JSONField(widget=forms.HiddenInput)
