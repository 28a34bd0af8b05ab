from django import forms
from django.utils.translation import gettext_lazy as _

from enseigne.lib.forms import StyledForm


class CatalogueUploadForm(StyledForm):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns found by their names: SKU (référence), name (libellé), category "
            "(famille), price (prix)."
        ),
    )
    node = forms.ChoiceField(label=_("Shared with"))
    dry_run = forms.BooleanField(
        label=_("Dry run: check every row and show the report, change nothing"),
        required=False,
        initial=True,
    )
