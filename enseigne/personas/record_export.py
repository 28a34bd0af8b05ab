"""A record's persona, for its GDPR export: profiling is personal data too."""

from __future__ import annotations

from enseigne.contacts.models import Contact

from .models import PersonaRecord


def persona(contact: Contact) -> dict:
    """The persona HQ's rules gave the record at the last assignment (None: none matched)."""
    found = PersonaRecord.objects.filter(contact_id=contact.pk).select_related("persona").first()
    return {
        "persona": None
        if found is None
        else {"name": found.persona.name, "description": found.persona.description}
    }
