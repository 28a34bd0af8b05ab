"""Background work for sending. The DB says what is due; the queue only wakes workers."""

from __future__ import annotations

import threading

from django.conf import settings
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, on_startup

from enseigne.delivery import services
from enseigne.delivery.bounces import process_maildir
from enseigne.delivery.pipeline import run_campaign
from enseigne.delivery.slots import runs_here


def _one_more_runner(campaign_id: int) -> None:
    """A runner that found work asks for another, so every idle worker (on any host) joins
    the campaign, up to its slots; a task that finds no free slot or no work just ends."""
    if not HUEY.immediate:
        send_campaign(campaign_id)


# How many times a runner's task that landed on a worker already running its campaign is
# handed on to the queue, for another worker to take.
HOPS = 3


@db_task()
def send_campaign(campaign_id: int, hops: int = 0) -> None:
    """Run the campaign in one of its runner slots (a dead worker's slot is free at once),
    one runner per worker process; a task that lands on a process already running the
    campaign goes back to the queue a second later, for another worker."""
    if runs_here(campaign_id):
        if hops < HOPS and not HUEY.immediate:
            send_campaign.schedule((campaign_id, hops + 1), delay=1)
        return
    run_campaign(campaign_id, exclusive=True, on_working=lambda: _one_more_runner(campaign_id))


@db_task()
def prepare_campaign(campaign_id: int) -> None:
    """Freeze a launched campaign's audience, then wake its runners (by id; idempotent)."""
    services.sending_prepare(campaign_id)


@db_periodic_task(crontab(minute="*"))
def sending_tick() -> None:
    """Every minute (and when a worker starts): launch campaigns that are due, then give every
    sending campaign a runner."""
    services.sending_tick()


_started = threading.Lock()


@on_startup()
def look_for_work() -> None:
    """A worker that starts (or restarts after a crash) looks for work at once rather than at
    the next minute: campaigns a dead worker left sending resume in seconds. Once per
    process (each of its threads runs this hook)."""
    if _started.acquire(blocking=False):
        sending_tick()


@db_periodic_task(crontab(minute="*"))
def bounces_tick() -> None:
    """Every minute: read the bounce Maildir, if one is configured (hard bounces and complaints
    must take effect before the next hand-off)."""
    if settings.BOUNCE_MAILDIR:
        process_maildir(settings.BOUNCE_MAILDIR)
