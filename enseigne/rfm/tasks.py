"""RFM in the background (thin: the work is in ``full``, ``refresh`` and ``hooks``)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import full, hooks, scoring
from .snapshots import snapshot_month


@db_periodic_task(crontab(minute="41", hour="3"))
def rfm_nightly() -> None:
    """Recompute every store's and network's scores and cut points (after identity's
    nightly pass at 3:17 has linked the day's records), then this month's picture of the
    groups (the migration page) from them; a network whose run failed keeps its last scores
    in the picture."""
    try:
        full.full_run()
    finally:
        for root in scoring.networks():
            snapshot_month(root)


@db_task(retries=2, retry_delay=30)
def rfm_refresh_pending() -> None:
    """Update the scores of the buyers whose orders were written since the last refresh
    (woken by the writers' commits; idempotent)."""
    hooks.refresh_pending()


@db_periodic_task(crontab(minute="*"))
def rfm_refresh_pending_sweep() -> None:
    """The same every minute: buyers whose wake-up was lost (a worker killed mid-refresh,
    a queue that refused the task) wait at most a minute more."""
    hooks.refresh_pending()


@db_task()
def rfm_full_network(root: str) -> None:
    """One network's full run (HQ changed its grid or window)."""
    full.full_run(roots=[root])
