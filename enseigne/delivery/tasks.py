"""Background work for sending. The DB says what is due; the queue only wakes workers."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from enseigne.campaigns.services import campaign_wake, campaigns_due
from enseigne.delivery.bounces import process_maildir
from enseigne.delivery.pipeline import campaigns_sending, run_campaign
from enseigne.lib.rowsecurity import ALL, db_scope


@db_task()
def send_campaign(campaign_id: int) -> None:
    """One runner per campaign (a lease in the DB, so a killed worker's expires); workers
    started by hand with ``enseigne send_campaign`` still share the rows through their leases."""
    run_campaign(campaign_id, exclusive=True)


@db_periodic_task(crontab(minute="*"))
def sending_tick() -> None:
    """Every minute: launch campaigns that are due, then give every sending campaign a runner."""
    now = timezone.now()
    with db_scope(ALL):
        for campaign in campaigns_due(now):
            campaign_wake(campaign=campaign, now=now)
    for campaign_id in campaigns_sending():
        send_campaign(campaign_id)


@db_periodic_task(crontab(minute="*"))
def bounces_tick() -> None:
    """Every minute: read the bounce Maildir, if one is configured (hard bounces and complaints
    must take effect before the next hand-off)."""
    if settings.BOUNCE_MAILDIR:
        process_maildir(settings.BOUNCE_MAILDIR)
