"""Writes behind the public endpoints. They act as the system (no user), found by a signed token."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import VALID_CONSENT, ConsentEvent, ConsentStatus, Contact
from enseigne.contacts.services import consent_record
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.signing import unsign_id
from enseigne.network.selectors import root_of


@dataclass(frozen=True)
class UnsubscribeTarget:
    recipient_id: int
    channel: str
    unit_name: str
    brand_name: str
    already: bool


def unsubscribe_target(token: str) -> UnsubscribeTarget | None:
    """What a token points at, or None for a forged, mangled or stale token."""
    recipient_id = unsign_id("unsubscribe", token)
    if recipient_id is None:
        return None
    with db_scope(ALL):
        row = (Recipient.objects.filter(pk=recipient_id).select_related("unit", "contact")
               .only("id", "channel", "unit__name", "unit__path", "contact__email_consent", "contact__sms_consent")
               .first())
        if row is None:
            return None
        already = row.contact is None or row.contact.consent_for(row.channel) not in VALID_CONSENT
        return UnsubscribeTarget(row.pk, row.channel, row.unit.name, root_of(row.unit).name, already)


def unsubscribe(*, recipient_id: int, ip_address: str | None = None, user_agent: str = "") -> bool:
    """Withdraw the contact's consent for the channel in this unit (idempotent)."""
    with transaction.atomic(), db_scope(ALL):
        row = Recipient.objects.filter(pk=recipient_id).select_related("campaign").first()
        if row is None or row.contact_id is None:
            return False
        contact = Contact.objects.select_for_update().filter(pk=row.contact_id).first()
        if contact is None or contact.consent_for(row.channel) == ConsentStatus.WITHDRAWN:
            return False
        consent_record(actor=None, contact=contact, channel=row.channel, status=ConsentStatus.WITHDRAWN,
                       source=ConsentEvent.Source.UNSUBSCRIBE, source_ref=f"campaign:{row.campaign.public_id}",
                       ip_address=ip_address, user_agent=user_agent)
        return True
