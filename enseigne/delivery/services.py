"""Starting and stopping a campaign's sending: each entry point (page, API, scheduler) makes
one call here, which changes the campaign and, once that is committed, asks the worker to
prepare it (freeze its audience: ``campaigns.preparation``) or wakes a runner."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from enseigne.campaigns import preparation
from enseigne.campaigns import services as campaigns
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.delivery.slots import take_slot
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import User


def wake(campaign_id: int) -> None:
    """Start a runner for the campaign once the current transaction commits."""
    # Imported here: the tasks module imports this one for the scheduler's tick.
    from enseigne.delivery.tasks import send_campaign

    transaction.on_commit(lambda: send_campaign(campaign_id))


def prepare(campaign_id: int) -> None:
    """Queue the campaign's preparation (its freeze) once the current transaction commits."""
    from enseigne.delivery.tasks import prepare_campaign

    transaction.on_commit(lambda: prepare_campaign(campaign_id))


def _go(campaign: Campaign) -> None:
    """Once committed, the worker's next step: prepare a campaign, or send one."""
    if campaign.status == Campaign.Status.PREPARING:
        prepare(campaign.pk)
    else:
        wake(campaign.pk)


@transaction.atomic
def sending_launch(
    *, actor: User | None, campaign: Campaign, now: dt.datetime | None = None
) -> Campaign:
    """Send now: answers at once (the campaign is preparing); the worker freezes the
    audience, then its runners send."""
    campaigns.campaign_launch_start(actor=actor, campaign=campaign, now=now)
    _go(campaign)
    return campaign


def sending_prepare(campaign_id: int) -> str:
    """The worker's preparation: freeze the audience (``campaigns.preparation``), then wake
    the runners once that is committed. The campaign's first runner slot (released by the
    database or the kernel the moment its holder dies) keeps a second worker from counting
    the same audience meanwhile; correctness never depends on it (see preparation.py).
    Returns the campaign's status, or '' when another worker is preparing it."""
    slot = take_slot(campaign_id, 1)
    if slot is None:
        return ""
    try:
        status = preparation.campaign_prepare(campaign_id)
    finally:
        # Before the runners are woken: a runner refuses to start where its campaign's
        # slot is held by its own process.
        slot.release()
    if status == Campaign.Status.SENDING:
        wake(campaign_id)
    return status


@transaction.atomic
def sending_pause(*, actor: User, campaign: Campaign) -> Campaign:
    return campaigns.campaign_pause(actor=actor, campaign=campaign)


@transaction.atomic
def sending_resume(*, actor: User, campaign: Campaign) -> Campaign:
    campaigns.campaign_resume(actor=actor, campaign=campaign)
    _go(campaign)
    return campaign


def sending_tick(now: dt.datetime | None = None) -> list[int]:
    """The scheduler's pass: launch the campaigns that are due, prepare every campaign left
    preparing (a worker that died while freezing), then give every sending campaign a
    runner. Returns the sending campaigns' ids."""
    now = now or timezone.now()
    with transaction.atomic(), db_scope(ALL):
        for campaign in campaigns.campaigns_due(now):
            campaigns.campaign_wake(campaign=campaign, now=now)
        # Those just launched, and those a dead worker left preparing.
        for campaign_id in preparation.campaigns_preparing():
            prepare(campaign_id)
        # A journey's step campaign sends while its journey runs, mostly with nothing to
        # send: only those with a pending row need a runner (the engine wakes one when it
        # queues; this catches a lost wake-up).
        pending = Recipient.objects.filter(campaign=OuterRef("pk"), status=Recipient.Status.PENDING)
        sending = list(
            Campaign.objects.filter(status=Campaign.Status.SENDING)
            .filter(~Q(kind=Campaign.Kind.JOURNEY) | Exists(pending))
            .values_list("pk", flat=True)
        )
        for campaign_id in sending:
            wake(campaign_id)
    return sending
