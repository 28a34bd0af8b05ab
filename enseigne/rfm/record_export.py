"""A record's RFM scores, for its GDPR export: profiling is personal data too."""

from __future__ import annotations

from enseigne.contacts.models import Contact

from .models import RecordScore


def scores(contact: Contact) -> dict:
    """The record's scores among its store's buyers (None when it bought nothing lately)."""
    score = RecordScore.objects.filter(contact_id=contact.pk).first()
    return {
        "rfm": None
        if score is None
        else {
            "group": score.group,
            "recency": score.recency,
            "frequency": score.frequency,
            "monetary": score.monetary,
        }
    }
