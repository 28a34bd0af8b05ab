"""The send ledger's rows as a worker sees them: claim, lease, mark, give back.

A row is ``pending`` until an outcome is written. Between the claim and the outcome it is
leased to one worker (``lease_owner``/``lease_until``); just before its message is handed
over it is marked *in flight* (``attempted_at``), and the outcome clears the mark. After a
crash, a row whose lease ran out is claimable again: never marked, it is simply sent; marked
and without outcome, it is *ambiguous* (the message may have left) and the policy decides.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Min, Q

from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Suppression
from enseigne.contacts.services import suppress_brand_wide
from enseigne.delivery.channels.base import EmailOut, Outcome, Result, SmsOut
from enseigne.delivery.events import record_sent
from enseigne.delivery.models import Event

logger = logging.getLogger(__name__)
R = Recipient.Status
# Every way out of "pending" gives the lease back and clears the in-flight mark.
_RELEASED = {"attempted_at": None, "lease_owner": "", "lease_until": None}


@dataclass
class Stats:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    retried: int = 0
    deferred: int = 0
    ambiguous: int = 0
    batches: int = 0

    def add(self, other: Stats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def claim(*, campaign_id: int, worker: str, now: dt.datetime, lease: dt.timedelta, size: int):
    """Lease up to ``size`` due rows (id, contact, unit, in id order). Call inside a
    transaction. A row found marked in flight whose lease ran out is ambiguous."""
    rows = list(
        Recipient.objects.select_for_update(skip_locked=True)
        .filter(campaign_id=campaign_id, status=R.PENDING)
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .order_by("id")
        .values("id", "contact_id", "unit_id", "attempted_at")[:size]
    )
    if not rows:
        return []
    unknown = [r["id"] for r in rows if r["attempted_at"] is not None]
    if unknown:
        ambiguous(campaign_id, unknown, now, "the worker stopped while handing it off")
    rows = [r for r in rows if r["attempted_at"] is None or settings.AMBIGUOUS_POLICY == "retry"]
    Recipient.objects.filter(pk__any=[r["id"] for r in rows]).update(
        lease_owner=worker, lease_until=now + lease
    )
    return rows


def next_due(*, campaign_id: int) -> dt.datetime | None:
    """When the first pending row of the campaign becomes claimable (its lease's end or its
    retry time), None when nothing is pending."""
    rows = Recipient.objects.filter(campaign_id=campaign_id, status=R.PENDING)
    first = None
    for until in (
        rows.filter(lease_until__isnull=False).aggregate(at=Min("lease_until"))["at"],
        rows.filter(lease_until__isnull=True).aggregate(at=Min("not_before"))["at"],
    ):
        if until is not None and (first is None or until < first):
            first = until
    if first is None and rows.filter(lease_until__isnull=True, not_before__isnull=True).exists():
        return dt.datetime.now(dt.UTC)
    return first


def renew(*, campaign_id: int, worker: str, until: dt.datetime) -> int:
    """Push back the lease of every row this worker holds (its heartbeat).

    On PostgreSQL the heartbeat runs on its own connection beside the hand-off, which writes
    the same rows: a row another statement holds is skipped, not waited for (waiting, and
    locking rows in its own order, could deadlock with that writer, which sets the row's
    lease itself; the next beat, a third of a lease later, renews it)."""
    rows = Recipient.objects.filter(campaign_id=campaign_id, status=R.PENDING, lease_owner=worker)
    if connection.vendor != "postgresql":
        return rows.update(lease_until=until)
    with transaction.atomic():
        free = list(rows.select_for_update(skip_locked=True).values_list("pk", flat=True))
        return Recipient.objects.filter(pk__any=free).update(lease_until=until)


def release(*, ids: Sequence[int], worker: str) -> None:
    """Give back rows this worker claimed and never put in flight."""
    Recipient.objects.filter(
        pk__any=list(ids), lease_owner=worker, attempted_at__isnull=True
    ).update(lease_owner="", lease_until=None)


def put_in_flight(
    *, ids: Sequence[int], worker: str, now: dt.datetime, lease: dt.timedelta
) -> set[int]:
    """Mark rows in flight (just before their hand-off); returns those still leased to this
    worker, the only ones that may be sent."""
    ids = list(ids)
    if not ids:
        return set()
    if connection.vendor == "postgresql":
        table = Recipient._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET attempted_at = %s, lease_until = %s "  # noqa: S608
                "WHERE id = ANY(%s) AND lease_owner = %s AND lease_until > %s RETURNING id",
                [now, now + lease, ids, worker, now],
            )
            return {row[0] for row in cursor.fetchall()}
    mine = Recipient.objects.filter(pk__any=ids, lease_owner=worker, lease_until__gt=now)
    kept = set(mine.values_list("id", flat=True))
    Recipient.objects.filter(pk__any=list(kept)).update(attempted_at=now, lease_until=now + lease)
    return kept


def end_flight(ids) -> None:
    """Take back in-flight marks of rows that will not be sent after all (nothing left)."""
    Recipient.objects.filter(pk__any=list(ids)).update(**_RELEASED)


def journal_write(
    *,
    worker: str,
    now: dt.datetime,
    lease: dt.timedelta,
    in_flight: Sequence[int],
    sent: Sequence[int],
) -> set[int]:
    """PostgreSQL, the journal's common case in one statement: mark ``in_flight`` rows (those
    still leased to ``worker``, returned), and record ``sent`` rows with their ``sent``
    events. The ORM's three statements cost the worker more CPU than composing the message."""
    table = Recipient._meta.db_table
    events = Event._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH fly AS (UPDATE {table} SET attempted_at = %(now)s, lease_until = %(until)s "  # noqa: S608
            "WHERE id = ANY(%(fly)s) AND lease_owner = %(worker)s AND lease_until > %(now)s "
            "RETURNING id), "
            f"done AS (UPDATE {table} SET status = 'sent', sent_at = %(now)s, "
            "attempts = attempts + 1, attempted_at = NULL, lease_owner = '', lease_until = NULL "
            "WHERE id = ANY(%(sent)s) AND lease_owner = %(worker)s "
            "RETURNING id, channel, campaign_id, unit_id, unit_path), "
            f"logged AS (INSERT INTO {events} (occurred_at, kind, channel, campaign_id, unit_id, "
            "unit_path, recipient_id, machine) SELECT %(now)s, %(kind)s, channel, campaign_id, "
            "unit_id, unit_path, id, false FROM done) "
            "SELECT id FROM fly",
            {
                "now": now,
                "until": now + lease,
                "fly": list(in_flight),
                "sent": list(sent),
                "worker": worker,
                "kind": int(Event.Kind.SENT),
            },
        )
        return {row[0] for row in cursor.fetchall()}


