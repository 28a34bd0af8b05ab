"""Personas in the background (thin: the work is in ``assignment``)."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import assignment

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="11", hour="4"))
def personas_nightly() -> None:
    """After the nightly RFM run (3:41, which also takes the month's picture of the groups):
    every network's personas (their rules may use the groups) and their counts."""
    for root in assignment.networks_with_personas():
        assignment.assign_network(root)


@db_task(retries=1, retry_delay=30)
def personas_assign(root: str) -> None:
    """One network's assignment, on demand (idempotent)."""
    assignment.assign_network(root)
