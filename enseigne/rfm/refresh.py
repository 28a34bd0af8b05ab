"""RFM's incremental refresh: the buyers whose orders changed, scored against the last full
run's cut points, reading only their own rows (after each till batch or import).

Definitions: ``scoring``; docs/decisions.md "RFM".
"""

# The SQL here is assembled from the models' table and column names and fixed fragments;
# every value travels as a parameter.
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from enseigne.commerce.models import Order
from enseigne.identity.models import RecordLink
from enseigne.network.models import OrgNode

from .full import score_persons, score_records, set_based
from .models import CutPoints, PersonScore, RecordScore
from .scoring import (
    Frame,
    adapt,
    any_of,
    cut_score_sql,
    days_sql,
    execute,
    fetch,
    frame_for,
    grid_case,
    id_list,
    kept_cut,
    lock_network,
    networks,
    planner,
    purchase_aggregates,
    quote,
    score_values,
    temp_table,
)


def _index_lookups():
    """The incremental path: every statement reaches orders, links and score rows through
    the touched ids (``= ANY(ids)`` on an indexed column), so its cost follows the buyers
    touched, never the tables' sizes, whatever the estimates say. Sequential scans are off:
    right after a bulk load or a full run the estimates are stale, and the planner then
    chose to scan the whole orders or score table and probe the touched buyers for each
    row (4.7 s for 1,000 buyers in a 20,000-record store; whole-table hash joins, 6.7 s
    for 33,000 buyers at 2,000,000 people). No JIT compiling either."""
    return planner({"jit": "off", "enable_seqscan": "off"})


