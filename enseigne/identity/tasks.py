from huey.contrib.djhuey import db_task

from enseigne.identity.linking import rekey_network


@db_task(retries=2, retry_delay=30)
def rekey_network_task(root: str) -> None:
    """Recompute a network's e-mail keys after HQ changed the Gmail rules (idempotent: a
    retry finds the keys already done unchanged)."""
    rekey_network(root)
