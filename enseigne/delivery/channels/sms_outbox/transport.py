"""SMS kept in the embedded demo's Outbox page instead of being sent."""

from __future__ import annotations

from collections.abc import Iterable

from enseigne.campaigns.models import Recipient
from enseigne.delivery.channels.base import OnResult, Outcome, Result, SmsOut, deliver_each
from enseigne.delivery.models import OutboxMessage


class OutboxSmsTransport:
    kind = "sms_outbox"
    lanes = 1

    def send(self, messages: Iterable[SmsOut], on_result: OnResult | None = None) -> list[Result]:
        return deliver_each(messages, self._deliver, on_result)

    def _deliver(self, m: SmsOut) -> Result:
        OutboxMessage.objects.create(
            channel="sms",
            unit_path=Recipient.objects.filter(pk=m.recipient_id)
            .values_list("unit_path", flat=True)
            .first()
            or "",
            message_id=m.message_id,
            sender=m.sender,
            recipient=m.to,
            raw=m.text,
        )
        return Result(Outcome.SENT, 200)

    def close(self) -> None:
        pass
