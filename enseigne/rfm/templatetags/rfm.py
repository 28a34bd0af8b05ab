"""The RFM group on the contact card (the store's) and on HQ's person card (the network's).

Those pages belong to contacts and identity, which come before rfm and import nothing of
it; their templates ask these tags. Each page has already authorized the record or the
person it shows; the reads also go through the request's row-level scope."""

from django import template

from enseigne.rfm.models import PersonScore, RecordScore

register = template.Library()


@register.simple_tag
def store_rfm(contact) -> RecordScore | None:
    """The record's scores among its store's buyers, or None when it bought nothing lately."""
    return RecordScore.objects.filter(contact_id=contact.pk).first()


@register.simple_tag
def network_rfm(person) -> PersonScore | None:
    """The person's scores among the network's buyers (HQ's person card only)."""
    return PersonScore.objects.filter(person_id=person.pk).first()
