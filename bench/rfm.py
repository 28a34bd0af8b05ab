"""RFM on PostgreSQL: the full run and the incremental update (issue 21's figures).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_rfm_bench \
      DATABASE_APP_ROLE=enseigne_app ENSEIGNE_DATA_DIR=/tmp/ens-rfm \
      .venv/bin/python bench/rfm.py --lines 1000000 --people 200000

Defaults: 10,000,000 order lines (3 an order) and 2,000,000 people in 200 stores; one
person in ten also has a record in a second store (linked to the same person); orders over
30 months (the window keeps 24), 1 in 30 made of returns. The database is dropped and
created again; the rows are loaded with SQL as the owner (foreign-key triggers off), the
runs go as the app role under row-level security, scope ALL, like the worker.

Timed, in the same run:
- baseline: the bare ``SELECT contact_id, max, count, sum … GROUP BY contact_id`` over the
  same orders (counted, not fetched): the floor for reading the purchases once;
- the first full run (empty score tables: every row inserted);
- the nightly full run a day later (rows left alone where nothing changed);
- the incremental update after a day's 100,000 new lines (``--new-lines``): those buyers'
  aggregates and scores (records and persons), against the last full run's cut points.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from _setup import django_ready, recreate_database, table

STORES = 200


def load(people: int, lines: int) -> tuple[int, int]:
    """Load stores, records, links, orders and lines; return (records, orders)."""
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from enseigne.network.models import OrgNode
    from tests.factories import build_world

    world = build_world()
    with db_scope(ALL):
        for number in range(STORES):
            world.region_a.refresh_from_db()
            network.node_create(
                actor=None,
                parent=world.region_a,
                kind="unit",
                name=f"Magasin {number}",
                code=f"magasin-{number}",
            )
        units = list(
            OrgNode.objects.filter(path__startswith=world.region_a.path, depth=3, kind="unit")
            .order_by("path")
            .values_list("id", "path")
        )
    records = people + people // 10
    orders = lines // 3
    stores = len(units)
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no FK triggers: bench load
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute(
            "CREATE TEMP TABLE bench_units AS SELECT ordinality - 1 AS n, id, path "
            "FROM unnest(%s::bigint[], %s::text[]) WITH ORDINALITY AS u(id, path)",
            [[u[0] for u in units], [u[1] for u in units]],
        )
        # Record k (1-based) is person ((k-1) % people) + 1; records past ``people`` are the
        # second records of one person in ten, in the next store.
        conn.execute(
            """
            INSERT INTO identity_recordlink (contact_id, person_id, unit_path, method, linked_at)
            SELECT k, ((k - 1) %% %(people)s) + 1, u.path, 'email', now()
            FROM generate_series(1, %(records)s) AS k
            JOIN bench_units u ON u.n = (k %% %(stores)s)
            """,
            {"people": people, "records": records, "stores": stores},
        )
        conn.execute(
            "INSERT INTO identity_person (id, created_at) "
            "SELECT p, now() FROM generate_series(1, %s) AS p",
            [people],
        )
        conn.execute(
            """
            INSERT INTO commerce_order (id, public_id, unit_id, unit_path, external_id,
                contact_id, occurred_at, total, channel, source, created_at)
            SELECT o, gen_random_uuid(), u.id, u.path, 'T' || o, c,
                   now() - (random() * 900) * interval '1 day',
                   CASE WHEN o %% 30 = 0 THEN -round((random() * 80 + 5)::numeric, 2)
                        ELSE round((random() * 300 + 5)::numeric, 2) END,
                   'in_store', 'api', now()
            FROM (SELECT o, 1 + floor(random() * %(records)s)::bigint AS c
                  FROM generate_series(1, %(orders)s) AS o) AS g
            JOIN bench_units u ON u.n = (g.c %% %(stores)s)
            """,
            {"records": records, "orders": orders, "stores": stores},
        )
        conn.execute(
            """
            INSERT INTO commerce_orderline (order_id, unit_path, position, sku, unknown_sku,
                category, quantity, amount, discount, is_return)
            SELECT o.id, o.unit_path, p, 'SKU-' || (o.id % 500), false, 'Cat', 1,
                   o.total / 3, 0, o.total < 0
            FROM commerce_order o, generate_series(0, 2) AS p
            """
        )
        conn.execute("SELECT setval('commerce_order_id_seq', %s)", [orders])
        conn.execute("ANALYZE")
    return records, orders


def reset(database: str) -> tuple[int, int]:
    """Back to the state ``load`` leaves: no new day's orders, no RFM rows; (records, orders)."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("DELETE FROM commerce_order WHERE external_id LIKE 'N%'")
        conn.execute(
            "TRUNCATE rfm_recordscore, rfm_personscore, rfm_cutpoints, rfm_pendingbuyer, "
            "rfm_groupsnapshot"
        )
        # Every table vacuumed: no run pays for setting the hint bits of freshly loaded rows.
        conn.execute("VACUUM ANALYZE")
        records = conn.execute("SELECT count(*) FROM identity_recordlink").fetchone()[0]
        orders = conn.execute("SELECT count(*) FROM commerce_order").fetchone()[0]
    return records, orders


STATEMENTS: list[tuple[float, str]] = []


def _timing(execute, sql, params, many, context):
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        STATEMENTS.append((time.perf_counter() - start, " ".join(str(sql).split())))


