"""The one small interface every channel implements.

A transport takes the ready messages and answers one ``Result`` per message, in order.
The messages come as an iterable that may still be producing them (the pipeline renders
while the SMTP connections send), so a transport iterates over them once, and takes the
next only when it can send it: the pipeline hands a message over only once its "in
flight" mark is durable, and bounds how many are in flight. As soon as a message's outcome
is known the transport calls ``on_result(message, result)`` (from any of its threads), so
the ledger records it without waiting for the rest. It never
raises for a recipient's problem; it raises only when it cannot work at all
(configuration), and then nothing was handed off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol


class Outcome(Enum):
    SENT = "sent"  # confirmed hand-off (250 after end-of-data, provider accepted)
    RETRY = "retry"  # not handed off: 4xx, throttling, connection lost before end-of-data
    FAILED = "failed"  # refused for good (5xx)
    AMBIGUOUS = "ambiguous"  # the connection dropped after end-of-data: it may have left


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    code: int | None = None
    detail: str = ""
    hard_bounce: bool = False


@dataclass(frozen=True)
class EmailOut:
    recipient_id: int
    mail_from: str
    to: str
    data: bytes
    message_id: str


@dataclass(frozen=True)
class SmsOut:
    recipient_id: int
    sender: str
    to: str
    text: str
    message_id: str


OnResult = Callable[[Any, Result], None]


class Transport(Protocol):
    kind: str
    # How many messages it sends at once (its connections); the pipeline sizes its window on it.
    lanes: int

    def send(self, messages: Iterable, on_result: OnResult | None = None) -> list[Result]: ...

    def close(self) -> None: ...


def deliver_each(
    messages: Iterable, deliver: Callable[[Any], Result], on_result: OnResult | None = None
) -> list[Result]:
    """The loop of a transport that sends one message at a time."""
    results = []
    for message in messages:
        result = deliver(message)
        if on_result is not None:
            on_result(message, result)
        results.append(result)
    return results


class RateLimiter:
    """A token bucket shared by a transport's threads: at most ``rate`` messages a second."""

    def __init__(self, rate: float):
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        if self.rate <= 0:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.rate
            time.sleep(wait)
