"""The click and open endpoints' hot path, in front of Django (WSGI).

A genuine click or open asks for no page, no session, no user and no query: check the
token's MAC, find the link in this process's cache, append the event to the batch,
answer. Django's full request cycle (eight middleware, lazy user, locale) costs about
0.5 ms per request on this machine, more than the click itself; this path answers the
common case in a few dozen microseconds and hands everything else to Django unchanged —
a token that does not verify (Django answers the 404 page), a link this process has not
read yet (Django's view reads it, and the next click is fast), tests and the embedded
demo writing each event at once (``EVENTS_FLUSH_MS = 0``).

The answer carries the headers Django's view and middleware would give it.
"""

from __future__ import annotations

from django.conf import settings

from enseigne.tracking import services
from enseigne.tracking.machines import is_machine
from enseigne.tracking.views import PIXEL

_COMMON = [
    ("Cache-Control", "private, no-store"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
]
_PIXEL_HEADERS = [("Content-Type", "image/gif"), ("Content-Length", str(len(PIXEL))), *_COMMON]


class TrackingFastPath:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        method = environ.get("REQUEST_METHOD")
        path = environ.get("PATH_INFO", "")
        if (method == "GET" or method == "HEAD") and settings.EVENTS_FLUSH_MS > 0:
            if path.startswith("/c/"):
                answer = self._click(path[3:], method, environ, start_response)
                if answer is not None:
                    return answer
            elif path.startswith("/o/") and path.endswith(".gif"):
                answer = self._open(path[3:-4], method, environ, start_response)
                if answer is not None:
                    return answer
        return self.app(environ, start_response)

    @staticmethod
    def _click(token, method, environ, start_response):
        if "/" in token:
            return None
        target = services.click_target(token, cached_only=True)
        if target is None:
            return None
        recipient_id, link = target
        if method == "GET":
            services.click(
                recipient_id,
                link,
                machine=is_machine(environ.get("HTTP_USER_AGENT", ""), environ.get("REMOTE_ADDR")),
            )
        start_response(
            "302 Found",
            [
                ("Location", link.url),
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Length", "0"),
                *_COMMON,
            ],
        )
        return [b""]

    @staticmethod
    def _open(token, method, environ, start_response):
        if "/" in token:
            return None
        target = services.open_target(token)
        if target is None:
            return None
        campaign_id, unit_id, recipient_id = target
        if services.known_unit_path(unit_id) is None:
            return None
        if method == "GET":
            services.opened(
                campaign_id,
                unit_id,
                recipient_id,
                machine=is_machine(
                    environ.get("HTTP_USER_AGENT", ""), environ.get("REMOTE_ADDR"), kind="open"
                ),
            )
        start_response("200 OK", _PIXEL_HEADERS)
        return [b"" if method == "HEAD" else PIXEL]
