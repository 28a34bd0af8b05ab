"""In-memory transport for tests: keeps what it was given, answers what it is told."""

from __future__ import annotations

from collections.abc import Iterable

from enseigne.delivery.channels.base import Outcome, Result

outbox: list = []


class LocmemTransport:
    kind = "locmem"

    def __init__(self, answer=None):
        self.answer = answer  # optional callable(message) -> Result

    def send(self, messages: Iterable) -> list[Result]:
        results = []
        for message in messages:
            result = self.answer(message) if self.answer else Result(Outcome.SENT, 250)
            if result.outcome in (Outcome.SENT, Outcome.AMBIGUOUS):
                outbox.append(message)
            results.append(result)
        return results

    def close(self) -> None:
        pass
