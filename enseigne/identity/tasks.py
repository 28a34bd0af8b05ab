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
def match_network(root_id: int) -> None:
    """The model's pass over one network (HQ asks for it; it takes minutes at a million)."""
    from enseigne.identity.batch import match_network as run
    from enseigne.network.models import OrgNode

    root = OrgNode.objects.filter(pk=root_id, depth=1).first()
    if root is not None:
        run(root)


@db_task(retries=2, retry_delay=30)
def rekey_network_task(root: str) -> None:
    """Recompute a network's e-mail keys after HQ changed the Gmail rules (idempotent: a
    retry finds the keys already done unchanged)."""
    linking.rekey_network(root)
