"""Content-Security-Policy for every page the application renders (Django 5.2 has none built in).

Scripts come only from our own static files: no inline ``<script>``, no ``on…=`` attributes,
no ``javascript:`` URLs, no ``eval``. Styles may be inline (``style=""`` attributes in the
templates; Bootstrap, htmx, Trix and FullCalendar set styles at run time): injected CSS cannot
run code, and the script policy is what stops cross-site scripting.

A response that already carries a policy keeps it: message previews (e-mails partly written by
units) send a stricter one of their own that also forbids every script and form.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"


def application_policy() -> str:
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": list(settings.CSP_IMG_SRC),
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "worker-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        if HEADER in response or REPORT_ONLY_HEADER in response:
            return response
        name = REPORT_ONLY_HEADER if settings.CSP_REPORT_ONLY else HEADER
        response[name] = application_policy()
        return response
