"""Journeys in the background (thin: the work is in ``engine``). The database says what is
due; the queue only wakes workers."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import engine


@db_periodic_task(crontab(minute="*"))
def journeys_tick() -> None:
    """Every minute, on any number of workers: move every due enrollment (each batch claims
    its rows with SKIP LOCKED, so workers share the work without doubling it)."""
    engine.advance_all()
