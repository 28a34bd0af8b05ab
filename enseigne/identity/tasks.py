"""Background upkeep of the person links (thin: the work is in identity.linking)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from enseigne.identity import linking


@db_periodic_task(crontab(minute="17", hour="3"))
def identity_nightly() -> None:
    """Link any record written outside the writers, then drop persons left without records
    (their last record erased): a person holds no personal data, but counts of people and
    the API must not show empty ones."""
    linking.link_unlinked()
    linking.prune_empty_persons()


@db_task()
def run_model(run_id: int) -> None:
    """A pass of the model HQ or the schedule asked for (minutes at a million records).
    No retry: a failed run says why on the settings page and HQ runs it again."""
    from enseigne.identity.batch import execute_run

    execute_run(run_id)


@db_periodic_task(crontab(minute="7"))
def identity_scheduled_runs() -> None:
    """Each hour, queue the runs the networks' schedules ask for (services.policies_due)."""
    from enseigne.identity.services import scheduled_runs_start

    scheduled_runs_start()


@db_task(retries=2, retry_delay=30)
def rekey_network_task(root: str) -> None:
    """Recompute a network's e-mail keys after HQ changed the Gmail rules (idempotent: a
    retry finds the keys already done unchanged)."""
    linking.rekey_network(root)
