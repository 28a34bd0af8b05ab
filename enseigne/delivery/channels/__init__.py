"""Transports chosen from the environment: ``EMAIL_URL`` for e-mail, ``SMS_URL`` for SMS."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def email_transport():
    url = settings.EMAIL_URL
    scheme = urlparse(url).scheme
    if scheme in {"smtp", "smtps", "submission"}:
        from enseigne.delivery.channels.smtp.transport import SmtpConfig, SmtpTransport

        return SmtpTransport(
            SmtpConfig.from_url(
                url, concurrency=settings.SMTP_CONCURRENCY, rate=settings.EMAIL_RATE
            )
        )
    if scheme == "esp":
        from enseigne.delivery.channels.anymail.transport import AnymailTransport

        return AnymailTransport(urlparse(url).path, rate=settings.EMAIL_RATE)
    if scheme == "locmem":
        from enseigne.delivery.channels.locmem.transport import LocmemTransport

        return LocmemTransport()
    raise ImproperlyConfigured(
        f"Campaigns cannot be sent through EMAIL_URL scheme {scheme!r}: use smtp:// or esp:."
    )


def configured_esp() -> str:
    """``postmark`` for ``EMAIL_URL=esp:anymail.backends.postmark.EmailBackend``; '' without an ESP."""
    parsed = urlparse(settings.EMAIL_URL or "")
    prefix = "anymail.backends."
    return (
        parsed.path[len(prefix) :].rsplit(".", 1)[0]
        if parsed.scheme == "esp" and parsed.path.startswith(prefix)
        else ""
    )


def sms_transport():
    url = settings.SMS_URL
    parsed = urlparse(url)
    if parsed.scheme == "outbox":
        from enseigne.delivery.channels.sms_outbox.transport import OutboxSmsTransport

        return OutboxSmsTransport()
    if parsed.scheme == "console":
        from enseigne.delivery.channels.sms_console.transport import ConsoleSmsTransport

        return ConsoleSmsTransport()
    if parsed.scheme == "file":
        from enseigne.delivery.channels.sms_file.transport import FileSmsTransport

        return FileSmsTransport(unquote(parsed.path))
    if parsed.scheme in {"http", "https"}:
        from enseigne.delivery.channels.sms_http.transport import HttpSmsTransport

        return HttpSmsTransport(url, token=settings.SMS_HTTP_TOKEN, rate=settings.SMS_RATE)
    if parsed.scheme == "smpp":
        from enseigne.delivery.channels.sms_smpp.transport import SmppSmsTransport

        return SmppSmsTransport(url, rate=settings.SMS_RATE)
    if parsed.scheme == "locmem":
        from enseigne.delivery.channels.locmem.transport import LocmemTransport

        return LocmemTransport()
    raise ImproperlyConfigured(
        f"SMS_URL scheme {parsed.scheme!r} is not supported "
        "(outbox:, console:, file://, https://, smpp://)."
    )
