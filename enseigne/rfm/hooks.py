"""What RFM does when orders are written (``commerce.order_hooks``): after the writer's
transaction commits, the worker updates those buyers' scores (``refresh.refresh_buyers``).

The buyers are queued in the database (``PendingBuyer``), inside the writer's transaction:
a rolled-back transaction queues nobody, a committed one cannot lose its buyers. A writer
may call the hook many times in one transaction (the sales CSV import records its orders
one row at a time): each call adds rows, and the transaction wakes the worker once, at
commit, never once per order.

Refreshes are coalesced: the commits of a busy minute (a till's batch every few hundred
milliseconds, from every store) wake one task (``RefreshWake``: a task queued and not
started yet takes every later commit's buyers with it), which scores the union of the
pending buyers once. A refresh has a fixed cost (temporary tables, the network's lock),
so one for every batch cost more than the batches. The task deletes the rows it scores
in the transaction that writes their scores: a worker that dies half-way leaves them to
the next one, and the periodic task drains whatever a lost wake-up left behind.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from django.db import connection, transaction

from enseigne.contacts.models import Contact
from enseigne.contacts.records import HqRowsEraser

from . import refresh
from .models import PendingBuyer, RefreshWake

_WAKE_REGISTERED = "_rfm_wake_registered"
# Pending rows scored in one transaction: bounds the refresh's memory and lock time when an
# import queued hundreds of thousands of buyers.
DRAIN_CHUNK = 20_000


def orders_written(contact_ids: Sequence[int]) -> None:
    """Queue these buyers (call inside the writer's transaction); wake the worker at commit."""
    if not contact_ids:
        return
    pending, contacts = PendingBuyer._meta.db_table, Contact._meta.db_table
    with connection.cursor() as cursor:
        # The path comes from the contact (row-level security on the queue, as on scores);
        # one statement whatever the number of buyers.
        if connection.vendor == "postgresql":
            where, params = "id = ANY(%s)", [list(contact_ids)]
        else:
            where, params = "id IN (SELECT value FROM json_each(%s))", [json.dumps(contact_ids)]
        cursor.execute(
            f"INSERT INTO {pending} (contact_id, unit_path) "  # noqa: S608 (table names)
            f"SELECT id, unit_path FROM {contacts} WHERE {where}",
            params,
        )
    marker = getattr(connection, _WAKE_REGISTERED, None)
    # Already registered for this transaction's commit (a rolled-back transaction dropped
    # its callback: the marker then no longer names a waiting one).
    if marker is not None and any(entry[1] is marker for entry in connection.run_on_commit):
        return

    def wake() -> None:
        setattr(connection, _WAKE_REGISTERED, None)
        if _claim_wake():
            from .tasks import rfm_refresh_pending

            try:
                rfm_refresh_pending()
            except Exception:
                # The queue refused the task: lower the flag so the next commit tries
                # again (the minute's sweep drains meanwhile), and let ``robust`` log it.
                RefreshWake.objects.filter(pk=1).update(queued=False)
                raise

    setattr(connection, _WAKE_REGISTERED, wake)
    # Robust: the writer's orders are committed when this runs; a queue that is down must
    # not turn that into an error (an API client would resend a batch that was recorded).
    transaction.on_commit(wake, robust=True)


def _claim_wake() -> bool:
    """True when no refresh was queued and not started: the caller queues one.

    The flag is read first: while a refresh waits (every commit of a busy minute but the
    first), the wake is one read, no write. The upsert alone locked the row even when its
    WHERE left it alone, and a lock takes a transaction id: each till batch then paid a
    second commit (a WAL flush) of its own. A flag seen raised is safe to trust: the task
    lowers it before it claims the pending rows, and this writer's rows are committed."""
    table = RefreshWake._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT queued FROM {table} WHERE id = 1")  # noqa: S608 (a table name)
        row = cursor.fetchone()
        if row is not None and row[0]:
            return False
        cursor.execute(
            f"INSERT INTO {table} (id, queued) VALUES (1, %s) ON CONFLICT (id) DO UPDATE "  # noqa: S608
            f"SET queued = %s WHERE {table}.queued = %s",
            [True, True, False],
        )
        return cursor.rowcount == 1


def refresh_pending(*, chunk: int = DRAIN_CHUNK) -> int:
    """Score every pending buyer (the worker's task; idempotent); how many rows it drained.

    The wake flag is lowered before the first read: a writer committing from then on wakes
    another task, which finds its buyers if this one missed them."""
    RefreshWake.objects.filter(pk=1, queued=True).update(queued=False)
    drained = 0
    while True:
        with transaction.atomic():
            buyers = _claim(chunk)
            if not buyers:
                return drained
            refresh.refresh_buyers(buyers)
        drained += len(buyers)


def _claim(limit: int) -> list[int]:
    """Delete up to ``limit`` pending rows and return their buyers; the rows come back if the
    transaction rolls back. On PostgreSQL rows another refresh holds are skipped, not waited
    for; SQLite has one writer at a time."""
    table = PendingBuyer._meta.db_table
    lock = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN "  # noqa: S608 (a table name, a constant)
            f"(SELECT id FROM {table} ORDER BY id LIMIT %s{lock}) RETURNING contact_id",
            [limit],
        )
        return sorted({row[0] for row in cursor.fetchall()})


# A person's score for a record not linked yet is HQ's row (keyed by the record): a store's
# erasure of the record removes it as system work (settings ENSEIGNE_RECORD_HOOKS).
erased_person_scores = HqRowsEraser("rfm.PersonScore")
