"""SMPP 3.4 to an operator or aggregator, through smpplib (one bound transmitter)."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qs, unquote, urlparse

from enseigne.delivery.channels.base import (
    OnResult,
    Outcome,
    RateLimiter,
    Result,
    SmsOut,
    deliver_each,
)


class SmppSmsTransport:
    kind = "sms_smpp"
    lanes = 1

    def __init__(self, url: str, *, rate: float = 0, timeout: float = 10):
        parsed = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        self.host, self.port = parsed.hostname or "localhost", parsed.port or 2775
        self.system_id, self.password = (
            unquote(parsed.username or ""),
            unquote(parsed.password or ""),
        )
        self.system_type = query.get("system_type", "")
        self.timeout = timeout
        self.limiter = RateLimiter(rate)
        self.client = None

    def _connect(self):
        import smpplib.client

        client = smpplib.client.Client(self.host, self.port, timeout=self.timeout)
        client.connect()
        client.bind_transmitter(
            system_id=self.system_id, password=self.password, system_type=self.system_type
        )
        self.client = client
        return client

    def _submit(self, message: SmsOut) -> Result:
        import smpplib.consts
        import smpplib.exceptions
        import smpplib.gsm

        try:
            client = self.client or self._connect()
            parts, coding, msg_type = smpplib.gsm.make_parts(message.text)
            alphanumeric = not message.sender.lstrip("+").isdigit()
            for part in parts:
                client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM
                    if alphanumeric
                    else smpplib.consts.SMPP_TON_INTL,
                    source_addr=message.sender,
                    dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    destination_addr=message.to.lstrip("+"),
                    short_message=part,
                    data_coding=coding,
                    esm_class=msg_type,
                    registered_delivery=True,
                )
            return Result(Outcome.SENT, 0)
        except smpplib.exceptions.PDUError as exc:
            status = exc.args[1] if len(exc.args) > 1 else None
            throttled = status in (
                smpplib.consts.SMPP_ESME_RTHROTTLED,
                smpplib.consts.SMPP_ESME_RMSGQFUL,
            )
            return Result(Outcome.RETRY if throttled else Outcome.FAILED, status, str(exc)[:300])
        except (smpplib.exceptions.ConnectionError, OSError) as exc:
            self.close()
            return Result(Outcome.AMBIGUOUS if self.client else Outcome.RETRY, None, str(exc)[:300])

    def send(self, messages: Iterable[SmsOut], on_result: OnResult | None = None) -> list[Result]:
        return deliver_each(messages, self._deliver, on_result)

    def _deliver(self, message: SmsOut) -> Result:
        self.limiter.take()
        return self._submit(message)

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.unbind()
                self.client.disconnect()
            except Exception:  # noqa: BLE001,S110 (closing a broken link)
                pass
        self.client = None
