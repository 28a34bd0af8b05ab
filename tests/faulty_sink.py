"""A fault-injecting SMTP sink for the reliability tests (aiosmtpd in a thread).

At set rates it resets the connection before end-of-data, answers 451, 454 or 550, and
drops the connection after end-of-data (the message is kept, no reply is sent). It
counts every message it kept by Message-ID, so duplicates can be counted exactly.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.M)


class FaultyHandler:
    def __init__(
        self,
        *,
        seed: int = 7,
        reset: float = 0.0,
        r451: float = 0.0,
        r454: float = 0.0,
        r550: float = 0.0,
        drop_after: float = 0.0,
    ):
        self.rng = random.Random(seed)
        self.rates = (r451, r454, r550, drop_after)
        self.reset = reset
        self.kept: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.kept_at: dict[str, float] = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rng.random() < self.reset:
            server.transport.abort()
            return "421 4.4.2 reset"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        found = MESSAGE_ID.search(envelope.original_content or envelope.content)
        mid = found.group(1).decode() if found else "?"
        r451, r454, r550, drop_after = self.rates
        draw = self.rng.random()
        if draw < r451:
            return "451 4.3.0 Try again later"
        if draw < r451 + r454:
            return "454 4.7.0 Temporary failure"
        if draw < r451 + r454 + r550:
            with self.lock:
                self.refused[mid] += 1
            return "550 5.1.1 User unknown"
        with self.lock:
            self.kept[mid] += 1
            self.kept_at.setdefault(mid, time.time())
        if draw < r451 + r454 + r550 + drop_after:
            server.transport.abort()
        return "250 2.0.0 OK"


class FaultySink:
    def __init__(self, handler: FaultyHandler, port: int = 0):
        self.handler = handler
        self.controller = Controller(handler, hostname="127.0.0.1", port=port or _free_port())

    @property
    def port(self) -> int:
        return self.controller.port

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
