"""RFM's full run: every buyer of a network ranked again, set-based in SQL (nightly).

Each store's and the network's cut points are counted from the buyers' aggregates, every
buyer is scored against them, and the score tables are made to hold exactly those rows
(definitions: ``scoring``; docs/decisions.md "RFM").
"""

# The SQL here is assembled from the models' table and column names and fixed fragments;
# every value travels as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db import DatabaseError, connection, transaction

from enseigne.commerce.models import Order
from enseigne.identity.models import RecordLink
from enseigne.network.models import OrgNode

from .models import CutPoints, PersonScore, RecordScore
from .scoring import (
    LEVELS,
    MEASURES,
    WORK_MEM,
    Frame,
    adapt,
    cut_score_sql,
    days_sql,
    execute,
    fetch,
    frame_for,
    grid_case,
    keep_cuts,
    lock_network,
    networks,
    planner,
    purchase_aggregates,
    quote,
    score_values,
    stored_cuts,
    temp_table,
)

logger = logging.getLogger(__name__)


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


def _percentile_cuts(path: str) -> str:
    """``_measure_cuts``' cut points on PostgreSQL in two scans of ``rfm_buyers``, with no
    window over every buyer: per part, the j-th worst value ``w`` of each measure, j = ⌈(k−1)
    × buyers / 5⌉ (``percentile_disc``: one sort of the part's values, not of whole rows);
    the cut is then the first value strictly better than ``w``: exactly the values with at
    least j buyers strictly worse, the rule above. ``percentile_disc`` takes the ⌈f ×
    buyers⌉-th value in floating point, and (k−1)/5 is not exact in binary: where (k−1) ×
    buyers / 5 is a whole number the product may round just above it and the ceiling
    take the next value. f = (k−1)/5 − 10⁻¹² keeps the ceiling exact for parts under 10¹¹
    buyers (checked for every part size up to 200,000)."""
    fractions = "ARRAY[" + ", ".join(f"{(k - 1) / 5} - 1e-12" for k in LEVELS) + "]"
    worst = ", ".join(
        f"percentile_disc({fractions}) WITHIN GROUP "
        f"(ORDER BY {value}{'' if better else ' DESC'}) AS {name}w, "
        f"{'MAX' if better else 'MIN'}({value}) AS {name}4"
        for value, name, better in MEASURES
    )
    # The worst values as columns, taken out of their arrays once a part: subscripted in the
    # scan below, the twelve arrays were read again for every buyer.
    columns = ", ".join(
        f"{name}w[{i + 1}] AS {name}w{i}" for _v, name, _b in MEASURES for i in range(len(LEVELS))
    )
    firsts = ", ".join(
        f"{'MIN' if better else 'MAX'}(b.{value}) FILTER "
        f"(WHERE b.{value} {'>' if better else '<'} w.{name}w{i}) AS {name}{i}"
        for value, name, better in MEASURES
        for i in range(len(LEVELS))
    )
    best = ", ".join(f"w.{name}4" for _v, name, _b in MEASURES)
    best_inner = ", ".join(f"{name}4" for _v, name, _b in MEASURES)
    return f"""
        WITH w AS MATERIALIZED (
            SELECT part, buyers, {columns}, {best_inner} FROM (
                SELECT part, COUNT(*) AS buyers, {worst} FROM rfm_buyers GROUP BY part
            ) AS arrays
        )
        SELECT w.part, {path} AS unit_path, w.buyers, firsts.*, {best}
        FROM w JOIN (
            SELECT b.part AS first_part, {firsts}
            FROM rfm_buyers AS b JOIN w ON w.part = b.part GROUP BY b.part
        ) AS firsts ON firsts.first_part = w.part
    """


def _cut_points(params: dict, path: str) -> None:
    """The cut points of each part of ``rfm_buyers`` (one row a buyer: ``part``, an integer
    naming its store, or 0 for the network; days, n, cents) into ``rfm_cuts``: one row a
    part, ``{name}0`` … ``{name}3`` where scores 2 … 5 start, ``{name}4`` the best value.
    ``path``: the SQL of the path of part ``w.part``."""
    if connection.vendor == "postgresql":
        temp_table("rfm_cuts", _percentile_cuts(path), params)
        return
    columns = ", ".join(f"{name}.{name}{i}" for i in range(5) for _v, name, _b in MEASURES)
    temp_table(
        "rfm_cuts",
        f"""
        SELECT w.*, {path} AS unit_path FROM (
            SELECT r.part, r.buyers, {columns}
            FROM ({_measure_cuts("days", "r", False)}) AS r
            JOIN ({_measure_cuts("n", "f", True)}) AS f ON f.part = r.part
            JOIN ({_measure_cuts("cents", "m", True)}) AS m ON m.part = r.part
        ) AS w
        """,
        params,
    )


