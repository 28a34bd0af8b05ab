"""Absolute addresses of this server, made from ``BASE_URL`` when they are needed."""

from __future__ import annotations

from django.conf import settings


def absolute_url(url: str) -> str:
    """``url`` made absolute with ``BASE_URL`` when it is a path of this server; any other
    address (another host, a CDN) is returned as it is."""
    if url.startswith("/") and not url.startswith("//"):
        return settings.BASE_URL.rstrip("/") + url
    return url
