"""A record's purchases and messages, for its GDPR export (contacts.records.export_parts).

Tracking comes after campaigns and delivery in the dependency order, so it is the first
app that may read all three: the send ledger, the event log and the conversions.
"""

from __future__ import annotations

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Contact
from enseigne.delivery.models import Event

from .models import Conversion


def _when(value) -> str | None:
    return value.isoformat() if value else None


def purchases_and_messages(contact: Contact) -> dict:
    """The sales reported to credit the record's campaigns (the conversions endpoint; the
    store's own orders are commerce's section), each message it was sent and what it did."""
    recipients = list(
        Recipient.objects.filter(contact=contact)
        .select_related("campaign")
        .order_by("campaign_id", "channel")
    )
    events_by_recipient: dict[int, list[dict]] = {}
    if recipients:
        events = Event.objects.filter(
            campaign_id__in={r.campaign_id for r in recipients},
            recipient_id__in=[r.pk for r in recipients],
            machine=False,
        ).order_by("occurred_at", "id")
        for event in events:
            events_by_recipient.setdefault(event.recipient_id or 0, []).append(
                {
                    "kind": Event.Kind(event.kind).name.lower(),
                    "occurred_at": _when(event.occurred_at),
                }
            )
    return {
        "campaign_conversions": [
            {
                "order_id": c.order_id,
                "amount": str(c.amount),
                "occurred_at": _when(c.occurred_at),
                "source": c.source,
            }
            for c in Conversion.objects.filter(contact=contact).order_by("occurred_at", "id")
        ],
        "messages": [
            {
                "campaign": r.campaign.name,
                "channel": r.channel,
                "status": r.status,
                "sent_at": _when(r.sent_at),
                "feedback": r.feedback,
                "events": events_by_recipient.get(r.pk, []),
            }
            for r in recipients
        ],
    }
