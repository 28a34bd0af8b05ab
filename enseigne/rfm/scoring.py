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
× buyers. After orders are written, ``refresh_buyers`` recomputes only the touched buyers'
aggregates and scores them against the kept cut points, which gives the full run's scores
as long as the cut points do not move; the next full run catches up.
"""

# The SQL here is assembled from the models' table and column names and fixed fragments;
# every value travels as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from enseigne.commerce.models import Order
from enseigne.identity.models import RecordLink
from enseigne.network.models import OrgNode

from .groups import DEFAULT_GRID, cell, validate_grid
from .models import DEFAULT_WINDOW_MONTHS, CutPoints, PersonScore, RecordScore, RfmPolicy

logger = logging.getLogger(__name__)

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


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _days_sql(column: str, as_of: str = "%(as_of)s") -> str:
    """Whole days from ``column`` to the run's time (``as_of``: an SQL expression)."""
    if connection.vendor == "postgresql":
        return f"FLOOR(EXTRACT(EPOCH FROM ({as_of} - {column})) / {DAY_SECONDS})::int"
    # julianday is in days; the offset makes the cast (which truncates) floor negative ones.
    return f"(CAST(julianday({as_of}) - julianday({column}) + 100000 AS INTEGER) - 100000)"


def _json_item(column: str, index: int) -> str:
    if connection.vendor == "postgresql":
        return f"({column} ->> {index})::bigint"
    return f"json_extract({column}, '$[{index}]')"


def _cut_score_sql(value: str, cut, higher_is_better: bool) -> str:
    """The score ``value`` reaches against a measure's cut points, ``cut(i)`` being the SQL of
    the i-th: score k starts at the (k-2)th cut; the fifth is the run's best value, and a
    value better than every buyer's (a buyer of today where the best had bought ten days
    ago) is ranked first: 5."""
    better, reaches = (">", ">=") if higher_is_better else ("<", "<=")
    levels = " + ".join(
        f"(CASE WHEN {value} {reaches} {cut(i)} THEN 1 ELSE 0 END)" for i in range(4)
    )
    return f"(CASE WHEN {value} {better} {cut(4)} THEN 5 ELSE 1 + {levels} END)"


def _kept_cut(column: str):
    """The i-th cut point of a stored ``CutPoints`` row ``c`` (a JSON list)."""
    return lambda index: _json_item(f"c.{column}", index)


# The three measures: (the buyer's value, the name of its score and cut points, whether
# a higher value is better).
MEASURES = (("days", "r", False), ("n", "f", True), ("cents", "m", True))


def _measure_cuts(value: str, name: str, higher_is_better: bool) -> str:
    """Per store (``part``) of ``rfm_buyers``: the value at which each score k >= 2 starts
    (``{name}0`` … ``{name}3``) and the best value (``{name}4``).

    The quintile rule needs only counts: a value scores k or more when the buyers strictly
    worse, ``below``, reach (k-1)/5 of the ``total`` (5 × below >= (k-1) × total), so the
    cut is the worst value that does. Recency days and purchase counts take a few hundred
    values a store: their counts come from a histogram, sorted small; amounts are nearly
    all distinct: one sort of the buyers' amounts (on integers: store id, cents)."""
    direction = "" if higher_is_better else " DESC"
    worst = "MIN" if higher_is_better else "MAX"
    best = "MAX" if higher_is_better else "MIN"
    cuts = ", ".join(
        f"{worst}(CASE WHEN 5 * below >= {k - 1} * total THEN v END) AS {name}{i}"
        for i, k in enumerate(LEVELS)
    )
    if value == "cents":
        counted = f"""
            SELECT part, {value} AS v,
                   RANK() OVER (PARTITION BY part ORDER BY {value}{direction}) - 1 AS below,
                   COUNT(*) OVER (PARTITION BY part) AS total
            FROM rfm_buyers"""
    else:
        counted = f"""
            SELECT part, v, SUM(c) OVER (PARTITION BY part ORDER BY v{direction}) - c AS below,
                   SUM(c) OVER (PARTITION BY part) AS total
            FROM (SELECT part, {value} AS v, CAST(COUNT(*) AS INTEGER) AS c
                  FROM rfm_buyers GROUP BY part, {value}) AS h"""
    return f"""
        SELECT part, {cuts}, {best}(v) AS {name}4, MAX(total) AS buyers
        FROM ({counted}) AS x GROUP BY part
    """