def ambiguous(campaign_id: int, ids: Sequence[int], now: dt.datetime, why: str) -> None:
    """Log rows that may have left; at-most-once ends them, retry sends them again."""
    logger.warning(
        "campaign %s: %d recipient(s) ambiguous (%s), policy %s",
        campaign_id,
        len(ids),
        why,
        settings.AMBIGUOUS_POLICY,
    )
    rows = Recipient.objects.filter(pk__any=list(ids))
    if settings.AMBIGUOUS_POLICY == "retry":
        rows.update(
            ambiguous_count=F("ambiguous_count") + 1,
            not_before=now + dt.timedelta(seconds=settings.SEND_RETRY_SECONDS),
            **_RELEASED,
        )
    else:
        rows.update(
            status=R.AMBIGUOUS,
            reason=Reason.CONNECTION_LOST,
            detail=why[:300],
            ambiguous_count=F("ambiguous_count") + 1,
            **_RELEASED,
        )


def end(ids: Sequence[int], *, status: str, reason: str, detail: str = "") -> None:
    """Rows that will not be sent (a gate, a render error), with the reason."""
    Recipient.objects.filter(pk__any=list(ids)).update(
        status=status, reason=reason, detail=detail[:300], **_RELEASED
    )


def defer(ids: Sequence[int], until: dt.datetime) -> None:
    """Rows that may be sent only from ``until`` (the SMS window)."""
    Recipient.objects.filter(pk__any=list(ids)).update(not_before=until, **_RELEASED)


def record_outcomes(
    *,
    campaign_id: int,
    channel: str,
    worker: str,
    outcomes: Sequence[tuple[EmailOut | SmsOut, Result]],
    now: dt.datetime,
    stats: Stats,
) -> None:
    """Write what the transport answered for each message (``message.recipient_id``)."""
    by_outcome: dict[Outcome, list[tuple[EmailOut | SmsOut, Result]]] = {}
    for message, result in outcomes:
        by_outcome.setdefault(result.outcome, []).append((message, result))
    mine = Recipient.objects.filter(lease_owner=worker)
    sent = [m.recipient_id for m, _ in by_outcome.get(Outcome.SENT, [])]
    if sent:
        mine.filter(pk__any=sent).update(
            status=R.SENT, sent_at=now, attempts=F("attempts") + 1, **_RELEASED
        )
        record_sent(sent, now)
        stats.sent += len(sent)
    for message, result in by_outcome.get(Outcome.RETRY, []):
        row = mine.filter(pk=message.recipient_id)
        attempts = (row.values_list("attempts", flat=True).first() or 0) + 1
        if attempts >= settings.SEND_MAX_ATTEMPTS:
            row.update(
                status=R.FAILED,
                reason=Reason.GAVE_UP,
                detail=result.detail,
                attempts=attempts,
                **_RELEASED,
            )
            stats.failed += 1
        else:
            backoff = settings.SEND_RETRY_SECONDS * 2 ** (attempts - 1)
            row.update(
                attempts=attempts,
                detail=result.detail,
                not_before=now + dt.timedelta(seconds=backoff),
                **_RELEASED,
            )
            stats.retried += 1
    for message, result in by_outcome.get(Outcome.FAILED, []):
        mine.filter(pk=message.recipient_id).update(
            status=R.FAILED,
            reason=Reason.HARD_BOUNCE if result.hard_bounce else Reason.REFUSED,
            detail=f"{result.code or ''} {result.detail}".strip()[:300],
            attempts=F("attempts") + 1,
            **_RELEASED,
        )
        stats.failed += 1
        if result.hard_bounce:
            suppress_brand_wide(
                channel=channel, address=message.to, reason=Suppression.Reason.HARD_BOUNCE
            )
    lost = [m.recipient_id for m, _ in by_outcome.get(Outcome.AMBIGUOUS, [])]
    if lost:
        ambiguous(campaign_id, lost, now, "connection lost after the end of the message")
        stats.ambiguous += len(lost)