def _scored(frame: Frame) -> tuple[str, dict]:
    """The buyers of ``rfm_buyers`` scored against their part's ``rfm_cuts``, with their
    group: a SELECT the write reads once (not materialized), and its parameters."""
    scores = ", ".join(
        cut_score_sql(f"b.{value}", lambda i, n=name: f"c.{n}{i}", better) + f" AS {name}"
        for value, name, better in MEASURES
    )
    grid, grid_params = grid_case(frame.grid)
    return (
        f"""
        SELECT ranked.*, {grid} AS grp FROM (
            SELECT b.*, c.unit_path, {scores}
            FROM rfm_buyers AS b JOIN rfm_cuts AS c ON c.part = b.part
        ) AS ranked
        """,
        grid_params,
    )


def _write_all(
    table: str, key: str, scope: str, frame: Frame, params: dict, computed_at: dt.datetime
) -> None:
    """Make ``table`` hold exactly the scored buyers of ``rfm_buyers``, within ``scope`` (a
    condition on its rows ``t``): rows whose values did not change are left alone.

    One join of the scores with the table (FULL JOIN: new, changed and gone rows at once)
    keeps only the differences (``rfm_diff``, a few thousand rows a night), which are then
    written by key. The three statements that each joined every score with the table
    (UPDATE, INSERT … NOT EXISTS, DELETE … NOT EXISTS) were 40 % of the run. A table with
    no row at all (the first run) is filled from the scores directly."""
    scored, grid_params = _scored(frame)
    params = {**params, **grid_params, "computed_at": computed_at}
    values = score_values(key)
    table_q, key_q = quote(table), quote(key)
    columns = [quote(c) for c in values]
    if not fetch(f"SELECT EXISTS (SELECT 1 FROM {table_q})")[0][0]:
        execute(
            f"INSERT INTO {table_q} ({key_q}, {', '.join(columns)}, computed_at) "
            f"SELECT s.{key}, {', '.join(values.values())}, %(computed_at)s FROM ({scored}) AS s "
            # In key order, each index is filled page after page (the key's, and the
            # person's or the record's, which follow it), not at random.
            f"ORDER BY s.{key}",
            params,
        )
        return
    changed = " OR ".join(f"t.{quote(c)} IS DISTINCT FROM {v}" for c, v in values.items())
    new_values = ", ".join(f"{v} AS {quote(c)}" for c, v in values.items())
    temp_table(
        "rfm_diff",
        f"""
        SELECT s.{key} AS new_key, t.{key_q} AS old_key, {new_values}
        FROM ({scored}) AS s FULL JOIN {table_q} AS t ON t.{key_q} = s.{key}
        WHERE CASE WHEN s.{key} IS NULL THEN {scope} WHEN t.{key_q} IS NULL THEN 1 = 1
                   ELSE {changed} END
        """,
        params,
    )
    # A few rows, each found by its key (nested loops on the table's unique index). Hash
    # and merge joins off too: the score table's statistics are a run old (its owner's
    # autovacuum analyses it, not this role), and on them the planner scanned the whole
    # table and hashed it to update 80,000 rows of 1.5 million (3.3 s and 4.3 s of the
    # nightly run at load 6; by key: see docs/benchmarks.md "RFM").
    by_key = {"enable_nestloop": "on", "enable_hashjoin": "off", "enable_mergejoin": "off"}
    with planner({**by_key, "enable_seqscan": "off"}):
        assignments = ", ".join(f"{c} = d.{c}" for c in columns)
        execute(
            f"UPDATE {table_q} AS t SET {assignments}, computed_at = %(computed_at)s "
            f"FROM rfm_diff AS d WHERE t.{key_q} = d.old_key AND d.new_key IS NOT NULL",
            params,
        )
        execute(
            f"INSERT INTO {table_q} ({key_q}, {', '.join(columns)}, computed_at) "
            f"SELECT d.new_key, {', '.join(f'd.{c}' for c in columns)}, %(computed_at)s "
            f"FROM rfm_diff AS d WHERE d.old_key IS NULL",
            params,
        )
        execute(
            f"DELETE FROM {table_q} WHERE {key_q} IN "
            f"(SELECT d.old_key FROM rfm_diff AS d WHERE d.new_key IS NULL)"
        )
    execute("DROP TABLE rfm_diff")


