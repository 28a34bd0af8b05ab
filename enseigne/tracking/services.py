"""Writes behind the public endpoints. They act as the system (no user), found by a signed token."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import VALID_CONSENT, ConsentEvent, ConsentStatus, Contact
from enseigne.contacts.services import consent_record
from enseigne.delivery import bounces
from enseigne.delivery.models import Bounce
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


# -- ESP tracking events (anymail) ------------------------------------------------------------

# anymail's normalised event types → what the report is. Others (delivered, opened…) are
# for analytics, not for the suppression list.
_ESP_KINDS = {"bounced": Bounce.Kind.HARD, "deferred": Bounce.Kind.SOFT, "complained": Bounce.Kind.COMPLAINT,
              "autoresponded": Bounce.Kind.AUTO_REPLY}


def esp_row(metadata: dict | None) -> int | None:
    """The ledger row an ESP echoes back in the metadata the message was sent with."""
    return unsign_id("esp", str((metadata or {}).get("enseigne") or ""))


def esp_event(event, esp_name: str) -> Bounce | None:
    """Act on one of anymail's tracking events (the webhook authenticated the ESP)."""
    row = esp_row(getattr(event, "metadata", None))
    kind = _ESP_KINDS.get(event.event_type)
    reason = getattr(event, "reject_reason", None)
    raw = getattr(event, "esp_event", None)
    raw_type = str(raw.get("Type", "")) if isinstance(raw, dict) else ""
    if event.event_type == "bounced" and (reason not in (None, "bounced", "invalid") or raw_type == "SoftBounce"):
        kind = Bounce.Kind.SOFT  # blocked, filtered, timed out, mailbox full: the address is fine
    if event.event_type == "rejected":
        kind = {"bounced": Bounce.Kind.HARD, "invalid": Bounce.Kind.HARD, "spam": Bounce.Kind.COMPLAINT}.get(reason)
    if event.event_type == "unsubscribed" and row is not None:
        unsubscribe(recipient_id=row, user_agent=f"{esp_name} webhook")
        return None
    if kind is None:
        return None
    reference = str(getattr(event, "event_id", "") or "") or ":".join(
        str(x) for x in (event.event_type, getattr(event, "message_id", ""), event.recipient, event.timestamp))
    report = bounces.Report(kind=kind, recipient_id=row, status=str(reason or ""),
                            diagnostic=str(getattr(event, "description", "") or getattr(event, "mta_response", "")
                                           or "")[:300], address=event.recipient or "", reference=reference[:200])
    return bounces.record(report, source=esp_name[:20], trusted_address=True)
