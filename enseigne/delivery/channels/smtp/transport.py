"""SMTP with persistent connections and a configurable number of them in parallel.

Each thread owns one connection and keeps it across batches. The reply to the final
dot is what confirms a hand-off: a connection lost while the message was still being
written means the server never took it (retry); lost after the whole message was
written and before the reply means nobody knows (``AMBIGUOUS``). With PIPELINING the
envelope commands go in one write.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from queue import SimpleQueue
from urllib.parse import parse_qs, unquote, urlparse

from enseigne.delivery import codes
from enseigne.delivery.channels.base import EmailOut, OnResult, Outcome, RateLimiter, Result

_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "127.0.0.1"
    port: int = 25
    username: str = ""
    password: str = ""
    tls: str = ""  # "", "starttls" or "ssl"
    concurrency: int = 4
    rate: float = 0  # messages per second for this server, 0 = no limit
    timeout: float = 30
    messages_per_connection: int = 1000

    @classmethod
    def from_url(cls, url: str, *, concurrency: int = 4, rate: float = 0) -> SmtpConfig:
        parsed = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        tls = {"smtps": "ssl", "submission": "starttls"}.get(
            parsed.scheme, "starttls" if query.get("tls") == "1" else ""
        )
        return cls(
            host=parsed.hostname or "localhost",
            port=parsed.port or (465 if tls == "ssl" else 25),
            username=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            tls=tls,
            concurrency=int(query.get("concurrency", concurrency)),
            rate=float(query.get("rate", rate)),
        )


def classify(code: int, text: str) -> Result:
    """The hand-off's reading of a reply: the same as a delivery report's (``codes``)."""
    verdict = codes.classify(code=code, text=text)
    if verdict.delivered:
        return Result(Outcome.SENT, code)
    if verdict.temporary:
        return Result(Outcome.RETRY, code, text[:300])
    return Result(Outcome.FAILED, code, text[:300], hard_bounce=verdict.suppress)


class _Connection:
    def __init__(self, config: SmtpConfig):
        self.config = config
        self.smtp: smtplib.SMTP | None = None
        self.sent = 0
        self.pipelining = False

    def open(self) -> smtplib.SMTP:
        c = self.config
        smtp: smtplib.SMTP
        if c.tls == "ssl":
            smtp = smtplib.SMTP_SSL(
                c.host, c.port, timeout=c.timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
        smtp.ehlo()
        if c.tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if c.username:
            smtp.login(c.username, c.password)
        self.pipelining = smtp.has_extn("pipelining")
        self.smtp, self.sent = smtp, 0
        return smtp

    def drop(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError):
                self.smtp.close()
        self.smtp = None

    def quit(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
        self.drop()

    def deliver(self, message: EmailOut) -> Result:
        if self.smtp is not None and self.sent >= self.config.messages_per_connection:
            self.quit()
        try:
            smtp = self.smtp or self.open()
            envelope = self._envelope(smtp, message)
            if envelope is not None:
                return envelope
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            return Result(Outcome.RETRY, None, f"connection: {exc}"[:300])
        try:
            smtp.send(
                _LEADING_DOT.sub(b"..", message.data)
                + (b"" if message.data.endswith(b"\r\n") else b"\r\n")
                + b".\r\n"
            )
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()  # the server stopped reading before the final dot: it did not take it
            return Result(Outcome.RETRY, None, f"lost before end of data: {exc}"[:300])
        try:
            code, text = smtp.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            return Result(Outcome.AMBIGUOUS, None, f"lost after end of data: {exc}"[:300])
        self.sent += 1
        return classify(code, text.decode(errors="replace"))

    def _envelope(self, smtp: smtplib.SMTP, message: EmailOut) -> Result | None:
        """MAIL, RCPT, DATA; None when the server is ready for the message."""
        if self.pipelining:
            smtp.send(
                f"MAIL FROM:<{message.mail_from}>\r\nRCPT TO:<{message.to}>\r\nDATA\r\n".encode()
            )
            replies = [smtp.getreply() for _ in range(3)]
        else:
            replies = [smtp.mail(message.mail_from)]
            if replies[-1][0] == 250:
                replies.append(smtp.rcpt(message.to))
                if replies[-1][0] in (250, 251):
                    smtp.putcmd("data")
                    replies.append(smtp.getreply())
        for expected, (code, text) in zip(((250,), (250, 251), (354,)), replies, strict=False):
            if code not in expected:
                if code == 421:
                    self.drop()
                    return Result(Outcome.RETRY, code, text.decode(errors="replace")[:300])
                if replies[-1][0] == 354:  # pipelined DATA was accepted anyway: end it empty
                    smtp.send(b".\r\n")
                    smtp.getreply()
                smtp.rset()
                return classify(code, text.decode(errors="replace"))
        if len(replies) < 3:
            return Result(Outcome.RETRY, None, "incomplete envelope")
        return None


class SmtpTransport:
    kind = "smtp"

    def __init__(self, config: SmtpConfig):
        self.config = config
        self.limiter = RateLimiter(config.rate)
        self.connections = [_Connection(config) for _ in range(max(1, config.concurrency))]
        self.lanes = len(self.connections)
        self.pool = ThreadPoolExecutor(max_workers=len(self.connections), thread_name_prefix="smtp")

    def _drain(
        self,
        connection: _Connection,
        queue: SimpleQueue,
        results: dict,
        on_result: OnResult | None,
    ) -> None:
        while (item := queue.get()) is not None:
            index, message = item
            self.limiter.take()
            result = results[index] = connection.deliver(message)
            if on_result is not None:
                on_result(message, result)

    def send(self, messages: Iterable[EmailOut], on_result: OnResult | None = None) -> list[Result]:
        """Each connection takes the next message as soon as it is free, while the caller may
        still be rendering the ones after it (the GIL is released while a socket waits)."""
        results: dict[int, Result] = {}
        count = 0
        queue: SimpleQueue = SimpleQueue()
        lanes = [
            self.pool.submit(self._drain, connection, queue, results, on_result)
            for connection in self.connections
        ]
        try:
            for count, message in enumerate(messages, 1):
                queue.put((count - 1, message))
        finally:
            for _ in lanes:
                queue.put(None)
            for lane in lanes:
                lane.result()
        return [results[i] for i in range(count)]

    def close(self) -> None:
        for connection in self.connections:
            connection.quit()
        self.pool.shutdown(wait=False)
