"""A journey's report: its per-step figures and what its messages changed, measured against
its control group (issue 22).

The control group is drawn at random when a person enters (``Enrollment.held_out``, the
template's share): it walks the same flow and is never sent anything, so the difference
between the two groups' purchases is the journey's effect, with its 95 % interval.

What is counted (the page says it in these words):

- **Entrants**: every entry into the run (a birthday each year is a new entry), whatever
  became of it later (finished, left, stopped): the groups are compared as they were drawn.
  An entry counts once its window is over: those of the last ``WINDOW_DAYS`` days wait.
- **A purchase**: an order with a positive total, recorded in the run's store for that
  customer record, from the moment of entry until ``WINDOW_DAYS`` days later.
- **Revenue per entrant**: the net total of those orders (returns subtracted), summed over
  the group and divided by its entrants (buyers or not).

A store's own difference is told only when each of its groups has ``MIN_GROUP`` entrants;
stores are listed by name, never ranked.

A closed window's purchases are written once by the nightly pass (``close_windows``); the
page sums those rows and reads only the entries closed since (docs/decisions.md, "The lift
at a million entries").
"""

from __future__ import annotations

import datetime as dt
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from enseigne.commerce.models import Order
from enseigne.identity.linking import jit_off
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.stats import Difference, Mean, Rate, mean_difference, rate_difference
from enseigne.network.access import access_for
from enseigne.network.models import User

from . import drawing
from . import flow as flows
from .models import Enrollment, EntryPurchases, JourneyRun, JourneyTemplate
from .selectors import StepFigures, step_figures

WINDOW_DAYS = 30
WINDOW = dt.timedelta(days=WINDOW_DAYS)
# Each night the purchases of the windows closed in these last days are written again: an
# order recorded late (a till's file imported days after the sale) still counts.
REFRESH = dt.timedelta(days=7)
# Entrants in each group (treated, control) before a store's difference is told.
MIN_GROUP = 50


@dataclass
class Group:
    """One side of the comparison: its entrants, buyers and revenue (sum and squares)."""

    people: int = 0
    buyers: int = 0
    revenue: float = 0.0
    squares: float = 0.0

    def add(self, other: Group) -> None:
        self.people += other.people
        self.buyers += other.buyers
        self.revenue += other.revenue
        self.squares += other.squares

    @property
    def rate(self) -> Rate:
        return Rate(self.buyers, self.people)

    @property
    def mean(self) -> Mean:
        return Mean(self.people, self.revenue, self.squares)


@dataclass
class Lift:
    """The treated group against the control group, over one run or several."""

    treated: Group = field(default_factory=Group)
    control: Group = field(default_factory=Group)
    # Entries whose window is not over yet (counted later).
    waiting: int = 0

    def add(self, other: Lift) -> None:
        self.treated.add(other.treated)
        self.control.add(other.control)
        self.waiting += other.waiting

    @property
    def entered(self) -> int:
        return self.treated.people + self.control.people + self.waiting

    @property
    def enough(self) -> bool:
        return min(self.treated.people, self.control.people) >= MIN_GROUP

    @property
    def rate_difference(self) -> Difference | None:
        return rate_difference(self.treated.rate, self.control.rate) if self.enough else None

    @property
    def revenue_difference(self) -> Difference | None:
        return mean_difference(self.treated.mean, self.control.mean) if self.enough else None


