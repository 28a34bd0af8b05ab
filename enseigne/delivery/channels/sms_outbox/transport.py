"""SMS kept in the embedded demo's Outbox page instead of being sent."""

from __future__ import annotations

from collections.abc import Iterable

from enseigne.campaigns.models import Recipient
from enseigne.delivery.channels.base import Outcome, Result, SmsOut
from enseigne.delivery.models import OutboxMessage


class OutboxSmsTransport:
    kind = "sms_outbox"

    def send(self, messages: Iterable[SmsOut]) -> list[Result]:
        messages = list(messages)
        paths = dict(
            Recipient.objects.filter(pk__in=[m.recipient_id for m in messages]).values_list(
                "id", "unit_path"
            )
        )
        OutboxMessage.objects.bulk_create(
            [
                OutboxMessage(
                    channel="sms",
                    unit_path=paths.get(m.recipient_id, ""),
                    message_id=m.message_id,
                    sender=m.sender,
                    recipient=m.to,
                    raw=m.text,
                )
                for m in messages
            ]
        )
        return [Result(Outcome.SENT, 200) for _ in messages]

    def close(self) -> None:
        pass
