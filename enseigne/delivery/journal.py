"""When the ledger learns what happened to each message: the hand-off's journal.

A row is marked *in flight* before its message goes to the transport and gets its outcome
as soon as the transport knows it (the SMTP server's reply to the final dot). How soon
those marks are durable is the whole difference between "a crash loses a chunk" and "a
crash leaves in doubt only what was on the wire":

``ThreadJournal`` (PostgreSQL, a runner on its own connection): a thread with a connection
of its own commits the marks in small groups, a millisecond or so apart. A message is
handed over only once its in-flight mark is committed, and at most ``window`` messages
are in flight without a committed outcome, so after a kill at most ``window`` rows are
unknown: the SMTP connections times their depth. The hand-off's own transaction (which
holds the contacts' locks against unsubscribes, see ``pipeline``) commits at the end of
its chunk, but nothing about the messages waits for it.

``InlineJournal`` (SQLite's single writer, or a runner inside a caller's transaction as in
tests): the marks go through the runner's own connection; the pipeline then keeps chunks
as small as the window, each chunk's in-flight marks committed before it is sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from queue import Empty, SimpleQueue

from django.db import connection, transaction

from enseigne.delivery import ledger
from enseigne.delivery.channels.base import EmailOut, Outcome, Result, SmsOut
from enseigne.lib.rowsecurity import ALL, SETTING

logger = logging.getLogger(__name__)


class JournalError(RuntimeError):
    """The journal could not write: the runner stops, leaving its rows to the ledger."""


class _Journal:
    def __init__(self, *, campaign_id: int, channel: str, worker: str, lease: dt.timedelta, clock):
        self.campaign_id, self.channel, self.worker = campaign_id, channel, worker
        self.lease, self.clock = lease, clock
        self.stats = ledger.Stats()

    def _record(self, outcomes: list[tuple[EmailOut | SmsOut, Result]], now: dt.datetime) -> None:
        ledger.record_outcomes(
            campaign_id=self.campaign_id,
            channel=self.channel,
            worker=self.worker,
            outcomes=outcomes,
            now=now,
            stats=self.stats,
        )


class InlineJournal(_Journal):
    durable = False

    def __init__(self, **common):
        super().__init__(**common)
        self._outcomes: list[tuple[EmailOut | SmsOut, Result]] = []
        self._lock = threading.Lock()

    def in_flight(self, ids: Sequence[int]) -> set[int]:
        return ledger.put_in_flight(ids=ids, worker=self.worker, now=self.clock(), lease=self.lease)

    def end(self, ids: Sequence[int], *, status: str, reason: str, detail: str = "") -> None:
        ledger.end(ids, status=status, reason=reason, detail=detail)

    def defer(self, ids: Sequence[int], until: dt.datetime) -> None:
        ledger.defer(ids, until)

    def outcome(self, message: EmailOut | SmsOut, result: Result) -> None:
        with self._lock:
            self._outcomes.append((message, result))

    def flush(self) -> None:
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        if outcomes:
            self._record(outcomes, self.clock())

    def close(self) -> None:
        self.flush()


class ThreadJournal(_Journal):
    durable = True

    def __init__(self, *, window: int, heartbeat: Callable[[], None] | None = None, **common):
        super().__init__(**common)
        self.window = window
        self.error: BaseException | None = None
        self._slots = threading.Semaphore(window)
        self._queue: SimpleQueue = SimpleQueue()
        self._heartbeat = heartbeat
        self._scoped: object = None
        self._thread = threading.Thread(target=self._run, name="send-journal", daemon=True)
        self._thread.start()

    # -- called by the runner and the transport's threads -------------------------------------

    def in_flight(self, ids: Sequence[int]) -> set[int]:
        """Mark ``ids`` in flight and wait until that is committed; the rows still ours."""
        for _ in ids:
            self._slots.acquire()
        box: dict = {}
        self._call(("fly", list(ids), box))
        kept = box.get("kept", set())
        for _ in range(len(ids) - len(kept)):
            self._slots.release()
        return kept

    def outcome(self, message: EmailOut | SmsOut, result: Result) -> None:
        self._queue.put(("out", message, result))

    def end(self, ids: Sequence[int], *, status: str, reason: str, detail: str = "") -> None:
        """Rows that a gate or a render error stops (written by the journal's connection: the
        hand-off's transaction writes no ledger row, so the two never wait on each other)."""
        self._queue.put(("end", list(ids), status, reason, detail))

    def defer(self, ids: Sequence[int], until: dt.datetime) -> None:
        self._queue.put(("defer", list(ids), until))

    def flush(self) -> None:
        """Return once every outcome given so far is committed."""
        self._call(("flush",))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    def _call(self, item: tuple) -> None:
        if self.error is not None:
            raise JournalError(str(self.error)) from self.error
        done = threading.Event()
        self._queue.put((*item, done))
        done.wait()
        if self.error is not None:
            raise JournalError(str(self.error)) from self.error

    # -- the journal's thread ----------------------------------------------------------------

    def _run(self) -> None:
        beat = max(1.0, self.lease.total_seconds() / 3)
        last_beat = time.monotonic()
        try:
            while True:
                try:
                    items = [self._queue.get(timeout=beat)]
                except Empty:
                    items = []
                while True:
                    try:
                        items.append(self._queue.get_nowait())
                    except Empty:
                        break
                if time.monotonic() - last_beat >= beat:
                    self._beat()
                    last_beat = time.monotonic()
                stop = any(item is None for item in items)
                self._write([item for item in items if item is not None])
                if stop:
                    return
        finally:
            connection.close()

    def _beat(self) -> None:
        if self._heartbeat is None or self.error is not None:
            return
        try:
            self._ensure_scope()
            with transaction.atomic():
                self._heartbeat()
        except Exception as exc:  # noqa: BLE001 - a missed beat only shortens the lease
            logger.warning("campaign %s: lease renewal failed: %s", self.campaign_id, exc)

    def _write(self, items: list[tuple]) -> None:
        flights = [item for item in items if item[0] == "fly"]
        outcomes = [(item[1], item[2]) for item in items if item[0] == "out"]
        stops = [item for item in items if item[0] in ("end", "defer")]
        if self.error is None and (flights or outcomes or stops):
            try:
                self._commit(flights, outcomes, stops)
            except Exception as exc:  # noqa: BLE001 - reported to the runner, which stops
                logger.exception("campaign %s: the send journal failed", self.campaign_id)
                self.error = exc
        for _ in outcomes:
            self._slots.release()
        for item in items:
            if item[0] in ("fly", "flush"):
                item[-1].set()

    def _ensure_scope(self) -> None:
        """This connection only ever does the system's work on the ledger: its scope is set
        once per session (again after a reconnection), not in every transaction."""
        connection.ensure_connection()
        if self._scoped is not connection.connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, %s, false)", [SETTING, ALL])
            self._scoped = connection.connection

    def _commit(self, flights: list, outcomes: list, stops: list) -> None:
        """One transaction: the rows stopped by a gate, then the in-flight marks and the sent
        rows in one statement, then any other outcome (rare: retries, refusals, doubt)."""
        self._ensure_scope()
        now = self.clock()
        sent = [m.recipient_id for m, result in outcomes if result.outcome is Outcome.SENT]
        others = [(m, result) for m, result in outcomes if result.outcome is not Outcome.SENT]
        with transaction.atomic():
            for kind, ids, *rest in stops:
                if kind == "end":
                    ledger.end(ids, status=rest[0], reason=rest[1], detail=rest[2])
                else:
                    ledger.defer(ids, rest[0])
            kept = ledger.journal_write(
                worker=self.worker,
                now=now,
                lease=self.lease,
                in_flight=[pk for _kind, ids, _box, _done in flights for pk in ids],
                sent=sent,
            )
            for _kind, ids, box, _done in flights:
                box["kept"] = kept.intersection(ids)
            self.stats.sent += len(sent)
            if others:
                self._record(others, now)
