"""Bootstrap classes on every widget, so templates stay plain."""

from django import forms
from django.core.exceptions import ValidationError


class StyledMixin:
    # Provided by the form class the mixin is combined with.
    fields: dict[str, forms.Field]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.style_fields()

    def style_fields(self) -> None:
        """Call again after adding fields in a subclass's __init__."""
        for field in self.fields.values():
            widget = field.widget
            if "form-control" in widget.attrs.get("class", "") or "form-select" in widget.attrs.get(
                "class", ""
            ):
                continue
            if isinstance(widget, (forms.CheckboxInput, forms.CheckboxSelectMultiple)):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


class StyledForm(StyledMixin, forms.Form):
    pass


class StyledModelForm(StyledMixin, forms.ModelForm):
    pass


def form_errors(form, exc: ValidationError) -> None:
    """Attach a service's ValidationError to the form fields it names."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