def _rank(frame: Frame, params: dict, path: str) -> None:
    """Score the buyers of ``rfm_buyers`` (one row a buyer: ``part``, an integer naming
    its store, or 0 for the network; days, n, cents) among their part's:
    their cut points into ``rfm_cuts`` (one row a part), their scores and group into
    ``rfm_scored``. ``path``: the SQL of the path of part ``r.part``."""
    columns = ", ".join(f"{name}.{name}{i}" for i in range(5) for _v, name, _b in MEASURES)
    _temp(
        "rfm_cuts",
        f"""
        SELECT r.part, {path} AS unit_path, r.buyers, {columns}
        FROM ({_measure_cuts("days", "r", False)}) AS r
        JOIN ({_measure_cuts("n", "f", True)}) AS f ON f.part = r.part
        JOIN ({_measure_cuts("cents", "m", True)}) AS m ON m.part = r.part
        """,
        params,
    )
    scores = ", ".join(
        _cut_score_sql(f"b.{value}", lambda i, n=name: f"c.{n}{i}", better) + f" AS {name}"
        for value, name, better in MEASURES
    )
    grid, grid_params = _grid_case(frame.grid)
    _temp(
        "rfm_scored",
        f"""
        WITH ranked AS (
            SELECT b.*, c.unit_path, {scores}
            FROM rfm_buyers AS b JOIN rfm_cuts AS c ON c.part = b.part
        )
        SELECT ranked.*, {grid} AS grp FROM ranked
        """,
        {**params, **grid_params},
        analyze=False,
    )


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


