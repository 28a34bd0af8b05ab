"""RFM: recency, frequency and monetary scores, per store and for the network (issue 21).

Definitions (docs/decisions.md, "RFM"):

- a *purchase* is an order with a buyer and a total above zero (``commerce`` says so once:
  ``segment_fields.purchases``); only orders in the *window* count: the network's last
  ``RfmPolicy.window_months`` months (24 by default) before the run;
- *recency* is the number of whole days (24 h) from the last purchase to the run,
  *frequency* the number of purchases, *monetary* the net amount: the totals of all the
  buyer's orders in the window, returns included (an order made of returns lowers it);
- a *buyer* has at least one purchase in the window; only buyers are scored;
- each score is 1 to 5 by quintile of the buyers ranked from worst to best (the oldest
  last purchase, the fewest purchases, the lowest net): with ``rank`` = 1 + the number of
  buyers strictly worse and ``n`` buyers, score = 1 + ⌊5 × (rank − 1) / n⌋. Like SQL's
  NTILE(5) but buyers with equal values always share a score (the lowest their places
  would give): a store where most buyers bought once has no frequency 2 or 3;
- records are ranked among their store's buyers; persons (the records of one person
  summed: the latest purchase, the purchases and the net added) among the network's; a
  record not linked to a person yet is its own person;
- the group is the R×F grid's cell (``groups``; HQ may adjust its network's grid).

A full run (nightly, ``rfm_nightly``) recomputes everything set-based in SQL (window
functions) and keeps each store's and network's *cut points*: for each score k ≥ 2, the
worst value that reached k. After orders are written, ``refresh_buyers`` recomputes only
the touched buyers' aggregates and scores them against those cut points, which gives the
full run's scores as long as the cut points do not move; the next full run catches up.
"""

# The SQL here is assembled from the models' table and column names and fixed fragments;
# every value travels as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from enseigne.commerce.models import Order
from enseigne.identity.models import RecordLink
from enseigne.network.models import OrgNode

from .groups import DEFAULT_GRID, cell, validate_grid
from .models import DEFAULT_WINDOW_MONTHS, CutPoints, PersonScore, RecordScore, RfmPolicy

DAY_SECONDS = 86_400
LEVELS = (2, 3, 4, 5)


@dataclass(frozen=True)
class Frame:
    """One network's run parameters: its root, the run's time, the window and the grid."""

    root: str
    as_of: dt.datetime
    window_start: dt.datetime
    grid: dict[str, str]


def months_before(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time ``months`` calendar months earlier (the 31st → the month's last)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    month += 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def frame_for(root: OrgNode | str, as_of: dt.datetime | None = None) -> Frame:
    path = root if isinstance(root, str) else root.path
    policy = RfmPolicy.objects.filter(network__node__path=path).first()
    months = policy.window_months if policy else DEFAULT_WINDOW_MONTHS
    grid = validate_grid(policy.grid) if policy and policy.grid else dict(DEFAULT_GRID)
    moment = as_of or timezone.now()
    return Frame(path, moment, months_before(moment, months), grid)


def score_of(value: int, cuts: Sequence[int | None], higher_is_better: bool = True) -> int:
    """The score ``value`` reaches against cut points: score k starts at ``cuts[k-2]``;
    ``cuts[4]`` is the run's best value, and a value better than every buyer's (a buyer of
    today where the best had bought ten days ago) is ranked first, which gives 5."""

    def reaches(cut: int | None) -> bool:
        return cut is not None and (value >= cut if higher_is_better else value <= cut)

    *starts, best = cuts
    if best is not None and reaches(best) and value != best:
        return len(LEVELS) + 1
    score = 1
    for k, cut in zip(LEVELS, starts, strict=True):
        if reaches(cut):
            score = k
    return score


# --- SQL pieces, PostgreSQL and SQLite -----------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _days_sql(column: str) -> str:
    """Whole days from ``column`` to the run's time (the ``%(as_of)s`` parameter)."""
    if connection.vendor == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM (%(as_of)s - {column})) / {DAY_SECONDS})::int"
    # julianday is in days; the offset makes the cast (which truncates) floor negative ones.
    return f"(CAST(julianday(%(as_of)s) - julianday({column}) + 100000 AS INTEGER) - 100000)"


