"""In-memory transport for tests: keeps what it was given, answers what it is told."""

from __future__ import annotations

from collections.abc import Iterable

from enseigne.delivery.channels.base import OnResult, Outcome, Result, deliver_each

outbox: list = []


class LocmemTransport:
    kind = "locmem"
    lanes = 1

    def __init__(self, answer=None, lanes: int = 1):
        self.answer = answer  # optional callable(message) -> Result
        self.lanes = lanes

    def send(self, messages: Iterable, on_result: OnResult | None = None) -> list[Result]:
        return deliver_each(messages, self._deliver, on_result)

    def _deliver(self, message) -> Result:
        result = self.answer(message) if self.answer else Result(Outcome.SENT, 250)
        if result.outcome in (Outcome.SENT, Outcome.AMBIGUOUS):
            outbox.append(message)
        return result

    def close(self) -> None:
        pass
