"""Sending controls (launch, pause, resume) and the embedded demo's Outbox."""

from __future__ import annotations

import re

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from enseigne.brand.views import sandboxed
from enseigne.campaigns import selectors as campaign_selectors
from enseigne.campaigns.views import campaign_action, confirmed, send_confirmation
from enseigne.delivery import selectors, services

_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


@login_required
@require_POST
def campaign_launch(request, public_id):
    """Send now (an approved or scheduled campaign, or one that woke too late and waits). The
    button's post shows what will leave; only the post from that page, confirmed, launches:
    it answers at once, and the campaign page follows the worker's preparation, then sending."""
    if not confirmed(request):
        campaign = campaign_selectors.get_campaign_for_user(request.user, public_id)
        return send_confirmation(request, campaign)
    return campaign_action(
        request,
        public_id,
        services.sending_launch,
        done=_("Launched: the audience is being prepared, then sending starts by itself."),
    )


@login_required
@require_POST
def campaign_pause(request, public_id):
    return campaign_action(
        request,
        public_id,
        services.sending_pause,
        done=_("Paused: nothing more leaves until you resume."),
    )


@login_required
@require_POST
def campaign_resume(request, public_id):
    return campaign_action(request, public_id, services.sending_resume)


@login_required
@require_GET
def outbox(request):
    page = Paginator(selectors.outbox_for_user(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "delivery/outbox.html", {"page": page})


@login_required
@require_GET
def outbox_message(request, pk: int):
    message = selectors.get_outbox_message_for_user(request.user, pk)
    return render(
        request,
        "delivery/outbox_message.html",
        {"message": message, "headers": selectors.raw_headers(message)},
    )


@login_required
@require_GET
def outbox_message_body(request, pk: int):
    message = selectors.get_outbox_message_for_user(request.user, pk)
    html = selectors.html_body(message)
    if html is None:
        raise Http404("No HTML part.")
    # As a mail client would: a link opens in a new tab (through the click redirect, if tracked).
    base = '<base target="_blank">'
    html, found = _HEAD.subn(lambda m: m.group(0) + base, html, count=1)
    return sandboxed(html if found else base + html, links_open_tabs=True)