def _per_entry(entries: QuerySet[Enrollment]) -> tuple[str, list]:
    """SQL of one row per entry of ``entries`` (whose window is over): ``entry``, ``r`` (its
    run), ``place``, ``h`` (held out), ``n`` (its purchases) and ``v`` (its net revenue) in
    its window, read on the orders' (contact, time) index. Index look-ups, not a join: the
    page asks this only of the few entries closed since the nightly pass (a join would hash
    every order of the store for them), and the pass of a night's entries."""
    in_window = (
        Order.objects.filter(
            contact_id=OuterRef("contact_id"),
            unit_path=OuterRef("unit_path"),
            occurred_at__gte=OuterRef("entered_at"),
            occurred_at__lt=OuterRef("entered_at") + WINDOW,
        )
        .order_by()
        .values("contact_id")
    )
    rows = (
        entries.order_by()
        .annotate(
            # Aliases of its own: the engines name a sub-query's plain columns differently.
            entry=F("pk"),
            r=F("run_id"),
            place=F("unit_path"),
            h=F("held_out"),
            n=Coalesce(
                Subquery(in_window.filter(total__gt=0).annotate(c=Count("pk")).values("c")),
                Value(0),
            ),
            v=Coalesce(
                Subquery(in_window.annotate(s=Sum("total")).values("s")),
                Value(Decimal("0")),
                output_field=DecimalField(max_digits=14, decimal_places=2),
            ),
        )
        .values("entry", "r", "place", "h", "n", "v")
    )
    sql, params = rows.query.sql_with_params()
    if connections[rows.db].vendor == "postgresql":
        # A fence: without it PostgreSQL inlines the sub-query and reads the revenue's
        # orders again for each use of ``v`` outside.
        sql += " OFFSET 0"
    return sql, list(params)


def _stored() -> Exists:
    return Exists(EntryPurchases.objects.filter(pk=OuterRef("pk")))


def close_windows(*, now: dt.datetime | None = None) -> int:
    """Write the purchases of each entry whose window is over and not written yet, and
    again of those closed in the last ``REFRESH`` (an order recorded a few days late still
    counts); the report then sums these rows instead of joining the entries to the orders.
    System work (the nightly task), one statement; returns the rows written."""
    now = now or timezone.now()
    due = Enrollment.objects.filter(entered_at__lte=now - WINDOW).filter(
        Q(entered_at__gt=now - WINDOW - REFRESH) | ~_stored()
    )
    sql, params = _per_entry(due)
    connection = connections[due.db]
    table = connection.ops.quote_name(EntryPurchases._meta.db_table)
    with transaction.atomic(using=due.db), connection.cursor() as cursor:
        # ``WHERE 1 = 1``: SQLite reads an upsert's ``ON CONFLICT`` after a bare ``FROM``
        # as a join's ``ON``.
        cursor.execute(
            f"INSERT INTO {table} (enrollment_id, run_id, unit_path, held_out, purchases, "  # noqa: S608
            f"revenue) SELECT p.entry, p.r, p.place, p.h, p.n, p.v FROM ({sql}) p WHERE 1 = 1 "
            "ON CONFLICT (enrollment_id) DO UPDATE SET purchases = excluded.purchases, "
            "revenue = excluded.revenue",
            params,
        )
        return cursor.rowcount


def lifts(runs: QuerySet[JourneyRun], *, now: dt.datetime | None = None) -> dict[int, Lift]:
    """Each run's lift (by run id), in one query: the purchases written once each window
    was over (``close_windows``), those of the entries closed since then (their orders read
    now) and the entries still waiting, each summed by run, group and window over."""
    now = now or timezone.now()
    entries = Enrollment.objects.filter(run__in=runs.values("pk"))
    closed = entries.filter(entered_at__lte=now - WINDOW)
    parts = [
        EntryPurchases.objects.filter(run__in=runs.values("pk"))
        .order_by()
        .annotate(r=F("run_id"), h=F("held_out"), done=Value(1), n=F("purchases"), v=F("revenue"))
        .values("r", "h", "done", "n", "v")
        .query.sql_with_params(),
        _per_entry(closed.filter(~_stored())),
        entries.filter(entered_at__gt=now - WINDOW)
        .order_by()
        .annotate(r=F("run_id"), h=F("held_out"), done=Value(0), n=Value(0), v=Value(0))
        .values("r", "h", "done", "n", "v")
        .query.sql_with_params(),
    ]
    stored, live, waiting = (sql for sql, _params in parts)
    params = [param for _sql, part in parts for param in part]
    # Each part summed on its own (a few rows each leave the database), added up below.
    summed = (
        "SELECT x.r, x.h, x.done, COUNT(*), SUM(CASE WHEN x.n > 0 THEN 1 ELSE 0 END), "
        "SUM(x.v), SUM(x.v * x.v) FROM ({}) x GROUP BY x.r, x.h, x.done"
    )
    found: dict[int, Lift] = {}
    connection = connections[entries.db]
    with connection.cursor() as cursor:
        # No JIT compiling on PostgreSQL: the plan's cost counts the look-ups as if every
        # closed entry needed them, and compiling took 1.6 s of a 2.8 s query at a million
        # entries (EXPLAIN ANALYZE, docs/benchmarks.md) for sums that take 0.9 s without.
        # A transaction's setting: the page's reads run in one (their row-level scope is).
        local = connection.vendor == "postgresql" and connection.in_atomic_block
        no_jit = jit_off(cursor) if local else nullcontext()
        # Only the ORM's SQL and placeholders are formatted in.
        with no_jit:
            cursor.execute(
                " UNION ALL ".join(
                    summed.format(part)
                    for part in (
                        stored,
                        f"SELECT l.r, l.h, 1 AS done, l.n, l.v FROM ({live}) l",  # noqa: S608
                        waiting,
                    )
                ),
                params,
            )
            sums = cursor.fetchall()  # before the setting is restored on this cursor
    for run_id, held_out, done, people, buyers, revenue, squares in sums:
        lift = found.setdefault(run_id, Lift())
        if not done:
            lift.waiting += people
            continue
        group = lift.control if held_out else lift.treated
        group.add(Group(people, int(buyers or 0), float(revenue or 0), float(squares or 0)))
    return found


