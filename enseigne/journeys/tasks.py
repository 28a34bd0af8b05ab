"""Journeys in the background (thin: the work is in ``triggers``, ``engine`` and ``report``). The
database says what is due; the queue only wakes workers."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from . import engine, report, triggers

# Seconds between quick passes within the minute: a consent or a purchase takes its first
# step about this long after it is recorded (docs/benchmarks.md, "Journeys").
QUICK_EVERY = 10


@db_periodic_task(crontab(minute="*"))
def journeys_tick() -> None:
    """Every minute, on any number of workers: read the triggers (each run's under a row lock
    another worker skips), then move every due enrollment (batches claimed with SKIP LOCKED,
    so workers share the work without doubling it); then schedule the minute's quick passes,
    each a short task any worker takes (none holds a worker for the minute, and a lost one
    only waits for the next tick)."""
    triggers.run_triggers()
    engine.advance_all()
    if not HUEY.immediate:
        for delay in range(QUICK_EVERY, 60, QUICK_EVERY):
            journeys_quick.schedule(delay=delay)


@db_task()
def journeys_quick() -> None:
    """Between two ticks: the triggers a person waits on (a consent, a purchase, a click),
    then their first steps."""
    triggers.run_triggers(quick=True)
    engine.advance_all()


@db_periodic_task(crontab(minute="23", hour="2"))
def journeys_close_windows() -> None:
    """Each night: the purchases of the entries whose 30-day window is over, written once
    (and again for the last days' windows) so the report sums them instead of joining every
    entry to the orders."""
    report.close_windows()
