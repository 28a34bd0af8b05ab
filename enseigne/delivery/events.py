"""Writing the events log: in batches, so the public endpoints hold their load.

One INSERT per click caps near 4,500 events/s on this machine; a batch written with
COPY costs a few microseconds per row. The click and open endpoints therefore only
append to a per-process buffer; a background thread writes it every
``EVENTS_FLUSH_MS`` (or as soon as ``EVENTS_BATCH`` rows wait). What a crashed web
process had not written yet (at most one interval) is lost from the statistics — never
the redirect itself. The process writes what is left when it exits normally.

With ``EVENTS_FLUSH_MS = 0`` (tests, the embedded demo's single process if wished) each
event is written before the response, in the request's own transaction.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import multiprocessing.util
import os
import threading
from collections.abc import Sequence
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections, connection, models
from django.db.models import Value

from enseigne.campaigns.models import Recipient
from enseigne.delivery.models import Event
from enseigne.lib.bulk import bulk_insert
from enseigne.lib.rowsecurity import ALL, db_scope

logger = logging.getLogger(__name__)
FIELDS = (
    "occurred_at",
    "kind",
    "channel",
    "campaign_id",
    "unit_id",
    "unit_path",
    "recipient_id",
    "link_id",
    "machine",
    "amount",
)
MAX_WAITING = 500_000
SMALL = 50
Row = tuple[
    dt.datetime, int, str, int | None, int | None, str, int | None, int | None, bool, Decimal | None
]


def row(
    *,
    occurred_at: dt.datetime,
    kind: int,
    unit_path: str,
    channel: str = "",
    campaign_id: int | None = None,
    unit_id: int | None = None,
    recipient_id: int | None = None,
    link_id: int | None = None,
    machine: bool = False,
    amount: Decimal | None = None,
) -> Row:
    return (
        occurred_at,
        kind,
        channel,
        campaign_id,
        unit_id,
        unit_path,
        recipient_id,
        link_id,
        machine,
        amount,
    )


def write(rows: Sequence[Row]) -> int:
    """Insert ``rows`` now (one COPY on PostgreSQL), acting for the whole network."""
    if not rows:
        return 0
    with db_scope(ALL):
        if len(rows) < SMALL:  # a plain INSERT beats COPY's staging table for a few rows
            Event.objects.bulk_create([Event(**dict(zip(FIELDS, r, strict=True))) for r in rows])
        else:
            bulk_insert(Event, FIELDS, rows)
    return len(rows)


class Buffer:
    """Events waiting to be written by this process's writer thread."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._rows: list[Row] = []
        self._writing = 0  # rows taken by a flush and not committed yet
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def add(self, event: Row) -> None:
        if settings.EVENTS_FLUSH_MS <= 0:
            write([event])
            return
        if self._pid != os.getpid():  # a forked web worker starts with its own, empty buffer
            self._reset()
        with self._lock:
            if (
                len(self._rows) >= MAX_WAITING
            ):  # the database has been away for long: keep memory bounded
                del self._rows[: MAX_WAITING // 10]
                logger.error("Event buffer full: dropped the oldest %s events.", MAX_WAITING // 10)
            self._rows.append(event)
            waiting = len(self._rows)
            if self._thread is None or not self._thread.is_alive():
                _flush_at_exit()
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="enseigne-events", daemon=True
                )
                self._thread.start()
        if waiting >= settings.EVENTS_BATCH:
            self._wake.set()

    def pending(self) -> int:
        """Events not in the database yet (waiting, or being written)."""
        with self._lock:
            return len(self._rows) + self._writing

    def flush(self) -> int:
        """Write what waits; on a database error the rows stay for the next pass."""
        with self._lock:
            rows, self._rows = self._rows, []
            self._writing = len(rows)
        if not rows:
            return 0
        try:
            return write(rows)
        except Exception:
            with self._lock:
                self._rows[:0] = rows
            raise
        finally:
            with self._lock:
                self._writing = 0

    def stop(self, timeout: float = 5.0) -> None:
        """Write what waits and end the writer thread (its database connection closes with it)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._stopping = True
        self._wake.set()
        thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._wake.wait(settings.EVENTS_FLUSH_MS / 1000)
                self._wake.clear()
                try:
                    self.flush()
                except Exception:  # the database is away: keep the rows, try again next interval
                    logger.exception("Could not write %s events; retrying.", self.pending())
                    close_old_connections()
                    if connection.connection is not None and not connection.is_usable():
                        connection.close()
        finally:
            connection.close()


buffer = Buffer()


def record(event: Row) -> None:
    buffer.add(event)


def of_recipient(recipient: Recipient, kind: int, occurred_at: dt.datetime) -> Row:
    """An event about one ledger row (an unsubscribe, a bounce): its campaign, unit and channel."""
    return row(
        occurred_at=occurred_at,
        kind=kind,
        channel=recipient.channel,
        campaign_id=recipient.campaign_id,
        unit_id=recipient.unit_id,
        unit_path=recipient.unit_path,
        recipient_id=recipient.pk,
    )


def record_sent(recipient_ids: Sequence[int], when: dt.datetime) -> None:
    """A ``sent`` event per ledger row, copied by the database in the hand-off's own transaction."""
    source = Recipient.objects.filter(pk__any=list(recipient_ids)).values_list(
        Value(when, output_field=models.DateTimeField()),
        Value(Event.Kind.SENT, output_field=models.IntegerField()),
        "channel",
        "campaign_id",
        "unit_id",
        "unit_path",
        "id",
        Value(False, output_field=models.BooleanField()),
    )
    select, params = source.query.sql_with_params()
    columns = ", ".join(
        connection.ops.quote_name(name)
        for name in (
            "occurred_at",
            "kind",
            "channel",
            "campaign_id",
            "unit_id",
            "unit_path",
            "recipient_id",
            "machine",
        )
    )
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {Event._meta.db_table} ({columns}) {select}", params)  # noqa: S608


def _write_rest() -> None:
    if buffer._pid == os.getpid():
        buffer.stop()
    if buffer.pending():
        logger.error("Lost %s events at exit: the database could not be reached.", buffer.pending())


_exit_hooks: set[int] = set()


def _flush_at_exit() -> None:
    """Write what waits when this process ends, however it ends normally.

    A plain interpreter exit runs ``atexit``; a ``multiprocessing`` worker (granian's) leaves
    through ``os._exit`` and runs only its own finalizers, so both are registered, in the
    process that writes (a fork does not inherit the child-side registry).
    """
    pid = os.getpid()
    if pid in _exit_hooks:
        return
    _exit_hooks.add(pid)
    atexit.register(_write_rest)
    multiprocessing.util.Finalize(None, _write_rest, exitpriority=100)
