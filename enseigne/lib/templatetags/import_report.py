"""The imports' shared report (``templates/imports/_progress.html``)."""

from django import template

from enseigne.lib.imports import reason_shown

register = template.Library()


@register.filter
def import_reason(stored: str) -> str:
    """A report line's reason in the reader's language (``lib.imports.reason_shown``)."""
    return reason_shown(stored)
