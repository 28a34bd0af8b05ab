"""Sending controls (launch, pause, resume) and the embedded demo's Outbox."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from enseigne.brand.views import _sandboxed
from enseigne.campaigns import services as campaign_services
from enseigne.campaigns.selectors import get_campaign_for_user
from enseigne.delivery import selectors
from enseigne.delivery.tasks import send_campaign


def _control(request, public_id, action, *, wake: bool = True, done: str = ""):
    """Run a sending control; ``wake`` gives the campaign a runner once it is committed."""
    campaign = get_campaign_for_user(request.user, public_id)
    try:
        action(actor=request.user, campaign=campaign)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        if wake:
            transaction.on_commit(lambda: send_campaign(campaign.pk))
        if done:
            messages.success(request, done)
    return redirect("campaign_detail", public_id=campaign.public_id)


@login_required
@require_POST
def campaign_launch(request, public_id):
    """Send now (an approved or scheduled campaign, or one that woke too late and waits)."""
    return _control(request, public_id, campaign_services.campaign_launch)


@login_required
@require_POST
def campaign_pause(request, public_id):
    return _control(request, public_id, campaign_services.campaign_pause, wake=False,
                    done=_("Paused: nothing more leaves until you resume."))


@login_required
@require_POST
def campaign_resume(request, public_id):
    return _control(request, public_id, campaign_services.campaign_resume)


@login_required
@require_GET
def outbox(request):
    page = Paginator(selectors.outbox_for_user(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "delivery/outbox.html", {"page": page})


@login_required
@require_GET
def outbox_message(request, pk: int):
    message = selectors.get_outbox_message_for_user(request.user, pk)
    return render(request, "delivery/outbox_message.html", {"message": message,
                                                           "headers": selectors.raw_headers(message)})


@login_required
@require_GET
def outbox_message_body(request, pk: int):
    message = selectors.get_outbox_message_for_user(request.user, pk)
    html = selectors.html_body(message)
    if html is None:
        raise Http404("No HTML part.")
    return _sandboxed(html)