def _touched_aggregates(orders: str) -> str:
    """The touched buyers' aggregates over their orders in the network's window, with the
    store each is ranked in: on PostgreSQL one index descent per buyer (a LATERAL aggregate
    from the ids), whatever the estimates."""
    aggregates = f"MIN(o.unit_path) AS unit_path, {purchase_aggregates('o')}"
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
        WHERE {any_of("o.contact_id", "ids")} AND {window} GROUP BY o.contact_id"""


def _ranked(keys: str, grid: str) -> str:
    """The end of a scoring query: the buyers of ``measured`` (their ``keys``, figures and
    the kept cut points' lists) scored against them, and their group."""
    return f"""ranked AS (
            SELECT {keys}, last_at, n, cents, days,
                   {cut_score_sql("days", kept_cut("recency"), higher_is_better=False)} AS r,
                   {cut_score_sql("n", kept_cut("frequency"), higher_is_better=True)} AS f,
                   {cut_score_sql("cents", kept_cut("monetary"), higher_is_better=True)} AS m
            FROM measured AS c
        )
        SELECT ranked.*, {grid} AS grp FROM ranked"""


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
        roots = networks()
        if len(roots) > 1:  # the networks these buyers bought in (one network: no read)
            orders = quote(Order._meta.db_table)
            paths = fetch(
                f"SELECT DISTINCT unit_path FROM {orders} WHERE {any_of('contact_id', 'ids')}",
                {"ids": id_list(touched)},
            )
            roots = sorted({path[: OrgNode.steplen] for (path,) in paths})
        for root in roots:
            lock_network(root)
            _refresh_network(root, now, touched)


def _refresh_network(root: str, now: dt.datetime, touched: list[int]) -> None:
    network_cut = CutPoints.objects.filter(level=CutPoints.Level.PERSON, unit_path=root).first()
    frame = frame_for(root, now)
    if network_cut is not None:
        frame = Frame(root, network_cut.as_of, network_cut.window_start, frame.grid)
    orders, cuts = quote(Order._meta.db_table), quote(CutPoints._meta.db_table)
    grid, grid_params = grid_case(frame.grid)
    params = {
        "start": adapt(frame.window_start),
        "prefix": root + "%",
        "ids": id_list(touched),
        **grid_params,
    }
    # Materialized: inlined, the planner put the store cut points outside and ran the
    # buyers' aggregate again for each of the 203 (130 s for 33,000 buyers).
    temp_table("rfm_touched", _touched_aggregates(orders), params, analyze=False)
    paths = [row[0] for row in fetch("SELECT DISTINCT unit_path FROM rfm_touched WHERE n > 0")]
    ranked = set(
        CutPoints.objects.filter(level=CutPoints.Level.RECORD, unit_path__in=paths).values_list(
            "unit_path", flat=True
        )
    )
    for path in sorted(set(paths) - ranked):  # a store's first buyers: rank it whole once
        with set_based():
            score_records(frame, prefix=path)
            execute("DROP TABLE rfm_record_buyers")
    temp_table(
        "rfm_scored",
        f"""
        WITH measured AS (
            SELECT b.*, {days_sql("b.last_at", "c.as_of")} AS days, c.recency, c.frequency,
                   c.monetary
            FROM rfm_touched AS b
            JOIN {cuts} AS c ON c.level = 'record' AND c.unit_path = b.unit_path
            WHERE b.n > 0
        ), {_ranked("contact_id, unit_path", grid)}
        """,
        params,
        analyze=False,
    )
    execute("DROP TABLE rfm_touched")
    _upsert(RecordScore._meta.db_table, "contact_id", "unit_path LIKE %(prefix)s", touched,
            params, now)  # fmt: skip
    if network_cut is None:
        with set_based():
            score_persons(frame)
        return
    _refresh_persons(frame, now, touched)


def _refresh_persons(frame: Frame, now: dt.datetime, touched: list[int]) -> None:
    records, links = quote(RecordScore._meta.db_table), quote(RecordLink._meta.db_table)
    cuts = quote(CutPoints._meta.db_table)
    prefix = {"prefix": frame.root + "%", "ids": id_list(touched)}
    # The touched records' persons and all their records; a buyer not linked: itself (its
    # score row, below, must be in this network). One link at most a record.
    own = fetch(
        f"SELECT contact_id, person_id, CASE WHEN unit_path LIKE %(prefix)s THEN 1 ELSE 0 END "
        f"FROM {links} WHERE {any_of('contact_id', 'ids')}",
        prefix,
    )
    persons = {person for _c, person, here in own if here}
    members = (
        fetch(
            f"SELECT contact_id, person_id FROM {links} WHERE {any_of('person_id', 'persons')}",
            {"persons": id_list(persons)},
        )
        if persons
        else []
    )
    linked = {contact for contact, _p, _h in own}
    members += [(contact, -contact) for contact in touched if contact not in linked]
    keys = {key for _c, key in members} | {-c for c in touched}
    # A table with statistics: read inline from the JSON, the members' join with the score
    # rows took 1.2 s for 33,000 buyers against 0.5 s.
    temp_table(
        "rfm_members",
        "SELECT CAST(value ->> 0 AS BIGINT) AS contact_id, CAST(value ->> 1 AS BIGINT) AS key "
        "FROM json_array_elements(%(members)s::json)"
        if connection.vendor == "postgresql"
        else "SELECT json_extract(value, '$[0]') AS contact_id, json_extract(value, '$[1]') AS key "
        "FROM json_each(%(members)s)",
        {"members": json.dumps([list(m) for m in members])},
    )
    grid, grid_params = grid_case(frame.grid)
    params = {
        "root": frame.root,
        "prefix": frame.root + "%",
        "member_ids": id_list(c for c, _k in members),
        **grid_params,
    }
    temp_table(
        "rfm_scored",
        f"""
        WITH buyers AS MATERIALIZED (
            SELECT m.key, MAX(CASE WHEN m.key > 0 THEN m.key END) AS person_id,
                   MAX(CASE WHEN m.key < 0 THEN -m.key END) AS contact_id,
                   MAX(s.last_purchase_at) AS last_at, SUM(s.purchases) AS n,
                   SUM(CAST(ROUND(s.net * 100) AS BIGINT)) AS cents
            FROM rfm_members AS m JOIN {records} AS s ON s.contact_id = m.contact_id
            WHERE {any_of("s.contact_id", "member_ids")}
                  AND (m.key > 0 OR s.unit_path LIKE %(prefix)s)
            GROUP BY m.key
        ), measured AS (
            SELECT b.*, {days_sql("b.last_at", "c.as_of")} AS days, c.recency, c.frequency,
                   c.monetary, c.unit_path
            FROM buyers AS b JOIN {cuts} AS c ON c.level = 'person' AND c.unit_path = %(root)s
        ), {_ranked("key, person_id, contact_id, unit_path", grid)}
        """,
        params,
        analyze=False,
    )
    # A record linked since the last run no longer stands for itself: its own key goes.
    _upsert(PersonScore._meta.db_table, "key", "unit_path = %(root)s", keys, params, now)
    execute("DROP TABLE rfm_members")


def _upsert(
    table: str, key: str, scope: str, candidates: Iterable[int], params: dict, now: dt.datetime
) -> None:
    """Write the rows of ``rfm_scored`` into ``table`` where they changed (one statement:
    each row's key looked up once in the table's unique index), and delete the rows of
    ``candidates`` (the keys the refresh may have changed) within ``scope`` that are no
    longer buyers: usually none, and then no statement. UPDATE … FROM, INSERT … NOT
    EXISTS and DELETE … NOT EXISTS each looked every touched key up (33,000 buyers: 2.4 s
    of the 9 s refresh)."""
    values = score_values(key)
    table_q, key_q = quote(table), quote(key)
    columns = [quote(c) for c in values]
    changed = " OR ".join(f"t.{c} IS DISTINCT FROM excluded.{c}" for c in columns)
    # WHERE 1 = 1: SQLite's parser needs a WHERE before ON CONFLICT in INSERT … SELECT.
    execute(
        f"INSERT INTO {table_q} AS t ({key_q}, {', '.join(columns)}, computed_at) "
        f"SELECT s.{key}, {', '.join(values.values())}, %(computed_at)s "
        f"FROM rfm_scored AS s WHERE 1 = 1 ON CONFLICT ({key_q}) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in [*columns, "computed_at"])
        + f" WHERE {changed}",
        {**params, "computed_at": now},
    )
    scored = {row[0] for row in fetch(f"SELECT {key} FROM rfm_scored")}
    execute("DROP TABLE rfm_scored")
    gone = [k for k in candidates if k not in scored]
    if gone:
        execute(
            f"DELETE FROM {table_q} WHERE {any_of(key_q, 'gone')} AND {scope}",
            {**params, "gone": id_list(gone)},
        )
