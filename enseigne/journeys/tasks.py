"""Journeys in the background (thin: the work is in ``triggers``, ``engine`` and ``report``). The
database says what is due; the queue only wakes workers."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import engine, report, triggers


@db_periodic_task(crontab(minute="*"))
def journeys_tick() -> None:
    """Every minute, on any number of workers: read the triggers (each run's under a row lock
    another worker skips), then move every due enrollment (batches claimed with SKIP LOCKED,
    so workers share the work without doubling it)."""
    triggers.run_triggers()
    engine.advance_all()


@db_periodic_task(crontab(minute="23", hour="2"))
def journeys_close_windows() -> None:
    """Each night: the purchases of the entries whose 30-day window is over, written once
    (and again for the last days' windows) so the report sums them instead of joining every
    entry to the orders."""
    report.close_windows()
