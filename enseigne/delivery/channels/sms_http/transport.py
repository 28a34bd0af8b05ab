"""A generic HTTP SMS provider: one JSON POST per message.

Body: ``{"from", "to", "text", "reference"}``; ``Authorization: Bearer <token>`` when a
token is set. 2xx = accepted, 429 and 5xx = try again later, other 4xx = refused.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable

from enseigne.delivery.channels.base import (
    OnResult,
    Outcome,
    RateLimiter,
    Result,
    SmsOut,
    deliver_each,
)


class HttpSmsTransport:
    kind = "sms_http"
    lanes = 1

    def __init__(self, url: str, *, token: str = "", rate: float = 0, timeout: float = 10):
        if not url.startswith(("https://", "http://")):
            raise ValueError("The SMS provider URL must be http(s).")
        self.url, self.token, self.timeout = url, token, timeout
        self.limiter = RateLimiter(rate)

    def _post(self, message: SmsOut) -> Result:
        body = json.dumps(
            {
                "from": message.sender,
                "to": message.to,
                "text": message.text,
                "reference": message.message_id,
            }
        ).encode()
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return Result(Outcome.SENT, response.status)
        except urllib.error.HTTPError as exc:
            outcome = Outcome.RETRY if exc.code == 429 or exc.code >= 500 else Outcome.FAILED
            return Result(outcome, exc.code, exc.reason if isinstance(exc.reason, str) else "")
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            # The request may have reached the provider before the connection failed.
            sent_body = isinstance(exc, TimeoutError) or "timed out" in str(exc)
            return Result(Outcome.AMBIGUOUS if sent_body else Outcome.RETRY, None, str(exc)[:300])

    def send(self, messages: Iterable[SmsOut], on_result: OnResult | None = None) -> list[Result]:
        return deliver_each(messages, self._deliver, on_result)

    def _deliver(self, message: SmsOut) -> Result:
        self.limiter.take()
        return self._post(message)

    def close(self) -> None:
        pass
