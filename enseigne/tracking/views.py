"""Public endpoints: no session, a signed token in the URL."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from enseigne.tracking import services


@csrf_exempt  # a signed token, not a session, authorises it; RFC 8058 posts carry no cookie
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET shows a confirmation page and changes nothing (mail scanners fetch links); POST unsubscribes."""
    target = services.unsubscribe_target(token)
    if target is None:
        raise Http404("Unknown link.")
    done = False
    if request.method == "POST":
        services.unsubscribe(recipient_id=target.recipient_id, ip_address=request.META.get("REMOTE_ADDR"),
                             user_agent=request.META.get("HTTP_USER_AGENT", ""))
        done = True
    response = render(request, "tracking/unsubscribe.html", {"target": target, "done": done or target.already,
                                                               "token": token})
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response
