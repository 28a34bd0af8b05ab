"""Starting and stopping a campaign's sending: each entry point (page, API, scheduler) makes
one call here, which changes the campaign and, once that is committed, wakes a runner."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from enseigne.campaigns import services as campaigns
from enseigne.campaigns.models import Campaign
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import User


def wake(campaign_id: int) -> None:
    """Start a runner for the campaign once the current transaction commits."""
    # Imported here: the tasks module imports this one for the scheduler's tick.
    from enseigne.delivery.tasks import send_campaign

    transaction.on_commit(lambda: send_campaign(campaign_id))


@transaction.atomic
def sending_launch(
    *, actor: User | None, campaign: Campaign, now: dt.datetime | None = None
) -> int:
    """Freeze the audience and start sending now; returns the ledger's size."""
    total = campaigns.campaign_launch(actor=actor, campaign=campaign, now=now)
    wake(campaign.pk)
    return total


@transaction.atomic
def sending_pause(*, actor: User, campaign: Campaign) -> Campaign:
    return campaigns.campaign_pause(actor=actor, campaign=campaign)


@transaction.atomic
def sending_resume(*, actor: User, campaign: Campaign) -> Campaign:
    campaigns.campaign_resume(actor=actor, campaign=campaign)
    wake(campaign.pk)
    return campaign


def sending_tick(now: dt.datetime | None = None) -> list[int]:
    """The scheduler's pass: launch the campaigns that are due, then give every sending
    campaign a runner. Returns the sending campaigns' ids."""
    now = now or timezone.now()
    with transaction.atomic(), db_scope(ALL):
        for campaign in campaigns.campaigns_due(now):
            if campaigns.campaign_wake(campaign=campaign, now=now):
                wake(campaign.pk)
        sending = list(
            Campaign.objects.filter(status=Campaign.Status.SENDING).values_list("pk", flat=True)
        )
        for campaign_id in sending:
            wake(campaign_id)
    return sending
