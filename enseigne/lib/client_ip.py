"""The client's address, trusting X-Forwarded-For only as far as the deployer says.

Without a declared proxy (``ENSEIGNE_PROXY_COUNT=0``) the address is the connection's: a
header is something any client can write, and an address taken from it would let one
client pass for many (and dodge login throttling) or for a colleague (and lock them out).
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(value: str) -> str | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip(request: HttpRequest, *_ignored) -> str:
    """With N trusted proxies, each appends the address it received the request from, so the
    client is the N-th entry from the right; anything left of it came from the client."""
    remote = _valid(request.META.get("REMOTE_ADDR", "")) or "0.0.0.0"  # noqa: S104 (not a bind)
    count = settings.PROXY_COUNT
    if not count:
        return remote
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part.strip() for part in forwarded if part.strip()]
    if len(forwarded) < count:
        # Not through the whole proxy chain (a request that reached the app directly).
        return remote
    return _valid(forwarded[-count]) or remote
