"""Public endpoints: no session, a signed token in the URL."""

from __future__ import annotations

import json

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from enseigne.delivery import bounces
from enseigne.delivery.channels import configured_esp
from enseigne.lib.signing import webhook_key_matches
from enseigne.lib.textinput import accepts_nul_bytes
from enseigne.tracking import services, sms_inbound
from enseigne.tracking.machines import is_machine

# A DSN quotes the original message: ours are far below this.
MAX_REPORT_BYTES = 2 * 1024 * 1024
# The smallest transparent GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_http_methods(["GET", "HEAD"])
def click(request, token: str):
    """Redirect to the link the signed token names; a GET by a person counts, a HEAD never does.

    A token that is not one we made answers 404: the redirect can only go to a URL that was in
    that recipient's message, never to an address put in the link by someone else.
    """
    target = services.click_target(token)
    if target is None:
        raise Http404("Unknown link.")
    recipient_id, link = target
    if request.method == "GET":
        services.click(
            recipient_id,
            link,
            machine=is_machine(
                request.META.get("HTTP_USER_AGENT", ""), request.META.get("REMOTE_ADDR")
            ),
        )
    return _private(HttpResponseRedirect(link.url))


@require_http_methods(["GET", "HEAD"])
def open_pixel(request, token: str):
    """The 1×1 image of an e-mail: an open, counted for the campaign (per person only with consent)."""
    target = services.open_target(token)
    if target is None:
        raise Http404("Unknown image.")
    if request.method == "GET":
        campaign_id, unit_id, recipient_id = target
        services.opened(
            campaign_id,
            unit_id,
            recipient_id,
            machine=is_machine(
                request.META.get("HTTP_USER_AGENT", ""),
                request.META.get("REMOTE_ADDR"),
                kind="open",
            ),
        )
    return _private(HttpResponse(PIXEL, content_type="image/gif"))


@csrf_exempt  # a signed token, not a session, authorises it; RFC 8058 posts carry no cookie
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    """GET shows a confirmation page and changes nothing (mail scanners fetch links); POST unsubscribes."""
    target = services.unsubscribe_target(token)
    if target is None:
        raise Http404("Unknown link.")
    done, stopped = False, None
    meta = {
        "ip_address": request.META.get("REMOTE_ADDR"),
        "user_agent": request.META.get("HTTP_USER_AGENT", ""),
    }
    if request.method == "POST" and request.POST.get("preferences"):
        # The preference centre: the boxes left ticked are kept, the others stopped.
        stopped = services.preferences_save(
            recipient_id=target.recipient_id,
            keep={c: bool(request.POST.get(f"keep_{c}")) for c, _ in target.channels},
            brand_wide=request.POST.get("scope") == "brand",
            open_tracking=None
            if target.open_tracking is None
            else bool(request.POST.get("open_tracking")),
            **meta,
        )
        target = services.unsubscribe_target(token)
    elif request.method == "POST":  # the button, or a mail client's RFC 8058 one-click POST
        services.unsubscribe(recipient_id=target.recipient_id, **meta)
        done = True
    response = render(
        request,
        "tracking/unsubscribe.html",
        {"target": target, "done": done or target.already, "token": token, "stopped": stopped},
    )
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@accepts_nul_bytes  # a raw e-mail; bounces.process reads what it needs from it
@csrf_exempt  # the secret key in the path authorises it; the MTA has no session
@require_POST
def inbound_bounce(request, key: str):
    """A bounce report posted raw by the MTA (``curl --data-binary @- <url>`` from a pipe)."""
    if not webhook_key_matches("bounces", key):
        raise Http404("Unknown link.")
    if len(request.body) > MAX_REPORT_BYTES:
        return HttpResponse("Too large.", status=413, content_type="text/plain")
    bounce = bounces.process(request.body, source="webhook", envelope_to=request.GET.get("to", ""))
    return HttpResponse(bounce.kind if bounce else "ignored", status=202, content_type="text/plain")


@csrf_exempt  # anymail checks the ESP's credentials (WEBHOOK_SECRET, signatures)
def esp_tracking(request, esp: str):
    """The configured ESP's tracking webhook (anymail's view), and only that one.

    It answers 404 unless that ESP sends the mail and ``ANYMAIL_WEBHOOK_SECRET`` is set:
    anymail would otherwise accept unauthenticated events.
    """
    if esp != configured_esp() or not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        raise Http404("No such webhook.")
    from anymail import urls as anymail_urls

    view = next(
        (
            p.callback
            for p in anymail_urls.urlpatterns
            if getattr(p, "name", "") == f"{esp}_tracking_webhook"
        ),
        None,
    )
    if view is None:
        raise Http404("No such webhook.")
    return view(request)


# Field names SMS providers use for a reply's sender, text and id.
_FROM = ("from", "msisdn", "From", "sender", "originator")
_TEXT = ("text", "Body", "body", "message", "content")
_REFERENCE = ("id", "message_id", "messageId", "MessageSid", "reference")


@csrf_exempt  # the secret key in the path authorises it; the provider has no session
@require_POST
def inbound_sms(request, key: str):
    """An SMS reply posted by the provider (form fields or JSON); a STOP is acted on and confirmed."""
    if not webhook_key_matches("sms", key):
        raise Http404("Unknown link.")
    if len(request.body) > 64 * 1024:
        return HttpResponse("Too large.", status=413, content_type="text/plain")
    data = request.POST
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return JsonResponse({"error": "The body is not JSON."}, status=400)
        if not isinstance(data, dict):
            return JsonResponse({"error": "The body must be a JSON object."}, status=400)
    sender = next((str(data[k]) for k in _FROM if data.get(k)), "")
    text = next((str(data[k]) for k in _TEXT if data.get(k)), "")
    if not sender:
        return JsonResponse({"error": "No sender number (from)."}, status=400)
    result = sms_inbound.inbound(
        sender=sender,
        text=text,
        reference=next((str(data[k]) for k in _REFERENCE if data.get(k)), ""),
    )
    if result is None:
        return JsonResponse({"stop": False})
    return JsonResponse({"stop": True, "scope": result.scope, "withdrawn": result.withdrawn})
