"""The send pipeline: claim a batch, check the gates, compose, hand off, mark. The DB is the truth.

A runner holds one of the campaign's slots (``slots``: released by the database or the
kernel the moment its process dies), and any number of runners, on any host, share a
campaign: each claims up to ``SEND_BATCH_SIZE`` pending rows (``FOR UPDATE SKIP LOCKED``
on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises claims) under a short lease that
its journal renews. Before every batch the campaign's content must still pass its gate
(``campaigns.content``). A batch is handed off in chunks:

1. in one transaction, the chunk's contacts are locked (``FOR SHARE``) and the row gates
   are evaluated on them (``checks``: the preview's own SQL, then the SMS window);
2. still in it, each message is composed (``compose``), marked in flight by the journal
   (durable before it is handed over), sent, and its outcome recorded by the journal as
   soon as the transport knows it (``journal``, ``ledger``).

Because the contacts stay locked during the hand-off, an unsubscribe (which updates the
contact) commits either before the check (the message is not sent) or after the message
left: never "committed, then sent anyway".
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import time
import uuid

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from enseigne.campaigns.content import campaign_stop_for_content, content_problems
from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.campaigns.selectors import policy_for, sms_window
from enseigne.campaigns.services import campaign_finish_if_done
from enseigne.contacts.models import Channel
from enseigne.delivery import checks, compose, ledger
from enseigne.delivery.channels import email_transport, sms_transport
from enseigne.delivery.journal import InlineJournal, ThreadJournal
from enseigne.delivery.ledger import Stats
from enseigne.delivery.slots import take_slot
from enseigne.lib.rowsecurity import ALL, db_scope

logger = logging.getLogger(__name__)
R = Recipient.Status
# Stop working on a claimed batch when less than this is left on the lease.
LEASE_MARGIN = dt.timedelta(seconds=20)

__all__ = ["Runner", "Stats", "run_campaign", "worker_name"]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:64]


class Runner:
    def __init__(
        self,
        campaign_id: int,
        *,
        worker: str | None = None,
        transport=None,
        clock=timezone.now,
        batch_size: int | None = None,
        chunk_size: int | None = None,
        lease_seconds: int | None = None,
    ):
        self.campaign_id = campaign_id
        self.worker = worker or worker_name()
        self.clock = clock
        self.batch_size = batch_size or settings.SEND_BATCH_SIZE
        self.chunk_size = chunk_size or settings.SEND_CHUNK_SIZE
        self.lease = dt.timedelta(seconds=lease_seconds or settings.SEND_LEASE_SECONDS)
        self._transport = transport
        self._held_since = time.monotonic()
        self.contents: dict[int, compose.UnitContent] = {}
        with transaction.atomic(), db_scope(ALL):
            self.campaign = Campaign.objects.select_related(
                "template__current", "owner", "local_version__version"
            ).get(pk=campaign_id)
            self.window = sms_window(policy_for(self.campaign.owner))
        self.is_email = self.campaign.channel == Channel.EMAIL

    @property
    def transport(self):
        if self._transport is None:
            self._transport = email_transport() if self.is_email else sms_transport()
        return self._transport

    @property
    def in_flight_window(self) -> int:
        """The most messages in flight at once: the transport's lanes times their depth. On
        SQLite, whose one writer cannot commit marks while a chunk is being handed off, it is
        the chunk: ``SEND_SQLITE_INFLIGHT`` (four messages a chunk sent 145 messages a second
        there, 32 sent 330)."""
        if connection.vendor == "sqlite" and not connection.in_atomic_block:
            return max(1, settings.SEND_SQLITE_INFLIGHT)
        return max(1, getattr(self.transport, "lanes", 1)) * max(1, settings.SEND_INFLIGHT_DEPTH)

    def _journal(self):
        common = {
            "campaign_id": self.campaign_id,
            "channel": self.campaign.channel,
            "worker": self.worker,
            "lease": self.lease,
            "clock": self.clock,
        }
        # Durable marks need a second connection, which SQLite's single writer cannot have
        # beside the hand-off's, and which could not see a caller's uncommitted rows.
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            return ThreadJournal(**common, window=self.in_flight_window, heartbeat=self._renew)
        return InlineJournal(**common)

    def _renew(self) -> None:
        ledger.renew(
            campaign_id=self.campaign_id, worker=self.worker, until=self.clock() + self.lease
        )

    # -- the loop ---------------------------------------------------------------------------

    def run(
        self, *, max_batches: int | None = None, exclusive: bool = False, on_working=None
    ) -> Stats:
        """Claim and hand off until nothing is due. ``exclusive``: only in one of the campaign's
        runner slots (the queue's runners), and then it also waits out the leases of a runner
        that died (seconds) rather than leave its rows to the next tick; without, as an extra
        (``enseigne send_campaign``). ``on_working()`` is called once, when there is work."""
        total = Stats()
        slot = take_slot(self.campaign_id) if exclusive else None
        if exclusive and slot is None:
            logger.info("campaign %s has all the runners it may have", self.campaign_id)
            return total
        journal = self._journal()
        try:
            while max_batches is None or total.batches < max_batches:
                if not self._content_passes():
                    break
                rows = self.claim()
                if not rows and exclusive and self._wait_for_leases():
                    continue
                if not rows:
                    break
                if on_working is not None:
                    on_working()
                    on_working = None
                total.add(self._process(rows, journal))
                total.batches += 1
                if not journal.durable:
                    with transaction.atomic(), db_scope(ALL):
                        self._renew()
        finally:
            journal.close()
            total.add(journal.stats)
            if slot is not None:
                slot.release()
        with transaction.atomic(), db_scope(ALL):
            campaign_finish_if_done(self.campaign_id)
        return total

    def _content_passes(self) -> bool:
        """The content gate, before every batch: what was approved may still be sent (HQ has
        not since forbidden a word in it, withdrawn the template…); if not, the campaign
        stops here, says why, and its creator and approver are told."""
        with transaction.atomic(), db_scope(ALL):
            if self._status() != Campaign.Status.SENDING:
                return True  # nothing will be claimed anyway
            problems = content_problems(self.campaign)
            if problems:
                campaign_stop_for_content(campaign=self.campaign, problems=problems)
                logger.warning("campaign %s stopped by the content gate", self.campaign_id)
                return False
        return True

    def _wait_for_leases(self) -> bool:
        """When rows are still pending but leased (another runner's, maybe a dead one's) or
        waiting to be retried within a lease's time, sleep until the first is due: True."""
        with transaction.atomic(), db_scope(ALL):
            due = ledger.next_due(campaign_id=self.campaign_id)
        if due is None:
            return False
        wait = (due - timezone.now()).total_seconds()
        if wait > self.lease.total_seconds() or self._status_now() != Campaign.Status.SENDING:
            return False
        time.sleep(max(0.05, min(wait, 1.0)))
        return True

    def _status_now(self) -> str:
        with transaction.atomic(), db_scope(ALL):
            return self._status()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _status(self) -> str:
        return (
            Campaign.objects.filter(pk=self.campaign_id).values_list("status", flat=True).first()
            or ""
        )

    def claim(self) -> list[dict]:
        """Lease up to a batch of due rows (id, contact, unit, in id order)."""
        with transaction.atomic(), db_scope(ALL):
            if self._status() != Campaign.Status.SENDING:
                return []
            return ledger.claim(
                campaign_id=self.campaign_id,
                worker=self.worker,
                now=self.clock(),
                lease=self.lease,
                size=self.batch_size,
            )

    def process(self, rows: list[dict]) -> Stats:
        """Hand off claimed rows (a batch) with a journal of their own."""
        journal = self._journal()
        try:
            stats = self._process(rows, journal)
        finally:
            journal.close()
        stats.add(journal.stats)
        return stats

    def _process(self, rows: list[dict], journal) -> Stats:
        stats = Stats(claimed=len(rows))
        started = self.clock()
        # Without durable marks between them, a chunk is as small as the in-flight window.
        size = self.chunk_size if journal.durable else min(self.chunk_size, self.in_flight_window)
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            late = self.clock() - started > self.lease - min(LEASE_MARGIN, self.lease / 4)
            if late or self._status() != Campaign.Status.SENDING:
                with transaction.atomic(), db_scope(ALL):
                    ledger.release(ids=[r["id"] for r in rows[start:]], worker=self.worker)
                break
            stats.add(self._hand_off(chunk, journal))
        return stats

    # -- one chunk ---------------------------------------------------------------------------

    def _hand_off(self, chunk: list[dict], journal) -> Stats:
        stats = Stats()
        if not journal.durable:
            # The chunk is marked in flight and committed before anything is sent.
            ids = [r["id"] for r in chunk]
            with transaction.atomic(), db_scope(ALL):
                kept = journal.in_flight(ids)
                if len(kept) != len(ids):
                    # Someone reclaimed part of it: leave all of it to the ledger's next claim.
                    ledger.end_flight(kept)
                    return stats
        now = self.clock()
        with transaction.atomic(), db_scope(ALL):
            contacts = checks.lock_contacts([r["contact_id"] for r in chunk if r["contact_id"]])
            verdicts = checks.verdicts(
                campaign=self.campaign,
                rows=chunk,
                contacts=contacts,
                now=now,
                window=self.window,
                time_zone_of=lambda unit_id: self._content(unit_id).time_zone,
            )
            ready: list[dict] = []
            stopped: dict[str, list[int]] = {}
            deferred: dict[dt.datetime, list[int]] = {}
            for row in chunk:
                verdict = verdicts[row["id"]]
                if verdict is None:
                    ready.append(row)
                elif isinstance(verdict, dt.datetime):
                    deferred.setdefault(verdict, []).append(row["id"])
                else:
                    stopped.setdefault(verdict, []).append(row["id"])
            for reason, pks in stopped.items():
                journal.end(pks, status=R.SKIPPED, reason=reason)
                stats.skipped += len(pks)
            for until, pks in deferred.items():
                journal.defer(pks, until)
                stats.deferred += len(pks)
            broken: dict[int, str] = {}
            if ready:
                personas = self._personas(ready)
                messages = self._messages(ready, contacts, personas, broken, journal)
                self.transport.send(messages, on_result=journal.outcome)
            for pk, why in broken.items():
                journal.end([pk], status=R.FAILED, reason=Reason.RENDER_ERROR, detail=why)
            stats.failed += len(broken)
            journal.flush()
        if connection.vendor == "sqlite":
            self._yield_write_lock()
        return stats

    def _personas(self, rows: list[dict]) -> dict[int, str]:
        """The chunk's recipients' personas, in one query, where head office wrote variants
        of a zone for personas in the content of one of their units (else none is read)."""
        if not any(self._content(unit).zones.varies for unit in {r["unit_id"] for r in rows}):
            return {}
        return compose.personas_of(self.campaign, [r["contact_id"] for r in rows])

    def _messages(
        self,
        rows: list[dict],
        contacts: dict[int, dict],
        personas: dict[int, str],
        broken: dict,
        journal,
    ):
        """Yield each row's message as it is composed, so the transport sends the first ones
        while the next are built. With a durable journal, messages go in groups of the
        transport's lanes, each group marked in flight (and committed) before it is handed
        over. A row whose message cannot be built (a template error on this contact's data)
        ends failed, with the error, instead of stopping the campaign."""
        # Half the window a group: one group is marked while the other is on the wire.
        group = max(1, self.in_flight_window // 2) if journal.durable else len(rows)
        pending: list = []
        for index, row in enumerate(rows):
            try:
                message = compose.message(
                    self.campaign,
                    self._content(row["unit_id"]),
                    row,
                    contacts[row["contact_id"]],
                    personas.get(row["contact_id"]),
                )
            except Exception as exc:  # noqa: BLE001 - one contact's data must not stop the others
                logger.exception(
                    "campaign %s: recipient %s could not be rendered", self.campaign_id, row["id"]
                )
                broken[row["id"]] = f"{type(exc).__name__}: {exc}"
            else:
                pending.append(message)
            if pending and (len(pending) >= group or index == len(rows) - 1):
                if journal.durable:
                    kept = journal.in_flight([m.recipient_id for m in pending])
                    pending = [m for m in pending if m.recipient_id in kept]
                yield from pending
                pending = []

    def _yield_write_lock(self) -> None:
        """SQLite has one write lock, held through each hand-off, and its busy handler retries
        only every ~100 ms: a worker taking the lock again at once starves an unsubscribe (or
        any other write) until the campaign ends. So after ``SEND_SQLITE_HOLD_MS`` of
        hand-offs it pauses longer than one retry: other writers wait at most about that long."""
        if not settings.SEND_SQLITE_YIELD_MS:
            return
        if (time.monotonic() - self._held_since) * 1000 >= settings.SEND_SQLITE_HOLD_MS:
            time.sleep(settings.SEND_SQLITE_YIELD_MS / 1000)
            self._held_since = time.monotonic()

    def _content(self, unit_id: int) -> compose.UnitContent:
        content = self.contents.get(unit_id)
        if content is None:
            content = self.contents[unit_id] = compose.prepare(self.campaign, unit_id)
        return content


def run_campaign(campaign_id: int, *, exclusive: bool = False, on_working=None, **options) -> Stats:
    runner = Runner(campaign_id, **options)
    try:
        return runner.run(exclusive=exclusive, on_working=on_working)
    finally:
        runner.close()
