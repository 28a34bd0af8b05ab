"""E-mail through an ESP's HTTP API with django-anymail (Mailgun, Brevo, SES, Postmark…).

The raw message is turned back into a Django message once per recipient: ESP APIs are
slower than that, and anymail maps the ESP's answer to a status per recipient.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterable

from anymail.message import AnymailMessage
from django.utils.module_loading import import_string

from enseigne.delivery.channels.base import (
    EmailOut,
    OnResult,
    Outcome,
    RateLimiter,
    Result,
    deliver_each,
)
from enseigne.lib.signing import sign_id


class AnymailTransport:
    kind = "anymail"
    lanes = 1

    def __init__(self, backend: str, *, rate: float = 0):
        self.backend = import_string(backend)(fail_silently=False)
        self.limiter = RateLimiter(rate)

    @staticmethod
    def _message(out: EmailOut) -> AnymailMessage:
        parsed = email.message_from_bytes(out.data, policy=email.policy.default)
        text = parsed.get_body(("plain",))
        html = parsed.get_body(("html",))
        headers = {
            k: str(parsed[k])
            for k in (
                "Message-ID",
                "List-Unsubscribe",
                "List-Unsubscribe-Post",
                "List-Id",
                "Reply-To",
            )
            if parsed[k]
        }
        message = AnymailMessage(
            subject=str(parsed["Subject"]),
            body=text.get_content() if text else "",
            from_email=str(parsed["From"]),
            to=[out.to],
            headers=headers,
            envelope_sender=out.mail_from,
            # Echoed back by the ESP's tracking events: which ledger row a bounce is about.
            metadata={"enseigne": sign_id("esp", out.recipient_id)},
        )
        if html is not None:
            message.attach_alternative(html.get_content(), "text/html")
        return message

    def send(self, messages: Iterable[EmailOut], on_result: OnResult | None = None) -> list[Result]:
        return deliver_each(messages, self._deliver, on_result)

    def _deliver(self, out: EmailOut) -> Result:
        from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

        self.limiter.take()
        try:
            message = self._message(out)
            self.backend.send_messages([message])
            status = message.anymail_status.status or set()
            if status & {"rejected", "invalid"}:
                return Result(
                    Outcome.FAILED, None, ",".join(sorted(status)), hard_bounce="invalid" in status
                )
            return Result(Outcome.SENT, 200)
        except AnymailRecipientsRefused as exc:
            return Result(Outcome.FAILED, None, str(exc)[:300], hard_bounce=True)
        except AnymailAPIError as exc:
            code = getattr(getattr(exc, "response", None), "status_code", None)
            retry = code is None or code == 429 or code >= 500
            return Result(Outcome.RETRY if retry else Outcome.FAILED, code, str(exc)[:300])

    def close(self) -> None:
        pass
