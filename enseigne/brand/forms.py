"""Forms of the brand kit. The zone form is built from the template's zones in the view."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from enseigne.brand.asset_services import CONTENT_FIELDS
from enseigne.brand.images import max_upload_bytes
from enseigne.brand.models import Asset, Guardrails
from enseigne.contacts.models import Channel
from enseigne.lib.forms import StyledForm, StyledModelForm


def owner_choices(hq_nodes, own_units) -> list[tuple[str, str]]:
    """``hq:<node id>`` (HQ shares with a subtree) or ``own:<unit id>`` (a unit's own)."""
    choices = [
        (f"hq:{n.public_id}", _("Shared with %(node)s") % {"node": n.name}) for n in hq_nodes
    ]
    choices += [(f"own:{u.public_id}", _("Only %(unit)s") % {"unit": u.name}) for u in own_units]
    return choices


class _OwnedForm(StyledForm):
    owner = forms.ChoiceField(label=_("Who sees it"))
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    folder = forms.CharField(label=_("Folder"), max_length=120, required=False)
    tags = forms.CharField(
        label=_("Tags"), max_length=400, required=False, help_text=_("Separated by commas.")
    )

    def __init__(self, *args, owners: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = owners


class UploadForm(_OwnedForm):
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[(Asset.Kind.IMAGE, _("Image")), (Asset.Kind.LOGO, _("Logo"))]
    )
    variant = forms.ChoiceField(
        label=_("Logo variant"), choices=Asset.Variant.choices, required=False
    )
    file = forms.FileField(label=_("File"), help_text=_("PNG, JPEG, GIF or WebP."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > max_upload_bytes():
            raise forms.ValidationError(
                _("This file weighs %(size)s MB; the limit is %(max)s MB.")
                % {"size": round(upload.size / 1048576, 1), "max": max_upload_bytes() // 1048576}
            )
        return upload


_LABELS = {
    "text": _("Text"),
    "title": _("Title"),
    "price": _("Price"),
    "valid_from": _("Valid from"),
    "valid_until": _("Valid until"),
    "legal": _("Legal mention"),
    "url": _("Link"),
    "cta": _("Button label"),
    "sku": _("SKU"),
    "name": _("Product name"),
    "category": _("Category"),
}


def content_items(data: dict | None) -> list[tuple[str, object]]:
    """A text, offer or product's filled fields under their labels (the page shows words,
    not the data's keys)."""
    return [(_LABELS.get(key, key), value) for key, value in (data or {}).items() if value]


class ContentForm(_OwnedForm):
    """A text snippet, offer or product: the fields depend on the kind."""

    image = forms.FileField(
        label=_("Picture"), required=False, help_text=_("PNG, JPEG, GIF or WebP.")
    )

    def __init__(self, *args, kind: str, with_owner: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not with_owner:
            del self.fields["owner"]
        if kind != Asset.Kind.PRODUCT or not with_owner:
            del self.fields["image"]
        for key, limit in CONTENT_FIELDS[kind].items():
            if key in ("text", "legal") and limit > 200:
                widget = forms.Textarea(attrs={"rows": 4 if key == "text" else 2})
            elif key.startswith("valid_"):
                widget = forms.DateInput(attrs={"type": "date"})
            elif key == "url":
                widget = forms.URLInput(attrs={"placeholder": "https://"})
            else:
                widget = forms.TextInput()
            self.fields[f"data_{key}"] = forms.CharField(
                label=_LABELS[key], max_length=limit, required=False, widget=widget
            )
        self.style_fields()

    def content(self) -> dict:
        return {k[5:]: v for k, v in self.cleaned_data.items() if k.startswith("data_")}


class TemplateForm(StyledForm):
    name = forms.CharField(label=_("Name"), max_length=200)
    description = forms.CharField(label=_("Description"), max_length=300, required=False)
    shared_with = forms.ChoiceField(label=_("Units that may use it"))
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False)
    source = forms.CharField(
        label=_("Template content"),
        widget=forms.Textarea(
            attrs={"rows": 24, "class": "font-monospace", "spellcheck": "false", "wrap": "off"}
        ),
        help_text=_(
            'MJML (e-mail) or text (SMS). Mark editable parts with <ens-zone name="…" kind="text|rich|'
            'image|choice|offer|product">…</ens-zone>; everything else is locked.'
        ),
    )
    sms_stop = forms.CharField(
        label=_("STOP mention"),
        max_length=40,
        required=False,
        help_text=_("Always added at the end of the SMS, never cut."),
    )
    max_segments = forms.IntegerField(
        label=_("Maximum SMS segments"), min_value=1, max_value=6, initial=2, required=False
    )

    def __init__(self, *args, channel: str, nodes=None, **kwargs):
        super().__init__(*args, **kwargs)
        if nodes is None:
            del self.fields["shared_with"]
        else:
            self.fields["shared_with"].choices = [(str(n.public_id), n.name) for n in nodes]
        if channel == Channel.EMAIL:
            del self.fields["sms_stop"], self.fields["max_segments"]
        else:
            del self.fields["subject"]


class GuardrailsForm(StyledModelForm):
    restricted_patterns = forms.CharField(
        label=_("Restricted words"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("One per line: a word or phrase, or re:<regular expression>."),
    )
    allowed_link_domains = forms.CharField(
        label=_("Allowed link domains"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "One per line. Links in editable zones must go to one of these domains (or their subdomains)."
        ),
    )

    class Meta:
        model = Guardrails
        fields = [
            "restricted_patterns",
            "allowed_link_domains",
            "max_image_kb",
            "require_logo",
            "require_legal_footer",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["restricted_patterns"] = "\n".join(self.instance.restricted_patterns)
            self.initial["allowed_link_domains"] = "\n".join(self.instance.allowed_link_domains)

    def _lines(self, name: str) -> list[str]:
        return [line.strip() for line in self.cleaned_data[name].splitlines() if line.strip()]

    def clean_restricted_patterns(self):
        lines = self._lines("restricted_patterns")
        for line in lines:
            if line.startswith("re:"):
                try:
                    re.compile(line[3:])
                except re.error as exc:
                    raise forms.ValidationError(
                        _("“%(rule)s” is not a valid regular expression (%(error)s).")
                        % {"rule": line, "error": exc}
                    ) from None
        return lines

    def clean_allowed_link_domains(self):
        return [
            d.lower().removeprefix("https://").removeprefix("http://").strip("/")
            for d in self._lines("allowed_link_domains")
        ]
