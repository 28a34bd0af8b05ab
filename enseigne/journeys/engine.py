"""The journey engine: claim the enrollments that are due, move each through its steps.

One transaction per batch: the due rows are claimed (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so any number of workers share the work; SQLite's immediate transactions
serialise them), every row walks its flow until it waits, ends or leaves, the rows and
their history are written, and a send step's ledger row is inserted (``sends``) — all or
nothing. A worker that dies mid-batch rolls everything back and the rows are due again: a
step is never half done, never done twice.

A row is due when its ``wake_at`` has come. At a wait step, waking means the wait is over;
at any other step (a row just enrolled waits at the start step, due at once), the step
runs now. Steps of one kind at one step id are run together for the whole batch (one
query for a condition, one insert for a send), in rounds until every row rests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from enseigne.campaigns.models import Recipient
from enseigne.commerce.models import Order
from enseigne.commerce.segment_fields import purchases
from enseigne.contacts.models import Contact
from enseigne.contacts.segments import SegmentCompiler
from enseigne.delivery.models import Event
from enseigne.journeys import flow as flows
from enseigne.journeys import sends, timing
from enseigne.journeys.models import (
    Enrollment,
    EnrollmentStep,
    JourneyRun,
    JourneySend,
    JourneyVersion,
)
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.selectors import unit_time_zone

logger = logging.getLogger(__name__)
W = Enrollment.Status
Out = EnrollmentStep.Outcome
BATCH = 500
BLOCKED_RETRY = dt.timedelta(hours=1)  # a send step that cannot send is tried again


def draw(enrollment_id: int, salt: str) -> int:
    """A stable number 0–99 for this enrollment and ``salt`` (a step, the holdout): the same
    row always takes the same branch, whichever worker runs it and however often."""
    digest = hashlib.blake2b(f"{enrollment_id}:{salt}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % 100


def due_rows(now: dt.datetime, limit: int) -> list[Enrollment]:
    """Claim up to ``limit`` due rows of running journeys, the longest due first (call in a
    transaction).

    Ordered by ``wake_at`` then ``id``, the order of the partial index
    ``journeys_enrollment_due_id`` (migration 0006): the claim reads the first rows of the
    index and stops, and rows sharing a wake-up (a trigger pass enrolls thousands at the
    same moment) are claimed oldest first. On an index of ``wake_at`` alone the tie-break
    made PostgreSQL sort every tied due row at each claim: 100 ms per batch for 100,000 tied
    rows, against 1 ms (bench/journeys.py)."""
    rows = Enrollment.objects.filter(
        status=W.WAITING, wake_at__lte=now, run__status=JourneyRun.Status.ACTIVE
    ).order_by("wake_at", "id")
    if connection.vendor == "postgresql":
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    return list(rows[:limit])


def advance_due(*, now: dt.datetime | None = None, limit: int = BATCH) -> int:
    """Move one batch of due rows; returns how many rows were claimed (0: nothing due)."""
    now = now or timezone.now()
    with transaction.atomic(), db_scope(ALL):
        rows = due_rows(now, limit)
        if rows:
            _Batch(now, rows).run()
    return len(rows)


def advance_all(*, now: dt.datetime | None = None, limit: int = BATCH) -> int:
    """Batches until nothing is due (the worker's periodic pass); returns the rows moved."""
    moved = 0
    while True:
        count = advance_due(now=now, limit=limit)
        moved += count
        if count < limit:
            return moved


class _Batch:
    def __init__(self, now: dt.datetime, rows: list[Enrollment]):
        self.now = now
        self.rows = rows
        self.history: list[tuple[int, str, str, str, str]] = []
        versions = JourneyVersion.objects.select_related(
            "template__created_by", "published_by"
        ).in_bulk({r.version_id for r in rows})
        self.versions = versions
        self.flows: dict[int, flows.Flow | None] = {}
        for pk, version in versions.items():
            try:
                self.flows[pk] = flows.parse(version.flow)
            except ValidationError:
                # Published flows were checked; one that no longer reads stops its rows.
                logger.error("Journey version %s no longer reads: its rows stop", pk)
                self.flows[pk] = None
        runs = JourneyRun.objects.select_related("unit__profile").in_bulk({r.run_id for r in rows})
        self.runs = runs
        self.zones = {pk: ZoneInfo(unit_time_zone(run.unit)) for pk, run in runs.items()}

    def note(self, row: Enrollment, outcome: str, detail: str = "") -> None:
        # (enrollment, unit path, step, outcome, detail); written at ``self.now``.
        self.history.append((row.pk, row.unit_path, row.step, outcome, detail[:40]))

    def end(self, row: Enrollment, status: str, outcome: str) -> None:
        self.note(row, outcome)
        row.status, row.wake_at = status, None

    def go(self, row: Enrollment, target: str | None, moving: list[Enrollment]) -> None:
        """Leave the current step for ``target`` (None: the journey is over)."""
        if target is None:
            self.end(row, W.DONE, Out.DONE)
        else:
            row.step = target
            moving.append(row)

    def run(self) -> None:
        moving: list[Enrollment] = []
        for row in self._not_done_by_goal(self.rows):
            flow = self.flows[row.version_id]
            step = flow.steps.get(row.step) if flow else None
            if step is None:
                self.end(row, W.STOPPED, Out.STOPPED)
            elif step.kind == "wait":
                self.note(row, Out.WAITED)
                self.go(row, step.next, moving)
            else:
                moving.append(row)
        for _round in range(flows.MAX_STEPS + 1):
            if not moving:
                break
            moving = self._round(moving)
        else:  # pragma: no cover - a flow without cycles rests within MAX_STEPS rounds
            raise AssertionError("a journey row did not come to rest")
        # One UPDATE per resting place (step, status, wake-up): a batch's rows share a few
        # (they walk the same flow at the same moment), and a plain UPDATE of ids costs the
        # database and Django far less than ``bulk_update``'s CASE per row (bench/journeys.py).
        resting: dict[tuple[str, str, dt.datetime | None], list[int]] = defaultdict(list)
        for row in self.rows:
            row.updated_at = self.now
            resting[row.step, row.status, row.wake_at].append(row.pk)
        for (step_id, status, wake), ids in resting.items():
            Enrollment.objects.filter(pk__in=ids).update(
                step=step_id, status=status, wake_at=wake, updated_at=self.now
            )
        _append_history(self.history, self.now)

    def _not_done_by_goal(self, rows: list[Enrollment]) -> list[Enrollment]:
        """Rows whose journey's goal (a purchase since they entered) is reached end here."""
        with_goal = [r for r in rows if (f := self.flows[r.version_id]) and f.goal]
        if not with_goal:
            return rows
        earliest = min(r.entered_at for r in with_goal)
        bought: dict[int, dt.datetime] = {}
        for contact_id, at in (
            Order.objects.filter(
                contact_id__in={r.contact_id for r in with_goal}, occurred_at__gte=earliest
            )
            .order_by()
            .values_list("contact_id", "occurred_at")
        ):
            if at > bought.get(contact_id, at - dt.timedelta(seconds=1)):
                bought[contact_id] = at
        left = []
        for row in rows:
            last = bought.get(row.contact_id)
            if row in with_goal and last is not None and last >= row.entered_at:
                self.end(row, W.GOAL, Out.GOAL)
            else:
                left.append(row)
        return left

    def _round(self, moving: list[Enrollment]) -> list[Enrollment]:
        groups: dict[tuple[int, str], list[Enrollment]] = defaultdict(list)
        for row in moving:
            groups[row.version_id, row.step].append(row)
        after: list[Enrollment] = []
        for (version_id, step_id), rows in groups.items():
            flow = self.flows[version_id]
            step = flow.steps.get(step_id) if flow else None
            if step is None:
                for row in rows:
                    self.end(row, W.STOPPED, Out.STOPPED)
            elif step.kind in flows.SEND_KINDS:
                self._send(step, rows, after)
            elif step.wait is not None:  # arriving at a wait
                for row in rows:
                    row.wake_at = timing.wake_at(step.wait, self.now, self.zones[row.run_id])
            elif step.kind == "condition":
                self._condition(version_id, step, rows, after)
            elif step.kind == "random":
                for row in rows:
                    roll, total = draw(row.pk, step.id), 0
                    for share, target in step.branches:
                        total += share
                        if roll < total:
                            self.note(row, Out.BRANCH, target)
                            self.go(row, target, after)
                            break
            else:  # exit
                for row in rows:
                    self.end(row, W.EXITED, Out.EXITED)
        return after

    def _send(self, step: flows.Step, rows: list[Enrollment], after: list[Enrollment]) -> None:
        held = [r for r in rows if r.held_out]
        for row in held:
            self.note(row, Out.HELD_OUT)
        by_run: dict[int, list[Enrollment]] = defaultdict(list)
        for row in rows:
            if not row.held_out:
                by_run[row.run_id].append(row)
        blocked: set[int] = set()
        for run_id, sending in by_run.items():
            problem = sends.queue(self.runs[run_id], step, sending)
            self._run_problem(run_id, problem)
            for row in sending:
                if problem:
                    # The step's message may not be sent (its template withdrawn or no longer
                    # passing): the row keeps waiting at the step, tried again later, and the
                    # run's pages say why.
                    row.wake_at = self.now + BLOCKED_RETRY
                    blocked.add(row.pk)
                else:
                    self.note(row, Out.SENT)
        for row in rows:
            if row.status == W.WAITING and row.pk not in blocked:
                self.go(row, step.next, after)

    def _run_problem(self, run_id: int, problem: str) -> None:
        """Keep on the run why its send step cannot send (cleared once a step sends)."""
        run = self.runs[run_id]
        if problem and run.problem != problem[:300]:
            run.problem = problem[:300]
            JourneyRun.objects.filter(pk=run_id).update(problem=run.problem, problem_at=self.now)
        elif not problem and run.problem:
            run.problem = ""
            JourneyRun.objects.filter(pk=run_id).update(problem="", problem_at=None)

    def _condition(
        self, version_id: int, step: flows.Step, rows: list[Enrollment], after: list[Enrollment]
    ) -> None:
        if step.since_entry is not None:
            done = self._since_entry(step.since_entry, rows)
            for row in rows:
                yes = row.pk in done
                self.note(row, Out.YES if yes else Out.NO)
                self.go(row, step.yes if yes else step.no, after)
            return
        rules = compile_rules(self.versions[version_id], step.rules)
        if rules is None:
            for row in rows:
                self.end(row, W.STOPPED, Out.STOPPED)
            return
        matching = set(
            Contact.objects.filter(rules, pk__in=[r.contact_id for r in rows]).values_list(
                "pk", flat=True
            )
        )
        for row in rows:
            yes = row.contact_id in matching
            self.note(row, Out.YES if yes else Out.NO)
            self.go(row, step.yes if yes else step.no, after)

    def _since_entry(self, event: str, rows: list[Enrollment]) -> set[int]:
        """The enrollments whose person did ``event`` since entering: bought in the run's
        store (a purchase as the segment conditions count it: never a return), or clicked
        (a person, not a machine) one of the messages this journey sent them."""
        if event == "click":
            own = JourneySend.objects.filter(run_id__in={r.run_id for r in rows})
            messages = dict(
                Recipient.objects.filter(
                    campaign_id__in=own.values("campaign_id"), occurrence__in=[r.pk for r in rows]
                ).values_list("pk", "occurrence")
            )
            clicked = Event.objects.filter(
                kind=Event.Kind.CLICKED, machine=False, recipient_id__in=list(messages)
            ).values_list("recipient_id", flat=True)
            return {messages[message] for message in clicked if message is not None}
        earliest = min(r.entered_at for r in rows)
        last: dict[tuple[int, int], dt.datetime] = {}
        for contact_id, unit_id, at in (
            purchases()
            .filter(contact_id__in={r.contact_id for r in rows}, occurred_at__gte=earliest)
            .order_by()
            .values_list("contact_id", "unit_id", "occurred_at")
        ):
            key = (contact_id, unit_id)
            last[key] = max(at, last.get(key, at))
        done = set()
        for row in rows:
            bought = last.get((row.contact_id, self.runs[row.run_id].unit_id))
            if bought is not None and bought >= row.entered_at:
                done.add(row.pk)
        return done


def compile_rules(version: JourneyVersion, rules) -> Q | None:
    """Segment rules of a version (a condition's, a segment trigger's) as a filter on records,
    read as the version's publisher's, who was checked to be allowed them at publishing (the
    template's creator when the version has no publisher); None when they no longer read,
    or nobody is left to read them as. (Load ``published_by`` and ``template__created_by``.)"""
    author = version.published_by or version.template.created_by
    if author is None:
        return None
    try:
        return SegmentCompiler(author).compile(rules)
    except (ValidationError, ValueError, PermissionDenied):
        return None


def _append_history(history: list[tuple[int, str, str, str, str]], at: dt.datetime) -> None:
    """Append a batch's history: on PostgreSQL one INSERT from arrays (a few ms for
    thousands of rows, where ``bulk_create`` spends its time building per-row SQL)."""
    if not history:
        return
    if connection.vendor != "postgresql":
        EnrollmentStep.objects.bulk_create(
            EnrollmentStep(
                enrollment_id=pk, unit_path=path, step=step, outcome=outcome, detail=detail, at=at
            )
            for pk, path, step, outcome, detail in history
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO journeys_enrollmentstep (enrollment_id, unit_path, step, outcome, detail, at) "
            "SELECT e, p, s, o, d, %s FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[], "
            "%s::varchar[], %s::varchar[]) AS h(e, p, s, o, d)",
            [at, *(list(column) for column in zip(*history, strict=True))],
        )


def enroll(
    run: JourneyRun,
    contact_ids: Iterable[int],
    *,
    occurrence: str = "",
    now: dt.datetime | None = None,
) -> int:
    """Enter these records of the run's store into it, due at once at its start step; a
    record already in for this occurrence is left as it is (and one that entered less than
    the template's re-entry days ago, when it says so). Returns how many entered.

    The control group is drawn from the record, the run and the occurrence, so a trigger
    seen twice draws the same way."""
    return enroll_each(run, dict.fromkeys(contact_ids, occurrence), now=now)


def enroll_each(
    run: JourneyRun, occurrences: dict[int, str], *, now: dt.datetime | None = None
) -> int:
    """``enroll`` with each record's own occurrence (record id → occurrence), in one go: a
    minute of consents (each its own occurrence) is a few queries, not a few per consent."""
    now = now or timezone.now()
    template = run.template
    start = flows.parse(run.version.flow).start
    if template.reentry == template.Reentry.NEVER:
        occurrences = dict.fromkeys(occurrences, "")
    # Only the run's store's own records (whatever the caller passed).
    ids = list(
        Contact.objects.filter(pk__in=list(occurrences), unit_path=run.unit_path)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    present = Enrollment.objects.filter(run=run, contact_id__in=ids).order_by()
    wanted = Q(occurrence__in=set(occurrences.values()))
    since = None
    if template.reentry == template.Reentry.AFTER:
        since = now - dt.timedelta(days=template.reentry_days or 0)
        wanted |= Q(entered_at__gt=since)
    skip = {
        contact_id
        for contact_id, occurrence, entered_at in present.filter(wanted).values_list(
            "contact_id", "occurrence", "entered_at"
        )
        if occurrence == occurrences[contact_id] or (since is not None and entered_at > since)
    }
    rows = [
        Enrollment(
            run=run,
            version_id=run.version_id,
            contact_id=contact_id,
            unit_path=run.unit_path,
            occurrence=occurrences[contact_id],
            step=start,
            held_out=draw(contact_id, f"holdout:{run.pk}:{occurrences[contact_id]}")
            < template.holdout_percent,
            wake_at=now,
            entered_at=now,
            updated_at=now,
        )
        for contact_id in ids
        if contact_id not in skip
    ]
    # A concurrent trigger of the same occurrence: the unique key keeps one of the two.
    Enrollment.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    return len(rows)
