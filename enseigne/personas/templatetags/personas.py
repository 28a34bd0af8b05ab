"""The persona on the contact card (contacts comes before personas and imports nothing of
it: its template asks this tag). The page has already authorized the record; the read also
goes through the request's row-level scope."""

from django import template

from enseigne.personas.models import PersonaRecord

register = template.Library()


@register.simple_tag
def record_persona(contact) -> PersonaRecord | None:
    """The record's persona at the last assignment, or None when no persona matched."""
    return PersonaRecord.objects.filter(contact_id=contact.pk).select_related("persona").first()
