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

A full run (nightly, ``rfm_nightly``) recomputes everything set-based in SQL: each store's
and the network's *cut points* (for each score k ≥ 2, the worst value that reached k),
counted from the buyers' values, then every buyer scored against them — the same scores as
ranking, since a value scores k or more exactly when 5 × (buyers strictly worse) ≥ (k − 1)
× buyers (``full``). After orders are written, ``refresh_buyers`` recomputes only the touched
buyers' aggregates and scores them against the kept cut points, which gives the full run's
scores as long as the cut points do not move; the next full run catches up (``refresh``).

This module holds what both share (the run's frame, the SQL pieces, the cut points' storage,
the network's lock); ``full_run`` and ``refresh_buyers`` stay importable from here.
"""

# The SQL here is assembled from the models' table and column names and fixed fragments;
# every value travels as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.utils import timezone

from enseigne.network.models import OrgNode

from .groups import DEFAULT_GRID, cell, validate_grid
from .models import DEFAULT_WINDOW_MONTHS, CutPoints, RfmPolicy

DAY_SECONDS = 86_400
# Work memory for the full run's aggregates and sorts (per sort or hash, this transaction).
WORK_MEM = "256MB"
LEVELS = (2, 3, 4, 5)


@dataclass(frozen=True)
class Frame:
    """One network's run parameters: its root, the run's time, the window and the grid."""

    root: str
    as_of: dt.datetime
    window_start: dt.datetime
    grid: dict[str, str]
    window_months: int = DEFAULT_WINDOW_MONTHS


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
    return Frame(path, moment, months_before(moment, months), grid, months)


# --- SQL pieces, PostgreSQL and SQLite -----------------------------------------------------


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def days_sql(column: str, as_of: str = "%(as_of)s") -> str:
    """Whole days from ``column`` to the run's time (``as_of``: an SQL expression)."""
    if connection.vendor == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM ({as_of} - {column})) / {DAY_SECONDS})::int"
    # julianday is in days; the offset makes the cast (which truncates) floor negative ones.
    return f"(CAST(julianday({as_of}) - julianday({column}) + 100000 AS INTEGER) - 100000)"


def json_item(column: str, index: int) -> str:
    if connection.vendor == "postgresql":
        return f"({column} ->> {index})::bigint"
    return f"json_extract({column}, '$[{index}]')"


def cut_score_sql(value: str, cut, higher_is_better: bool) -> str:
    """The score ``value`` reaches against a measure's cut points, ``cut(i)`` being the SQL of
    the i-th: score k starts at the (k-2)th cut; the fifth is the run's best value, and a
    value better than every buyer's (a buyer of today where the best had bought ten days
    ago) is ranked first: 5."""
    better, reaches = (">", ">=") if higher_is_better else ("<", "<=")
    levels = " + ".join(
        f"(CASE WHEN {value} {reaches} {cut(i)} THEN 1 ELSE 0 END)" for i in range(4)
    )
    return f"(CASE WHEN {value} {better} {cut(4)} THEN 5 ELSE 1 + {levels} END)"


def kept_cut(column: str):
    """The i-th cut point of a stored ``CutPoints`` row ``c`` (a JSON list)."""
    return lambda index: json_item(f"c.{column}", index)


# The three measures: (the buyer's value, the name of its score and cut points, whether
# a higher value is better).
MEASURES = (("days", "r", False), ("n", "f", True), ("cents", "m", True))


def purchase_aggregates(orders: str) -> str:
    """A buyer's figures over its orders (alias ``orders``), for a GROUP BY's select list:
    the latest purchase (``last_at``), the purchases (``n``) and the net in cents
    (``cents``), returns included. The cents are summed as integers, order by order
    (exact: the totals have two decimals): on PostgreSQL a sum of bigints keeps a small
    state per buyer, where a sum of numerics made the full run's aggregate of 1.5 million
    buyers spill to disk (0.5 GB of hash table) and cost a fifth more CPU."""
    o = orders
    return (
        f"MAX(CASE WHEN {o}.total > 0 THEN {o}.occurred_at END) AS last_at, "
        f"COUNT(CASE WHEN {o}.total > 0 THEN 1 END) AS n, "
        f"SUM(CAST(ROUND({o}.total * 100) AS BIGINT)) AS cents"
    )


def adapt(moment: dt.datetime):
    return connection.ops.adapt_datetimefield_value(moment)


