"""SMS to the worker's console (development only: prints the number and the text)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from enseigne.delivery.channels.base import Outcome, Result, SmsOut


class ConsoleSmsTransport:
    kind = "sms_console"

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def send(self, messages: Iterable[SmsOut]) -> list[Result]:
        messages = list(messages)
        for message in messages:
            self.stream.write(f"SMS {message.sender} → {message.to}: {message.text}\n")
        self.stream.flush()
        return [Result(Outcome.SENT, 200) for _ in messages]

    def close(self) -> None:
        pass