def score_records(frame: Frame, prefix: str | None = None) -> None:
    """Rank the buyer records of every store under ``prefix`` (the network by default).
    Leaves their aggregates in ``rfm_record_buyers`` for ``score_persons`` (the caller
    drops it)."""
    prefix = prefix or frame.root
    orders = quote(Order._meta.db_table)
    params = {
        "as_of": adapt(frame.as_of),
        "start": adapt(frame.window_start),
        "prefix": prefix + "%",
    }
    # A purchase: a buyer and a total above zero (commerce.segment_fields.purchases). The
    # store's id names its part: ranks sort on an integer, not on its path's text.
    temp_table(
        "rfm_buyers",
        f"""
        SELECT contact_id, unit_id AS part, last_at, n, cents, {days_sql("last_at")} AS days
        FROM (
            SELECT o.contact_id, MIN(o.unit_id) AS unit_id, {purchase_aggregates("o")}
            FROM {orders} AS o
            WHERE o.contact_id IS NOT NULL AND o.occurred_at >= %(start)s
                  AND o.occurred_at <= %(as_of)s AND o.unit_path LIKE %(prefix)s
            GROUP BY o.contact_id
        ) AS buyers
        WHERE n > 0
        """,
        params,
        analyze=False,
    )
    nodes = quote(OrgNode._meta.db_table)
    _cut_points(params, f"(SELECT path FROM {nodes} WHERE id = w.part)")
    _write_all(
        RecordScore._meta.db_table,
        "contact_id",
        "t.unit_path LIKE %(prefix)s",
        frame,
        params,
        frame.as_of,
    )
    keep_cuts(CutPoints.Level.RECORD, frame, stored_cuts(), prefix)
    execute("DROP TABLE rfm_cuts")
    execute("ALTER TABLE rfm_buyers RENAME TO rfm_record_buyers")


def score_persons(frame: Frame, records: str = "") -> None:
    """Rank the network's buyer persons from their records' aggregates: ``records``, the
    table ``score_records`` just left (the full run), or the records' score rows."""
    links = quote(RecordLink._meta.db_table)
    params = {"as_of": adapt(frame.as_of), "prefix": frame.root + "%", "root": frame.root}
    if not records:
        records = (
            f"(SELECT contact_id, last_purchase_at AS last_at, purchases AS n, "
            f"CAST(ROUND(net * 100) AS BIGINT) AS cents "
            f"FROM {quote(RecordScore._meta.db_table)} WHERE unit_path LIKE %(prefix)s)"
        )
    temp_table(
        "rfm_buyers",
        f"""
        SELECT buyers.*, 0 AS part, {days_sql("last_at")} AS days
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
    _cut_points(params, "%(root)s")
    _write_all(
        PersonScore._meta.db_table, "key", "t.unit_path = %(root)s", frame, params, frame.as_of
    )
    keep_cuts(CutPoints.Level.PERSON, frame, stored_cuts(), frame.root)
    for table in ("rfm_cuts", "rfm_buyers"):
        execute(f"DROP TABLE {table}")


def set_based():
    """Hash joins for these statements over whole tables, and no JIT compiling: the score
    tables' estimates are often stale (a row-by-row plan took 5 s on 5,000 rows),
    compiling costs more than it saves on such simple plans, and the aggregates and sorts
    of a million buyers spill to disk in the default 4 MB of work memory. No parallel
    workers: each would aggregate nearly every buyer (a buyer's orders are spread over the
    whole table), and merging their partial groups took longer than one pass."""
    return planner(
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


def full_run(as_of: dt.datetime | None = None, roots: Iterable[str] | None = None) -> None:
    """Recompute every score of every network (or of ``roots``), one network a transaction.
    A network that fails is logged and the others still run (the next night retries it)."""
    failed = []
    for root in roots or networks():
        frame = frame_for(root, as_of)
        try:
            with transaction.atomic(), set_based():
                lock_network(root)
                score_records(frame)
                score_persons(frame, records="rfm_record_buyers")
                execute("DROP TABLE rfm_record_buyers")
        except DatabaseError:
            logger.exception("RFM full run failed for network %s", root)
            failed.append(root)
    if failed:
        raise RuntimeError(f"RFM full run failed for {len(failed)} network(s): {failed}")
