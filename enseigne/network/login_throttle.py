"""Login throttling on django-axes: per (e-mail, address) pair, with a cool-off.

After ``AXES_FAILURE_LIMIT`` wrong passwords for one e-mail from one address, that pair is
refused for ``LOGIN_COOLOFF_MINUTES`` counted from its last counted failure; a successful
login resets the pair. Someone guessing a colleague's password locks only their own address
out: the colleague, from anywhere else, still logs in (see docs/decisions.md).
"""

from __future__ import annotations

import math

from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.formats import time_format
from django.utils.translation import ngettext

from enseigne.lib.client_ip import client_ip

# AccessAttempt.username is 255 characters; PostgreSQL refuses NUL in text.
USERNAME_MAX = 255


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes refuses an authenticate() call that has no request; such calls come from code
    (Django's test client, shell sessions), never from someone guessing over HTTP."""

    def authenticate(self, request: HttpRequest | None, *args, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def username_of(request: HttpRequest, credentials: dict | None = None) -> str:
    """The e-mail a try counts against: ``Camille@X`` and `` camille@x`` are one account."""
    field = settings.AXES_USERNAME_FORM_FIELD
    raw = (credentials or {}).get(field)
    if raw is None:
        raw = request.POST.get(field, "") if request is not None else ""
    return str(raw).replace("\x00", "").strip().casefold()[:USERNAME_MAX]


def retry_at(request: HttpRequest, credentials: dict | None = None):
    last = AccessAttempt.objects.filter(
        username=username_of(request, credentials),
        ip_address=getattr(request, "axes_ip_address", None) or client_ip(request),
    ).aggregate(last=Max("attempt_time"))["last"]
    return (last or timezone.now()) + settings.AXES_COOLOFF_TIME


def lockout_message(when) -> str:
    minutes = max(1, math.ceil((when - timezone.now()).total_seconds() / 60))
    return ngettext(
        "Too many wrong passwords for this e-mail address from your network. "
        "Try again at %(time)s (in %(minutes)d minute). Logging in from another "
        "network is not affected.",
        "Too many wrong passwords for this e-mail address from your network. "
        "Try again at %(time)s (in %(minutes)d minutes). Logging in from another "
        "network is not affected.",
        minutes,
    ) % {"time": time_format(timezone.localtime(when), "H:i"), "minutes": minutes}


def lockout_response(
    request: HttpRequest, original_response=None, credentials: dict | None = None
) -> HttpResponse:
    """The login page again, with when to retry; 429 and Retry-After for scripts."""
    when = retry_at(request, credentials)
    response = render(
        request,
        "network/login.html",
        {
            "form": AuthenticationForm(request),
            "lockout": lockout_message(when),
            "next": request.POST.get("next", ""),
            "username": username_of(request, credentials),
        },
        status=429,
    )
    response["Retry-After"] = str(max(1, math.ceil((when - timezone.now()).total_seconds())))
    return response
