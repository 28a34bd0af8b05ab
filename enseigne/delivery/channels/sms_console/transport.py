"""SMS to the worker's console (development only: prints the number and the text)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from enseigne.delivery.channels.base import OnResult, Outcome, Result, SmsOut, deliver_each


class ConsoleSmsTransport:
    kind = "sms_console"
    lanes = 1

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def send(self, messages: Iterable[SmsOut], on_result: OnResult | None = None) -> list[Result]:
        return deliver_each(messages, self._deliver, on_result)

    def _deliver(self, message: SmsOut) -> Result:
        self.stream.write(f"SMS {message.sender} → {message.to}: {message.text}\n")
        self.stream.flush()
        return Result(Outcome.SENT, 200)

    def close(self) -> None:
        pass