def _adapt(moment: dt.datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def _grid_case(grid: dict[str, str]) -> tuple[str, dict]:
    """The grid as a CASE on r and f giving the group, with its parameters."""
    whens, params = [], {}
    for r in range(1, 6):
        for f in range(1, 6):
            whens.append(f"WHEN {r * 10 + f} THEN %(g{r}{f})s")
            params[f"g{r}{f}"] = grid[cell(r, f)]
    return f"CASE r * 10 + f {' '.join(whens)} END", params


def _score_sql(partition: str) -> str:
    over = f"PARTITION BY {partition}" if partition else ""
    count = f"COUNT(*) OVER ({over})"
    return f"""
        1 + 5 * (RANK() OVER ({over} ORDER BY days DESC) - 1) / {count} AS r,
        1 + 5 * (RANK() OVER ({over} ORDER BY n) - 1) / {count} AS f,
        1 + 5 * (RANK() OVER ({over} ORDER BY cents) - 1) / {count} AS m
    """


def _cut_sql(partition: str) -> str:
    cuts = []
    for k in LEVELS:
        cuts += [
            f"MAX(CASE WHEN r >= {k} THEN days END)",
            f"MIN(CASE WHEN f >= {k} THEN n END)",
            f"MIN(CASE WHEN m >= {k} THEN cents END)",
        ]
    cuts += ["MIN(days)", "MAX(n)", "MAX(cents)"]
    return f"SELECT {partition}, COUNT(*), {', '.join(cuts)} FROM rfm_scored GROUP BY {partition}"


def _execute(sql: str, params: dict | Sequence = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _fetch(sql: str, params: dict | Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _temp(name: str, select: str, params: dict) -> None:
    _execute(f"DROP TABLE IF EXISTS {name}")
    _execute(f"CREATE TEMP TABLE {name} AS {select}", params)


SCORE_COLUMNS = (
    "last_purchase_at",
    "purchases",
    "net",
    "recency",
    "frequency",
    "monetary",
    "group",
)


def _write_scores(table: str, key: str, scope_sql: str, params: dict, computed_at) -> None:
    """Make ``table`` hold exactly the rows of ``rfm_scored`` within ``scope_sql``: rows
    whose values did not change are left alone (a nightly run rewrites few rows)."""
    new = {
        "last_purchase_at": "s.last_at",
        "purchases": "s.n",
        "net": "s.cents / 100.0",
        "recency": "s.r",
        "frequency": "s.f",
        "monetary": "s.m",
        "group": "s.grp",
        "unit_path": "s.unit_path",
    }
    if key == "key":
        new |= {"person_id": "s.person_id", "contact_id": "s.contact_id"}
    table_q = _q(table)
    changed = " OR ".join(f"t.{_q(c)} IS DISTINCT FROM {v}" for c, v in new.items())
    assignments = ", ".join(f"{_q(c)} = {v}" for c, v in new.items())
    params = {**params, "computed_at": computed_at}
    _execute(
        f"UPDATE {table_q} AS t SET {assignments}, computed_at = %(computed_at)s "
        f"FROM rfm_scored AS s WHERE t.{_q(key)} = s.{key} AND ({changed})",
        params,
    )
    columns = [key, *new, "computed_at"]
    values = [f"s.{key}", *new.values(), "%(computed_at)s"]
    _execute(
        f"INSERT INTO {table_q} ({', '.join(_q(c) for c in columns)}) "
        f"SELECT {', '.join(values)} FROM rfm_scored AS s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table_q} AS t WHERE t.{_q(key)} = s.{key})",
        params,
    )
    _execute(
        f"DELETE FROM {table_q} WHERE {scope_sql} AND NOT EXISTS "
        f"(SELECT 1 FROM rfm_scored AS s WHERE s.{key} = {table_q}.{_q(key)})",
        params,
    )


def _int(value) -> int | None:
    return None if value is None else int(value)


def _keep_cuts(level: str, frame: Frame, rows: list[tuple], scope_prefix: str) -> None:
    paths = []
    for path, buyers, *cuts in rows:
        paths.append(path)
        CutPoints.objects.update_or_create(
            level=level,
            unit_path=path,
            defaults={
                "as_of": frame.as_of,
                "window_start": frame.window_start,
                "buyers": buyers,
                "recency": [_int(cuts[i * 3]) for i in range(5)],
                "frequency": [_int(cuts[i * 3 + 1]) for i in range(5)],
                "monetary": [_int(cuts[i * 3 + 2]) for i in range(5)],
            },
        )
    CutPoints.objects.filter(level=level, unit_path__startswith=scope_prefix).exclude(
        unit_path__in=paths
    ).delete()


def score_records(frame: Frame, prefix: str | None = None) -> None:
    """Rank the buyer records of every store under ``prefix`` (the network by default)."""
    prefix = prefix or frame.root
    orders = _q(Order._meta.db_table)
    grid, grid_params = _grid_case(frame.grid)
    params = {
        "as_of": _adapt(frame.as_of),
        "start": _adapt(frame.window_start),
        "prefix": prefix + "%",
        **grid_params,
    }
    # A purchase: a buyer and a total above zero (commerce.segment_fields.purchases).
    _temp(
        "rfm_scored",
        f"""
        WITH buyers AS (
            SELECT contact_id, MIN(unit_path) AS unit_path,
                   MAX(CASE WHEN total > 0 THEN occurred_at END) AS last_at,
                   COUNT(CASE WHEN total > 0 THEN 1 END) AS n,
                   SUM(CAST(ROUND(total * 100) AS BIGINT)) AS cents
            FROM {orders}
            WHERE contact_id IS NOT NULL AND occurred_at >= %(start)s AND unit_path LIKE %(prefix)s
            GROUP BY contact_id
        ), measured AS (
            SELECT contact_id, unit_path, last_at, n, cents, {_days_sql("last_at")} AS days
            FROM buyers WHERE n > 0
        ), ranked AS (
            SELECT measured.*, {_score_sql("unit_path")} FROM measured
        )
        SELECT ranked.*, {grid} AS grp FROM ranked
        """,
        params,
    )
    _write_scores(
        RecordScore._meta.db_table,
        "contact_id",
        f"{_q(RecordScore._meta.db_table)}.unit_path LIKE %(prefix)s",
        params,
        frame.as_of,
    )
    _keep_cuts(CutPoints.Level.RECORD, frame, _fetch(_cut_sql("unit_path")), prefix)
    _execute("DROP TABLE rfm_scored")


def score_persons(frame: Frame) -> None:
    """Rank the network's buyer persons, from its records' scores rows (their aggregates)."""
    records, links = _q(RecordScore._meta.db_table), _q(RecordLink._meta.db_table)
    grid, grid_params = _grid_case(frame.grid)
    params = {"as_of": _adapt(frame.as_of), "prefix": frame.root + "%", **grid_params}
    _temp(
        "rfm_scored",
        f"""
        WITH buyers AS (
            SELECT COALESCE(l.person_id, -s.contact_id) AS key,
                   MAX(l.person_id) AS person_id,
                   MAX(CASE WHEN l.person_id IS NULL THEN s.contact_id END) AS contact_id,
                   MAX(s.last_purchase_at) AS last_at, SUM(s.purchases) AS n,
                   SUM(CAST(ROUND(s.net * 100) AS BIGINT)) AS cents
            FROM {records} AS s LEFT JOIN {links} AS l ON l.contact_id = s.contact_id
            WHERE s.unit_path LIKE %(prefix)s
            GROUP BY COALESCE(l.person_id, -s.contact_id)
        ), measured AS (
            SELECT buyers.*, {_days_sql("last_at")} AS days, %(root)s AS unit_path FROM buyers
        ), ranked AS (
            SELECT measured.*, {_score_sql("")} FROM measured
        )
        SELECT ranked.*, {grid} AS grp FROM ranked
        """,
        {**params, "root": frame.root},
    )
    _write_scores(
        PersonScore._meta.db_table,
        "key",
        f"{_q(PersonScore._meta.db_table)}.unit_path = %(root)s",
        {**params, "root": frame.root},
        frame.as_of,
    )
    _keep_cuts(CutPoints.Level.PERSON, frame, _fetch(_cut_sql("unit_path")), frame.root)
    _execute("DROP TABLE rfm_scored")


def networks() -> list[str]:
    return list(OrgNode.objects.filter(depth=1).order_by("path").values_list("path", flat=True))


def full_run(as_of: dt.datetime | None = None, roots: Iterable[str] | None = None) -> None:
    """Recompute every score of every network (or of ``roots``), one network a transaction."""
    for root in roots or networks():
        frame = frame_for(root, as_of)
        with transaction.atomic():
            score_records(frame)
            score_persons(frame)


# --- Incremental: the touched buyers against the last full run's cut points -------------


@dataclass
class _Aggregate:
    unit_path: str
    last_at: dt.datetime | None
    n: int
    cents: int


def _cuts(level: str, paths: Iterable[str]) -> dict[str, CutPoints]:
    return {c.unit_path: c for c in CutPoints.objects.filter(level=level, unit_path__in=paths)}


def _scores(cut: CutPoints, last_at: dt.datetime, n: int, cents: int) -> tuple[int, int, int]:
    days = int((cut.as_of - last_at).total_seconds() // DAY_SECONDS)
    return (
        score_of(days, cut.recency, higher_is_better=False),
        score_of(n, cut.frequency),
        score_of(cents, cut.monetary),
    )


def _record_aggregates(contact_ids: Sequence[int], start: dt.datetime) -> dict[int, _Aggregate]:
    found: dict[int, _Aggregate] = {}
    rows = (
        Order.objects.filter(contact_id__in=contact_ids, occurred_at__gte=start)
        .values_list("contact_id", "unit_path", "occurred_at", "total")
        .iterator(chunk_size=5000)
    )
    for contact_id, unit_path, occurred_at, total in rows:
        aggregate = found.get(contact_id)
        if aggregate is None:
            aggregate = found[contact_id] = _Aggregate(unit_path, None, 0, 0)
        aggregate.unit_path = min(aggregate.unit_path, unit_path)
        aggregate.cents += int((Decimal(total) * 100).to_integral_value())
        if total > 0:
            aggregate.n += 1
            if aggregate.last_at is None or occurred_at > aggregate.last_at:
                aggregate.last_at = occurred_at
    return {c: a for c, a in found.items() if a.n > 0}


def refresh_buyers(contact_ids: Iterable[int], now: dt.datetime | None = None) -> None:
    """Update the scores of these records and of their persons after their orders changed.

    Reads only their orders; a store (or network) with no full run yet is ranked whole."""
    touched = sorted(set(contact_ids))
    if not touched:
        return
    now = now or timezone.now()
    by_root: dict[str, list[int]] = defaultdict(list)
    for contact_id, unit_path in (
        Order.objects.filter(contact_id__in=touched)
        .values_list("contact_id", "unit_path")
        .distinct()
    ):
        by_root[unit_path[: OrgNode.steplen]].append(contact_id)
    for root, contacts in by_root.items():
        with transaction.atomic():
            _refresh_network(root, sorted(set(contacts)), now)


def _refresh_network(root: str, contacts: list[int], now: dt.datetime) -> None:
    network_cut = _cuts(CutPoints.Level.PERSON, [root]).get(root)
    frame = frame_for(root, network_cut.as_of if network_cut else now)
    if network_cut is not None:
        frame = Frame(root, network_cut.as_of, network_cut.window_start, frame.grid)
    aggregates = _record_aggregates(contacts, frame.window_start)
    store_paths = {a.unit_path for a in aggregates.values()}
    cuts = _cuts(CutPoints.Level.RECORD, store_paths)
    unranked = sorted(store_paths - set(cuts))
    for path in unranked:  # a store's first buyers: rank the whole store once
        score_records(frame, prefix=path)
    rows = []
    for contact_id, a in aggregates.items():
        cut = cuts.get(a.unit_path)
        if cut is None:
            continue
        assert a.last_at is not None
        r, f, m = _scores(cut, a.last_at, a.n, a.cents)
        rows.append(
            RecordScore(
                contact_id=contact_id,
                unit_path=a.unit_path,
                last_purchase_at=a.last_at,
                purchases=a.n,
                net=Decimal(a.cents) / 100,
                recency=r,
                frequency=f,
                monetary=m,
                group=frame.grid[cell(r, f)],
                computed_at=now,
            )
        )
    _upsert(RecordScore, rows, "contact")
    RecordScore.objects.filter(contact_id__in=contacts).exclude(
        contact_id__in=list(aggregates)
    ).delete()
    if network_cut is None:
        score_persons(frame)
        return
    _refresh_persons(frame, network_cut, contacts, now)


def _refresh_persons(frame: Frame, cut: CutPoints, contacts: list[int], now) -> None:
    person_of = dict(
        RecordLink.objects.filter(contact_id__in=contacts).values_list("contact_id", "person_id")
    )
    persons = set(person_of.values())
    members = defaultdict(set)
    for contact_id, person_id in RecordLink.objects.filter(person_id__in=persons).values_list(
        "contact_id", "person_id"
    ):
        members[person_id].add(contact_id)
    keys: dict[int, set[int]] = {p: members[p] for p in persons}
    for contact_id in contacts:
        if contact_id not in person_of:
            keys[-contact_id] = {contact_id}
    record_rows = RecordScore.objects.filter(
        contact_id__in=[c for group in keys.values() for c in group]
    ).values_list("contact_id", "last_purchase_at", "purchases", "net")
    by_contact = {row[0]: row[1:] for row in record_rows}
    rows = []
    for key, group in keys.items():
        found = [by_contact[c] for c in group if c in by_contact]
        if not found:
            continue
        last_at = max(last for last, _n, _net in found)
        n = sum(count for _last, count, _net in found)
        cents = sum(int((Decimal(net) * 100).to_integral_value()) for _l, _n, net in found)
        r, f, m = _scores(cut, last_at, n, cents)
        rows.append(
            PersonScore(
                key=key,
                person_id=key if key > 0 else None,
                contact_id=-key if key < 0 else None,
                unit_path=frame.root,
                last_purchase_at=last_at,
                purchases=n,
                net=Decimal(cents) / 100,
                recency=r,
                frequency=f,
                monetary=m,
                group=frame.grid[cell(r, f)],
                computed_at=now,
            )
        )
    _upsert(PersonScore, rows, "key")
    scored = {row.key for row in rows}
    stale = [key for key in keys if key not in scored]
    # A record linked since the last run no longer stands for itself.
    stale += [-c for c in contacts if c in person_of]
    PersonScore.objects.filter(key__in=stale).delete()


def _upsert(model, rows: list, unique: str) -> None:
    if not rows:
        return
    fields = [*SCORE_COLUMNS, "unit_path", "computed_at"]
    if model is PersonScore:
        fields += ["person", "contact"]
    model.objects.bulk_create(
        rows,
        batch_size=2000,
        update_conflicts=True,
        unique_fields=[unique],
        update_fields=fields,
    )
