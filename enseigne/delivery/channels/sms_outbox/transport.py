"""SMS kept in the embedded demo's Outbox page instead of being sent."""

from __future__ import annotations

from enseigne.delivery.channels.base import Outcome, Result, SmsOut
from enseigne.delivery.models import OutboxMessage


class OutboxSmsTransport:
    kind = "sms_outbox"

    def __init__(self, unit_paths: dict[int, str] | None = None):
        self.unit_paths = unit_paths if unit_paths is not None else {}

    def send(self, messages: list[SmsOut]) -> list[Result]:
        OutboxMessage.objects.bulk_create([
            OutboxMessage(channel="sms", unit_path=self.unit_paths.get(m.recipient_id, ""), message_id=m.message_id,
                          sender=m.sender, recipient=m.to, raw=m.text)
            for m in messages
        ])
        return [Result(Outcome.SENT, 200) for _ in messages]

    def close(self) -> None:
        pass