def _execute(sql: str, params: dict | Sequence = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _fetch(sql: str, params: dict | Sequence = ()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _temp(name: str, select: str, params: dict, analyze: bool = True) -> None:
    _execute(f"DROP TABLE IF EXISTS {name}")
    _execute(f"CREATE TEMP TABLE {name} AS {select}", params)
    if analyze:  # a new table has no statistics: without them joins may go row by row
        _execute(f"ANALYZE {name}")


SCORE_COLUMNS = (
    "last_purchase_at",
    "purchases",
    "net",
    "recency",
    "frequency",
    "monetary",
    "group",
)


def _any(column: str, param: str) -> str:
    """``column`` is one of the ids in the list parameter ``param`` (``_ids`` makes it)."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%({param})s)"
    return f"{column} IN (SELECT CAST(value AS INTEGER) FROM json_each(%({param})s))"


def _ids(values: Iterable[int]) -> object:
    ids = sorted(set(values))
    return ids if connection.vendor == "postgresql" else json.dumps(ids)


def _write_scores(
    table: str, key: str, scope_sql: str, params: dict, computed_at, keys: str = ""
) -> None:
    """Make ``table`` hold exactly the rows of ``rfm_scored`` within ``scope_sql``: rows
    whose values did not change are left alone (a nightly run rewrites few rows).

    ``keys`` (the incremental path): the parameter listing the only keys that may change;
    every statement reaches the table through them, by its index."""
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
    bound = f" AND {_any(f't.{_q(key)}', keys)}" if keys else ""
    columns = ", ".join(_q(c) for c in [key, *new, "computed_at"])
    values = ", ".join([f"s.{key}", *new.values(), "%(computed_at)s"])
    # MERGE (PostgreSQL 15) doing both in one join was measured slower at full size
    # (22.7 s against 11.6 + 3.8 s for the records, load 7.7).
    _execute(
        f"UPDATE {table_q} AS t SET {assignments}, computed_at = %(computed_at)s "
        f"FROM rfm_scored AS s WHERE t.{_q(key)} = s.{key} AND ({changed}){bound}",
        params,
    )
    _execute(
        f"INSERT INTO {table_q} ({columns}) SELECT {values} FROM rfm_scored AS s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table_q} AS t WHERE t.{_q(key)} = s.{key}{bound})",
        params,
    )
    if keys:
        scope_sql = f"({scope_sql}) AND {_any(f'{table_q}.{_q(key)}', keys)}"
        # The anti-join below looks each row up in the scores: with sequential scans off it
        # otherwise rescanned the whole temp table per row (156 s for 33,000 buyers).
        _execute(f"CREATE INDEX rfm_scored_key ON rfm_scored ({key})")
    _execute(
        f"DELETE FROM {table_q} WHERE ({scope_sql}) AND NOT EXISTS "
        f"(SELECT 1 FROM rfm_scored AS s WHERE s.{key} = {table_q}.{_q(key)})",
        params,
    )


def _int(value) -> int | None:
    return None if value is None else int(value)


def _keep_cuts(level: str, frame: Frame, rows: list[tuple], scope_prefix: str) -> None:
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


def _stored_cuts() -> list[tuple]:
    """``rfm_cuts`` as ``_keep_cuts`` takes it: path, buyers, then each level's r, f, m."""
    columns = ", ".join(f"{name}{i}" for i in range(5) for _v, name, _b in MEASURES)
    return _fetch(f"SELECT unit_path, buyers, {columns} FROM rfm_cuts")


def score_records(frame: Frame, prefix: str | None = None) -> None:
    """Rank the buyer records of every store under ``prefix`` (the network by default).
    Leaves their aggregates in ``rfm_buyers`` for ``score_persons`` (the caller drops it)."""
    prefix = prefix or frame.root
    orders = _q(Order._meta.db_table)
    params = {
        "as_of": _adapt(frame.as_of),
        "start": _adapt(frame.window_start),
        "prefix": prefix + "%",
    }
    # A purchase: a buyer and a total above zero (commerce.segment_fields.purchases). The
    # store's id names its part: ranks sort on an integer, not on its path's text.
    _temp(
        "rfm_buyers",
        f"""
        SELECT contact_id, unit_id AS part, last_at, n, cents, {_days_sql("last_at")} AS days
        FROM (
            SELECT contact_id, MIN(unit_id) AS unit_id,
                   MAX(CASE WHEN total > 0 THEN occurred_at END) AS last_at,
                   COUNT(CASE WHEN total > 0 THEN 1 END) AS n,
                   CAST(ROUND(SUM(total) * 100) AS BIGINT) AS cents
            FROM {orders}
            WHERE contact_id IS NOT NULL AND occurred_at >= %(start)s AND unit_path LIKE %(prefix)s
            GROUP BY contact_id
        ) AS buyers
        WHERE n > 0
        """,
        params,
        analyze=False,
    )
    nodes = _q(OrgNode._meta.db_table)
    _rank(frame, params, f"(SELECT path FROM {nodes} WHERE id = r.part)")
    _write_scores(
        RecordScore._meta.db_table,
        "contact_id",
        f"{_q(RecordScore._meta.db_table)}.unit_path LIKE %(prefix)s",
        params,
        frame.as_of,
    )
    _keep_cuts(CutPoints.Level.RECORD, frame, _stored_cuts(), prefix)
    _execute("DROP TABLE rfm_scored")
    _execute("DROP TABLE rfm_cuts")
    _execute("ALTER TABLE rfm_buyers RENAME TO rfm_record_buyers")


def score_persons(frame: Frame, records: str = "") -> None:
    """Rank the network's buyer persons from their records' aggregates: ``records``, the
    table ``score_records`` just left (the full run), or the records' score rows."""
    links = _q(RecordLink._meta.db_table)
    params = {"as_of": _adapt(frame.as_of), "prefix": frame.root + "%", "root": frame.root}
    if not records:
        records = (
            f"(SELECT contact_id, last_purchase_at AS last_at, purchases AS n, "
            f"CAST(ROUND(net * 100) AS BIGINT) AS cents "
            f"FROM {_q(RecordScore._meta.db_table)} WHERE unit_path LIKE %(prefix)s)"
        )
    _temp(
        "rfm_buyers",
        f"""
        SELECT buyers.*, 0 AS part, {_days_sql("last_at")} AS days
        FROM (
            SELECT COALESCE(l.person_id, -s.contact_id) AS key,
                   MAX(l.person_id) AS person_id,
                   MAX(CASE WHEN l.person_id IS NULL THEN s.contact_id END) AS contact_id,
                   MAX(s.last_at) AS last_at, CAST(SUM(s.n) AS INTEGER) AS n,
                   CAST(SUM(s.cents) AS BIGINT) AS cents
            FROM {records} AS s LEFT JOIN {links} AS l ON l.contact_id = s.contact_id
            GROUP BY COALESCE(l.person_id, -s.contact_id)
        ) AS buyers
        """,
        params,
        analyze=False,
    )
    _rank(frame, params, "%(root)s")
    _write_scores(
        PersonScore._meta.db_table,
        "key",
        f"{_q(PersonScore._meta.db_table)}.unit_path = %(root)s",
        params,
        frame.as_of,
    )
    _keep_cuts(CutPoints.Level.PERSON, frame, _stored_cuts(), frame.root)
    for table in ("rfm_scored", "rfm_cuts", "rfm_buyers"):
        _execute(f"DROP TABLE {table}")


def networks() -> list[str]:
    return list(OrgNode.objects.filter(depth=1).order_by("path").values_list("path", flat=True))


@contextmanager
def _planner(wanted: dict[str, str]):
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


def _set_based():
    """Hash joins for these statements over whole tables, and no JIT compiling: the score
    tables' estimates are often stale (a row-by-row plan took 5 s on 5,000 rows),
    compiling costs more than it saves on such simple plans, and the aggregates and sorts
    of a million buyers spill to disk in the default 4 MB of work memory. No parallel
    workers: each would aggregate nearly every buyer (a buyer's orders are spread over the
    whole table), and merging their partial groups took longer than one pass."""
    return _planner(
        {
            "jit": "off",
            "work_mem": WORK_MEM,
            "enable_nestloop": "off",
            "enable_hashjoin": "on",
            "enable_mergejoin": "on",
            "enable_seqscan": "on",
            "max_parallel_workers_per_gather": "0",
        }
    )


def _index_lookups():
    """The incremental path: every statement reaches orders, links and score rows through
    the touched ids (``= ANY(ids)`` on an indexed column), so its cost follows the buyers
    touched, never the tables' sizes, whatever the estimates say. Sequential scans are off:
    right after a bulk load or a full run the estimates are stale, and the planner then
    chose to scan the whole orders or score table and probe the touched buyers for each
    row (4.7 s for 1,000 buyers in a 20,000-record store; whole-table hash joins, 6.7 s
    for 33,000 buyers at 2,000,000 people). No JIT compiling either."""
    return _planner({"jit": "off", "enable_seqscan": "off"})


def _lock_network(root: str) -> None:
    """One writer of a network's scores at a time, until it commits: the nightly run and a
    batch's refresh both update, insert and replace cut points, and would otherwise insert
    the same rows or deadlock."""
    if connection.vendor == "postgresql":
        _execute("SELECT pg_advisory_xact_lock(hashtext(%(key)s))", {"key": f"rfm:{root}"})


def full_run(as_of: dt.datetime | None = None, roots: Iterable[str] | None = None) -> None:
    """Recompute every score of every network (or of ``roots``), one network a transaction.
    A network that fails is logged and the others still run (the next night retries it)."""
    failed = []
    for root in roots or networks():
        frame = frame_for(root, as_of)
        try:
            with transaction.atomic(), _set_based():
                _lock_network(root)
                score_records(frame)
                score_persons(frame, records="rfm_record_buyers")
                _execute("DROP TABLE rfm_record_buyers")
        except DatabaseError:
            logger.exception("RFM full run failed for network %s", root)
            failed.append(root)
    if failed:
        raise RuntimeError(f"RFM full run failed for {len(failed)} network(s): {failed}")


# --- Incremental: the touched buyers against the last full run's cut points -------------


def _touched_aggregates(orders: str) -> str:
    """The touched buyers' aggregates over their orders in the window: on PostgreSQL one
    index descent per buyer (a LATERAL aggregate from the ids), whatever the estimates. The
    caller materializes it: inlined, the planner put the store cut points outside and ran
    the buyers' aggregate again for each of the 203 (130 s for 33,000 buyers)."""
    aggregates = """MIN(o.unit_path) AS unit_path,
        MAX(CASE WHEN o.total > 0 THEN o.occurred_at END) AS last_at,
        COUNT(CASE WHEN o.total > 0 THEN 1 END) AS n,
        SUM(CAST(ROUND(o.total * 100) AS BIGINT)) AS cents"""
    window = "o.occurred_at >= %(start)s AND o.unit_path LIKE %(prefix)s"
    if connection.vendor == "postgresql":
        return f"""
            SELECT t.contact_id, a.* FROM unnest(%(ids)s::bigint[]) AS t(contact_id)
            CROSS JOIN LATERAL (
                SELECT {aggregates} FROM {orders} AS o
                WHERE o.contact_id = t.contact_id AND {window}
            ) AS a
            WHERE a.unit_path IS NOT NULL"""
    return f"""
        SELECT o.contact_id, {aggregates} FROM {orders} AS o
        WHERE {_any("o.contact_id", "ids")} AND {window} GROUP BY o.contact_id"""


def refresh_buyers(contact_ids: Iterable[int], now: dt.datetime | None = None) -> None:
    """Update the scores of these records and of their persons after their orders changed.

    Reads only their orders, their persons' links and score rows, by index: the cost
    follows the buyers touched (a till's batch of 1,000 orders), not the network's size.
    A store with no cut points yet (no full run since its first buyers) gets them once,
    from its own buyers (``score_records`` on that store alone); a network with none gets
    its persons ranked once; every later refresh scores against them."""
    touched = sorted({int(c) for c in contact_ids})
    if not touched:
        return
    now = now or timezone.now()
    with transaction.atomic(), _index_lookups():
        orders = _q(Order._meta.db_table)
        params = {"ids": _ids(touched)}
        paths = [
            row[0]
            for row in _fetch(
                f"SELECT DISTINCT unit_path FROM {orders} WHERE {_any('contact_id', 'ids')}",
                params,
            )
        ]
        for root in sorted({path[: OrgNode.steplen] for path in paths}):
            _lock_network(root)
            _refresh_network(root, [p for p in paths if p.startswith(root)], now, touched)


def _refresh_network(root: str, paths: list[str], now: dt.datetime, touched: list[int]) -> None:
    network_cut = CutPoints.objects.filter(level=CutPoints.Level.PERSON, unit_path=root).first()
    frame = frame_for(root, now)
    if network_cut is not None:
        frame = Frame(root, network_cut.as_of, network_cut.window_start, frame.grid)
    ranked = set(
        CutPoints.objects.filter(level=CutPoints.Level.RECORD, unit_path__in=paths).values_list(
            "unit_path", flat=True
        )
    )
    for path in sorted(set(paths) - ranked):  # a store's first buyers: rank it whole once
        with _set_based():
            score_records(frame, prefix=path)
            _execute("DROP TABLE rfm_record_buyers")
    orders, cuts = _q(Order._meta.db_table), _q(CutPoints._meta.db_table)
    grid, grid_params = _grid_case(frame.grid)
    params = {
        "start": _adapt(frame.window_start),
        "prefix": root + "%",
        "ids": _ids(touched),
        **grid_params,
    }
    _temp(
        "rfm_scored",
        f"""
        WITH buyers AS MATERIALIZED ({_touched_aggregates(orders)}), measured AS (
            SELECT b.*, {_days_sql("b.last_at", "c.as_of")} AS days, c.recency, c.frequency,
                   c.monetary
            FROM buyers AS b JOIN {cuts} AS c ON c.level = 'record' AND c.unit_path = b.unit_path
            WHERE b.n > 0
        ), ranked AS (
            SELECT contact_id, unit_path, last_at, n, cents, days,
                   {_cut_score_sql("days", _kept_cut("recency"), higher_is_better=False)} AS r,
                   {_cut_score_sql("n", _kept_cut("frequency"), higher_is_better=True)} AS f,
                   {_cut_score_sql("cents", _kept_cut("monetary"), higher_is_better=True)} AS m
            FROM measured AS c
        )
        SELECT ranked.*, {grid} AS grp FROM ranked
        """,
        params,
    )
    records = _q(RecordScore._meta.db_table)
    _write_scores(
        RecordScore._meta.db_table, "contact_id", f"{records}.unit_path LIKE %(prefix)s",
        params, now, keys="ids",
    )  # fmt: skip
    _execute("DROP TABLE rfm_scored")
    if network_cut is None:
        with _set_based():
            score_persons(frame)
        return
    _refresh_persons(frame, now, touched)


def _refresh_persons(frame: Frame, now: dt.datetime, touched: list[int]) -> None:
    records, links = _q(RecordScore._meta.db_table), _q(RecordLink._meta.db_table)
    cuts = _q(CutPoints._meta.db_table)
    prefix = {"prefix": frame.root + "%", "ids": _ids(touched)}
    # The touched records' persons and all their records; a buyer not linked: itself.
    persons = _fetch(
        f"SELECT DISTINCT person_id FROM {links} "
        f"WHERE {_any('contact_id', 'ids')} AND unit_path LIKE %(prefix)s",
        prefix,
    )
    members = _fetch(
        f"SELECT contact_id, person_id FROM {links} WHERE {_any('person_id', 'persons')}",
        {"persons": _ids(p for (p,) in persons)},
    )
    members += _fetch(
        f"SELECT s.contact_id, -s.contact_id FROM {records} AS s "
        f"WHERE {_any('s.contact_id', 'ids')} AND s.unit_path LIKE %(prefix)s "
        f"AND NOT EXISTS (SELECT 1 FROM {links} AS l "
        f"WHERE l.contact_id = s.contact_id AND {_any('l.contact_id', 'ids')})",
        prefix,
    )
    keys = {key for _c, key in members} | {-c for c in touched}
    _temp(
        "rfm_members",
        "SELECT CAST(value ->> 0 AS BIGINT) AS contact_id, CAST(value ->> 1 AS BIGINT) AS key "
        "FROM json_array_elements(%(members)s::json)"
        if connection.vendor == "postgresql"
        else "SELECT json_extract(value, '$[0]') AS contact_id, json_extract(value, '$[1]') AS key "
        "FROM json_each(%(members)s)",
        {"members": json.dumps([list(m) for m in members])},
    )
    grid, grid_params = _grid_case(frame.grid)
    params = {
        "root": frame.root,
        "member_ids": _ids(c for c, _k in members),
        "keys": _ids(keys),
        **grid_params,
    }
    _temp(
        "rfm_scored",
        f"""
        WITH buyers AS MATERIALIZED (
            SELECT m.key, MAX(CASE WHEN m.key > 0 THEN m.key END) AS person_id,
                   MAX(CASE WHEN m.key < 0 THEN -m.key END) AS contact_id,
                   MAX(s.last_purchase_at) AS last_at, SUM(s.purchases) AS n,
                   SUM(CAST(ROUND(s.net * 100) AS BIGINT)) AS cents
            FROM rfm_members AS m JOIN {records} AS s ON s.contact_id = m.contact_id
            WHERE {_any("s.contact_id", "member_ids")}
            GROUP BY m.key
        ), measured AS (
            SELECT b.*, {_days_sql("b.last_at", "c.as_of")} AS days, c.recency, c.frequency,
                   c.monetary, c.unit_path
            FROM buyers AS b JOIN {cuts} AS c ON c.level = 'person' AND c.unit_path = %(root)s
        ), ranked AS (
            SELECT key, person_id, contact_id, unit_path, last_at, n, cents, days,
                   {_cut_score_sql("days", _kept_cut("recency"), higher_is_better=False)} AS r,
                   {_cut_score_sql("n", _kept_cut("frequency"), higher_is_better=True)} AS f,
                   {_cut_score_sql("cents", _kept_cut("monetary"), higher_is_better=True)} AS m
            FROM measured AS c
        )
        SELECT ranked.*, {grid} AS grp FROM ranked
        """,
        params,
    )
    # A record linked since the last run no longer stands for itself: its own key goes.
    people = _q(PersonScore._meta.db_table)
    _write_scores(
        PersonScore._meta.db_table, "key", f"{people}.unit_path = %(root)s", params, now,
        keys="keys",
    )  # fmt: skip
    _execute("DROP TABLE rfm_scored")
    _execute("DROP TABLE rfm_members")
