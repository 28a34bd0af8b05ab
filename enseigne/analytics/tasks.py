"""Background work for analytics: the rollups follow the events log every five minutes."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from enseigne.analytics import rollups


@db_periodic_task(crontab(minute="*/5"))
def stats_tick() -> None:
    rollups.refresh()
