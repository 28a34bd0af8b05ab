"""Journeys in the background (thin: the work is in ``triggers`` and ``engine``). The
database says what is due; the queue only wakes workers."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import engine, triggers


@db_periodic_task(crontab(minute="*"))
def journeys_tick() -> None:
    """Every minute, on any number of workers: read the triggers (each run's under a row lock
    another worker skips), then move every due enrollment (batches claimed with SKIP LOCKED,
    so workers share the work without doubling it)."""
    triggers.run_triggers()
    engine.advance_all()