CPU: list[tuple[float, float]] = []  # each timed step's CPU seconds: Python, PostgreSQL


def timed(action, label: str = "", statements: bool = False) -> float:
    """Wall seconds of ``action``; its CPU (this process's and its database session's) is
    appended to ``CPU``: on a shared machine the wall time is partly the neighbours'."""
    from django.db import connection
    from import_csv import _session_cpu

    STATEMENTS.clear()
    database_cpu = _session_cpu() or 0.0
    python_cpu = time.process_time()
    start = time.perf_counter()
    if statements:
        with connection.execute_wrapper(_timing):
            action()
    else:
        action()
    took = time.perf_counter() - start
    CPU.append((time.process_time() - python_cpu, (_session_cpu() or 0.0) - database_cpu))
    if statements:
        print(f"\n{label}: {took:.2f} s, slowest statements")
        for seconds, sql in sorted(STATEMENTS, reverse=True)[:14]:
            print(f"  {seconds:7.2f} s  {sql[:150]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--people", type=int, default=2_000_000)
    parser.add_argument("--new-lines", type=int, default=100_000)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database a previous run loaded (same --lines/--people): drop its day of "
        "new orders and every RFM row, then time again (the load takes minutes at full size)",
    )
    parser.add_argument(
        "--statements", action="store_true", help="also print each run's slowest statements"
    )
    args = parser.parse_args()
    database = os.environ["DATABASE_URL"]
    assert database.startswith("postgres"), "bench/rfm.py runs on PostgreSQL"
    if not args.reuse:
        recreate_database(database)
    django_ready()

    from django.db import connection
    from django.utils import timezone

    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import OrgNode
    from enseigne.rfm import scoring
    from enseigne.rfm.models import PersonScore, RecordScore

    started = time.perf_counter()
    records, orders = reset(database) if args.reuse else load(args.people, args.lines)
    print(
        f"{'reused' if args.reuse else 'loaded'} {args.lines:,} lines, {orders:,} orders, {records:,} records, "
        f"{args.people:,} people in {time.perf_counter() - started:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    connection.close()
    now = timezone.now()

    def baseline() -> None:
        with db_scope(ALL), connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM (SELECT contact_id, max(occurred_at), count(*), sum(total) "
                "FROM commerce_order GROUP BY contact_id) AS s"
            )
            cursor.fetchone()

    def cpu() -> str:
        python, database = CPU[-1]
        return f"{python:.2f} + {database:.2f}"

    rows = [("step", "seconds", "CPU s: Python + PostgreSQL", "rows")]
    took = timed(baseline)
    rows.append(("baseline: GROUP BY contact_id", f"{took:.2f}", cpu(), f"{orders:,} orders"))
    with db_scope(ALL):
        first = timed(lambda: scoring.full_run(as_of=now), "full, empty", args.statements)
        counts = f"{RecordScore.objects.count():,} records, {PersonScore.objects.count():,} persons"
    rows.append(("full run, empty tables", f"{first:.2f}", cpu(), counts))
    with db_scope(ALL):
        nightly = timed(
            lambda: scoring.full_run(as_of=now + dt.timedelta(days=1)),
            "full, a day later",
            args.statements,
        )
    rows.append(("full run, a day later", f"{nightly:.2f}", cpu(), counts))

    # A day's new lines: orders of 3 lines for random records, today (loaded as the owner).
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "CREATE TEMP TABLE bench_units AS SELECT row_number() OVER (ORDER BY path) - 1 AS n, "
            "id, path FROM network_orgnode WHERE depth = 3 AND kind = 'unit' AND path LIKE %s",
            [OrgNode.objects.get(depth=2, code="sud-est").path + "%"],
        )
        stores = conn.execute("SELECT count(*) FROM bench_units").fetchone()[0]
        assert stores == STORES + 2
        touched = [
            row[0]
            for row in conn.execute(
                """
                INSERT INTO commerce_order (public_id, unit_id, unit_path, external_id,
                    contact_id, occurred_at, total, channel, source, created_at)
                SELECT gen_random_uuid(), u.id, u.path, 'N' || o, c,
                       %(at)s - random() * interval '10 hours',
                       round((random() * 300 + 5)::numeric, 2), 'in_store', 'api', now()
                FROM (SELECT o, 1 + floor(random() * %(records)s)::bigint AS c
                      FROM generate_series(1, %(orders)s) AS o) AS g
                JOIN bench_units u ON u.n = (g.c %% %(stores)s)
                RETURNING contact_id
                """,
                {
                    "at": now + dt.timedelta(days=1),
                    "records": records,
                    "orders": args.new_lines // 3,
                    "stores": stores,
                },
            ).fetchall()
        ]
    new_orders = touched
    touched = sorted(set(touched))
    with db_scope(ALL):
        incremental = timed(
            lambda: scoring.refresh_buyers(touched, now=now), "incremental", args.statements
        )
    rows.append(
        (
            f"incremental: {args.new_lines:,} new lines",
            f"{incremental:.2f}",
            cpu(),
            f"{len(new_orders):,} orders, {len(touched):,} buyers",
        )
    )
    table(
        f"RFM on PostgreSQL ({args.lines:,} lines / {args.people:,} people; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
        rows,
    )


if __name__ == "__main__":
    main()
