from django import forms
from django.utils.translation import gettext_lazy as _

from enseigne.lib.forms import StyledForm


class CatalogueUploadForm(StyledForm):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "One product per row: SKU (référence), name (libellé), category (famille), price "
            "(prix). You will match the columns next, and can check the file with a dry run."
        ),
    )
    node = forms.ChoiceField(label=_("Shared with"))
