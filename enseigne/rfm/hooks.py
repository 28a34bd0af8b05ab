"""What RFM does when orders are written (``commerce.order_hooks``): after the writer's
transaction commits, the worker updates those buyers' scores (``scoring.refresh_buyers``).

A writer may call the hook many times in one transaction (the sales CSV import records its
orders one row at a time): the buyers are gathered per transaction and queued as one task
when it commits, never one task per order."""

from __future__ import annotations

from django.db import connection, transaction

_PENDING = "_rfm_pending_buyers"


def orders_written(contact_ids: list[int]) -> None:
    waiting = getattr(connection, _PENDING, None)
    # Still waiting for this transaction's commit (a rolled-back one dropped its callback,
    # and its buyers with it: they were never written).
    if waiting is not None and any(entry[1] is waiting[1] for entry in connection.run_on_commit):
        waiting[0].update(contact_ids)
        return
    buyers: set[int] = set(contact_ids)

    def flush() -> None:
        from .tasks import rfm_refresh_buyers

        setattr(connection, _PENDING, None)
        if buyers:
            rfm_refresh_buyers(sorted(buyers))

    setattr(connection, _PENDING, (buyers, flush))
    transaction.on_commit(flush)
