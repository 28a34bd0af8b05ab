"""Short signed tokens for public links (unsubscribe, clicks, opens): ``<id>.<mac>``.

An HMAC-SHA256 of the purpose and the id with the secret key, cut to 128 bits and
base64url-encoded: short enough for an SMS or a header, impossible to forge or to move
from one purpose to another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings


def _mac(purpose: str, values: tuple[int, ...]) -> str:
    message = f"{purpose}:{'-'.join(map(str, values))}"
    digest = hmac.new(settings.SECRET_KEY.encode(), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def sign_ids(purpose: str, *values: int) -> str:
    """Non-negative ids under one MAC: ``<a>-<b>.<mac>`` (a click names a row and a link)."""
    return f"{'-'.join(map(str, values))}.{_mac(purpose, values)}"


def unsign_ids(purpose: str, token: str, count: int) -> tuple[int, ...] | None:
    """The ``count`` ids, or None for anything that is not a token we made for this purpose."""
    head, _, mac = (token or "").partition(".")
    parts = head.split("-")
    # Only the form sign_ids writes: ASCII digits, no leading zero (so one id has one token).
    if (
        len(parts) != count
        or not mac
        or any(
            not (p.isascii() and p.isdigit()) or len(p) > 18 or (p[0] == "0" and p != "0")
            for p in parts
        )
    ):
        return None
    values = tuple(int(p) for p in parts)
    # Bytes: compare_digest refuses non-ASCII str (a 500 instead of a 404).
    return values if hmac.compare_digest(mac.encode(), _mac(purpose, values).encode()) else None


def sign_id(purpose: str, value: int) -> str:
    return sign_ids(purpose, value)


def unsign_id(purpose: str, token: str) -> int | None:
    """The id, or None for anything that is not a token we made for this purpose."""
    values = unsign_ids(purpose, token, 1)
    return None if values is None else values[0]


def hex_tag(message: str, length: int) -> str:
    """A lowercase hex HMAC of ``message`` with the secret key, cut to ``length``: for places
    that must survive case folding or stay hex (Message-IDs, envelope addresses, URL keys)."""
    return hmac.new(settings.SECRET_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()[
        :length
    ]


def webhook_key(purpose: str) -> str:
    """The secret path segment of an inbound URL (bounces posted by the MTA, say)."""
    return hex_tag(f"webhook:{purpose}", 32)


def webhook_key_matches(purpose: str, key: str) -> bool:
    return hmac.compare_digest((key or "").encode(), webhook_key(purpose).encode())