def network_lift(template: JourneyTemplate, *, now: dt.datetime | None = None) -> Lift:
    """The journey's lift over every store of the network that runs it, whoever asks: like
    the network's references on the results pages (``analytics.selectors.references``),
    only sums leave the database, never a store's rows."""
    total = Lift()
    with db_scope(ALL):
        for lift in lifts(JourneyRun.objects.filter(template=template), now=now).values():
            total.add(lift)
    return total


@dataclass
class StepLine:
    step: str
    kind: str
    label: str
    depth: int
    figures: StepFigures


@dataclass
class Report:
    template: JourneyTemplate
    # (run, its lift), by store name: the stores the user sees, never ranked.
    rows: list[tuple[JourneyRun, Lift]]
    total: Lift
    # The whole network's, beside the user's own when the user sees only part of it.
    network: Lift | None
    steps: list[StepLine]
    trigger: str = ""
    window_days: int = WINDOW_DAYS
    min_group: int = MIN_GROUP

    @property
    def has_control(self) -> bool:
        return self.template.holdout_percent > 0 or bool(self.total.control.people)


def _lines(boxes: list[drawing.Box], figures: dict[str, StepFigures], depth: int = 0):
    for box in boxes:
        if box.goto:
            continue
        yield StepLine(box.step, box.kind, box.label, depth, figures.get(box.step, StepFigures()))
        for _label, inner in box.branches:
            yield from _lines(inner, figures, depth + 1)


def steps_in_words(raw_flow, runs: QuerySet[JourneyRun]) -> tuple[str, list[StepLine]]:
    """The live flow's steps in the order they are drawn, each with its figures over
    ``runs`` (and the trigger in words); none when the flow no longer reads."""
    if raw_flow is None:
        return "", []
    try:
        parsed = flows.parse(raw_flow)
    except ValidationError:  # a published flow that no longer reads draws nothing
        return "", []
    figures = step_figures(runs)
    return drawing.trigger_label(parsed.trigger), list(_lines(drawing.draw(parsed), figures))


def journey_report(
    user: User,
    template: JourneyTemplate,
    runs: QuerySet[JourneyRun],
    *,
    now: dt.datetime | None = None,
) -> Report:
    """The report of ``template`` over ``runs`` (the runs ``user`` sees): per-step figures
    summed over them, each store's lift and their total, and the network's beside it when
    the user sees only part of the network."""
    now = now or timezone.now()
    found = lifts(runs, now=now)
    rows = sorted(
        ((run, found.get(run.pk, Lift())) for run in runs),
        key=lambda row: (row[0].unit.name.casefold(), row[0].unit.path),
    )
    total = Lift()
    for _run, lift in rows:
        total.add(lift)
    whole = access_for(user).sees(template.owner_path)
    network = None if whole or not template.owner.is_root() else network_lift(template, now=now)
    live = template.live_version
    trigger, steps = steps_in_words(live.flow if live else None, runs)
    return Report(template, rows, total, network, steps, trigger)