def grid_case(grid: dict[str, str]) -> tuple[str, dict]:
    """The grid as a CASE on r and f giving the group, with its parameters."""
    whens, params = [], {}
    for r in range(1, 6):
        for f in range(1, 6):
            whens.append(f"WHEN {r * 10 + f} THEN %(g{r}{f})s")
            params[f"g{r}{f}"] = grid[cell(r, f)]
    return f"CASE r * 10 + f {' '.join(whens)} END", params


def execute(sql: str, params: dict | Sequence = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def fetch(sql: str, params: dict | Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def temp_table(name: str, select: str, params: dict, analyze: bool = True) -> None:
    execute(f"DROP TABLE IF EXISTS {name}")
    execute(f"CREATE TEMP TABLE {name} AS {select}", params)
    if analyze:  # a new table has no statistics: without them joins may go row by row
        execute(f"ANALYZE {name}")


def any_of(column: str, param: str) -> str:
    """``column`` is one of the ids in the list parameter ``param`` (``id_list`` makes it)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%({param})s)"
    return f"{column} IN (SELECT CAST(value AS INTEGER) FROM json_each(%({param})s))"


def id_list(values: Iterable[int]) -> object:
    ids = sorted(set(values))
    return ids if connection.vendor == "postgresql" else json.dumps(ids)


def score_values(key: str) -> dict[str, str]:
    """A score table's columns (but its key and ``computed_at``) from a scored row ``s``
    (``key``: ``contact_id`` for records, ``key`` for persons)."""
    values = {
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
        values |= {"person_id": "s.person_id", "contact_id": "s.contact_id"}
    return values


def _int(value) -> int | None:
    return None if value is None else int(value)


def keep_cuts(level: str, frame: Frame, rows: list[tuple], scope_prefix: str) -> None:
    """Replace the cut points of every store (or the network) under ``scope_prefix``."""
    CutPoints.objects.filter(level=level, unit_path__startswith=scope_prefix).delete()
    CutPoints.objects.bulk_create(
        [
            CutPoints(
                level=level,
                unit_path=path,
                as_of=frame.as_of,
                window_start=frame.window_start,
                buyers=buyers,
                recency=[_int(cuts[i * 3]) for i in range(5)],
                frequency=[_int(cuts[i * 3 + 1]) for i in range(5)],
                monetary=[_int(cuts[i * 3 + 2]) for i in range(5)],
            )
            for path, buyers, *cuts in rows
        ],
        batch_size=1000,
    )


def stored_cuts() -> list[tuple]:
    """``rfm_cuts`` as ``keep_cuts`` takes it: path, buyers, then each level's r, f, m."""
    columns = ", ".join(f"{name}{i}" for i in range(5) for _v, name, _b in MEASURES)
    return fetch(f"SELECT unit_path, buyers, {columns} FROM rfm_cuts")


def networks() -> list[str]:
    return list(OrgNode.objects.filter(depth=1).order_by("path").values_list("path", flat=True))


@contextmanager
def planner(wanted: dict[str, str]):
    """These planner settings for the statements inside; the caller's return afterwards
    (``SET LOCAL`` would otherwise last the caller's whole transaction)."""
    if connection.vendor != "postgresql":
        yield
        return
    previous = []
    with connection.cursor() as cursor:
        for name, value in wanted.items():
            cursor.execute(
                "SELECT current_setting(%s), set_config(%s, %s, true)", [name, name, value]
            )
            previous.append(cursor.fetchone()[0])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for name, value in zip(wanted, previous, strict=True):
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def lock_network(root: str) -> None:
    """One writer of a network's scores at a time, until it commits: the nightly run and a
    batch's refresh both update, insert and replace cut points, and would otherwise insert
    the same rows or deadlock."""
    if connection.vendor == "postgresql":
        execute("SELECT pg_advisory_xact_lock(hashtext(%(key)s))", {"key": f"rfm:{root}"})


def __getattr__(name: str) -> Any:
    """The entry points other apps call as ``scoring.full_run`` / ``scoring.refresh_buyers``
    (imported on first use: ``full`` and ``refresh`` import this module)."""
    if name in ("full_run", "score_records", "score_persons"):
        from . import full

        return getattr(full, name)
    if name == "refresh_buyers":
        from . import refresh

        return refresh.refresh_buyers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
