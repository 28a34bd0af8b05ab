"""A behaviour segment over a network's contacts and order lines (issue 21's figure).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_behaviour DATABASE_APP_ROLE=enseigne_app \
      ENSEIGNE_DATA_DIR=/tmp/ens-behaviour .venv/bin/python bench/behaviour.py \
      --contacts 10000000 --units 100

The segment is the issue's: "bought in category X in the last 90 days AND RFM group in
(À risque, À ne pas perdre) AND e-mail consent", counted live as the segment builder counts
it (``segments.segment_count``), as the row-level-security-bound app role: HQ over the
network, a store manager over one store.

Contacts are generated in the database as bench/segments.py generates them (70 % with
e-mail consent); each contact has 0, 1, 1, 2, 3 or 3 orders (by its id; 1.67 on average)
over the last two years, of 3 lines each (``--lines-per-order``) in 40 categories, 1 order
in 30 a return; so 10,000,000 contacts carry about 16,700,000 orders and 50,000,000 lines.
Orders and lines are loaded as the owner with foreign-key triggers off (a bench load, not
the product's import path: bench/orders_ingest.py measures that). RFM groups come from the
product's own full run (``rfm.scoring.full_run``), timed here too.

The category condition reads the buyers' purchase summary (``commerce.summaries``), which
the product's writers keep through the order hook; the bench loads orders around them, so
it rebuilds the summary (``summaries.rebuild``, timed) and then VACUUM ANALYZEs the tables
it loaded, as autovacuum would (the visibility map lets the summary's range be read from
its index alone).

``--keep`` reuses the database when it already holds a network of this size (generation
takes most of an hour at full size); an empty summary is rebuilt. Each figure is the median
of 5 runs, printed beside baselines of the same run: a bare COUNT(*) of the contacts in
scope, the consent condition alone, and the same segment with the category condition read
from the raw order lines (the compile before the summary).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _setup import bench_network, bench_users, django_ready, recreate_database, table
from segments import generate

CODE = "bench-behaviour"
CATEGORIES = 40


def rules(category: str, days: int = 90) -> dict:
    return {
        "match": "all",
        "rules": [
            {
                "field": "bought_category",
                "op": "category_in_last_days",
                "value": category,
                "days": days,
            },
            {"field": "rfm_group", "op": "equals", "value": ["at_risk", "cannot_lose"]},
            {"field": "consent_email", "op": "is_valid"},
        ],
    }


CONSENT_ONLY = {"match": "all", "rules": [{"field": "consent_email", "op": "is_valid"}]}


def raw_lines_condition(category: str, days: int):
    """The category condition as it was compiled before the summary: the candidates'
    orders, then each order's lines (kept here as the same-run baseline)."""
    import datetime as dt

    from django.db.models import Exists, OuterRef, Q
    from django.utils import timezone

    from enseigne.commerce.models import OrderLine

    lines = OrderLine.objects.filter(
        is_return=False,
        order__contact__isnull=False,
        order__occurred_at__gte=timezone.now() - dt.timedelta(days=days),
        category__iexact=category,
        order__contact=OuterRef("pk"),
    )
    return Q(Exists(lines))


def without_category(segment: dict) -> dict:
    return {**segment, "rules": [r for r in segment["rules"] if r["field"] != "bought_category"]}


def vacuum_analyze(database: str) -> None:
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        for name in ("commerce_order", "commerce_orderline", "commerce_categorypurchase"):
            conn.execute(f"VACUUM ANALYZE {name}")
        conn.execute("VACUUM ANALYZE rfm_recordscore")
        conn.execute("VACUUM ANALYZE rfm_personscore")


def timed(fn, repeat=5):
    results, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        results.append((time.perf_counter() - start) * 1000)
    return statistics.median(results), value


def load_orders(database: str, root_path: str, lines_per_order: int) -> tuple[int, int]:
    """Orders and lines for every contact of the network, as the owner (FK triggers off)."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute("SELECT setseed(0.21)")
        conn.execute(
            """
            INSERT INTO commerce_order (public_id, unit_id, unit_path, external_id,
                contact_id, occurred_at, total, channel, source, created_at)
            SELECT gen_random_uuid(), c.unit_id, c.unit_path, 'B' || c.id || '-' || k, c.id,
                   now() - random() * interval '730 days',
                   CASE WHEN (c.id + k) %% 30 = 0 THEN -round((random() * 80 + 5)::numeric, 2)
                        ELSE round((random() * 300 + 5)::numeric, 2) END,
                   CASE WHEN (c.id + k) %% 4 = 0 THEN 'online' ELSE 'in_store' END,
                   'api', now()
            FROM contacts_contact c,
                 generate_series(1, (ARRAY[0, 1, 1, 2, 3, 3])[c.id %% 6 + 1]) AS k
            WHERE c.unit_path LIKE %s
            """,
            [root_path + "%"],
        )
        conn.execute(
            """
            INSERT INTO commerce_orderline (order_id, unit_path, position, sku, unknown_sku,
                category, quantity, unit_amount, amount, discount, is_return)
            SELECT o.id, o.unit_path, p, 'SKU-' || ((o.id * 7 + p) %% 2000), false,
                   'Cat-' || ((o.id * 13 + p * 7) %% %s), 1, abs(o.total) / %s,
                   o.total / %s, 0, o.total < 0
            FROM commerce_order o, generate_series(0, %s - 1) AS p
            WHERE o.unit_path LIKE %s
            """,
            [CATEGORIES, lines_per_order, lines_per_order, lines_per_order, root_path + "%"],
        )
        conn.execute("ANALYZE")
        orders = conn.execute("SELECT count(*) FROM commerce_order").fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM commerce_orderline").fetchone()[0]
    return orders, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--lines-per-order", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="reuse a network of this size")
    args = parser.parse_args()
    database = os.environ["DATABASE_URL"]
    assert database.startswith("postgres"), "bench/behaviour.py runs on PostgreSQL"
    if not args.keep:
        recreate_database(database)
    django_ready()

    from django.db import connection, transaction
    from django.utils import timezone

    from enseigne.contacts.models import Contact
    from enseigne.contacts.segments import segment_count
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from enseigne.network.models import OrgNode
    from enseigne.rfm import scoring
    from enseigne.rfm.models import RecordScore

    per_unit = args.contacts // args.units
    rows = [("measure", "median ms", "result", "baseline (same run)")]
    fresh = False
    with db_scope(ALL):
        roles = network.builtin_roles_ensure()
        root = OrgNode.objects.filter(code=CODE).first()
        if root is not None:
            found = Contact.objects.filter(unit_path__startswith=root.path).count()
            if found != per_unit * args.units:
                raise SystemExit(f"{CODE} holds {found:,} contacts: drop --keep")
        else:
            fresh = True
            root, units = bench_network(CODE, args.units)
            start = time.perf_counter()
            with transaction.atomic():
                generate(units, per_unit)
            print(
                f"generated {per_unit * args.units:,} contacts in {time.perf_counter() - start:.0f} s"
            )
        units = list(
            OrgNode.objects.filter(path__startswith=root.path, kind="unit").order_by("path")
        )
        hq, manager = bench_users(root, units[0], roles)
    if fresh:
        # The scope's transaction is over: the owner's connection sees the contacts.
        start = time.perf_counter()
        orders, lines = load_orders(database, root.path, args.lines_per_order)
        print(f"{orders:,} orders and {lines:,} lines in {time.perf_counter() - start:.0f} s")
        start = time.perf_counter()
        with db_scope(ALL):
            scoring.full_run(as_of=timezone.now())
            scored = RecordScore.objects.count()
        print(
            f"RFM full run (the product's): {time.perf_counter() - start:.1f} s, {scored:,} records"
        )
    from enseigne.commerce.models import CategoryPurchase
    from enseigne.commerce.summaries import rebuild

    with db_scope(ALL):
        summarised = CategoryPurchase.objects.exists()
    if fresh or not summarised:
        start = time.perf_counter()
        with db_scope(ALL):
            rows_written = rebuild()
        print(
            f"purchase summary rebuilt: {rows_written:,} rows in "
            f"{time.perf_counter() - start:.0f} s"
        )
        start = time.perf_counter()
        vacuum_analyze(database)
        print(f"VACUUM ANALYZE in {time.perf_counter() - start:.0f} s")
    connection.close()

    from enseigne.contacts.segments import segment_contacts

    def raw_count_as(user, path, days):
        with db_scope([path]):
            return (
                segment_contacts(user, without_category(rules("Cat-7", days)))
                .filter(raw_lines_condition("Cat-7", days))
                .count()
            )

    def count_as(user, path, segment):
        with db_scope([path]):
            return segment_count(user, segment)

    def bare(path):
        with db_scope([path]):
            return Contact.objects.filter(unit_path__startswith=path).count()

    for who, user, path in (("network (HQ)", hq, root.path), ("one store", manager, units[0].path)):
        total_ms, total = timed(lambda p=path: bare(p))
        consent_ms, _ = timed(lambda u=user, p=path: count_as(u, p, CONSENT_ONLY))
        # The segment (90 days) is nearly empty on uniform dates: a buyer of the last
        # 90 days is rarely "at risk" in their store; 365 days gives the same plan work to do.
        for days in (90, 365):
            ms, found = timed(lambda u=user, p=path, d=days: count_as(u, p, rules("Cat-7", d)))
            raw_ms, raw_found = timed(lambda u=user, p=path, d=days: raw_count_as(u, p, d))
            assert raw_found == found, (who, days, raw_found, found)
            rows.append(
                (
                    f"{who}: category {days} d AND RFM group AND consent ({total:,} contacts)",
                    f"{ms:,.1f}",
                    f"{found:,}",
                    f"from raw lines {raw_ms:,.1f} ms; bare COUNT(*) {total_ms:,.1f} ms; "
                    f"consent alone {consent_ms:,.1f} ms",
                )
            )
    table(
        f"Behaviour segment on PostgreSQL ({args.contacts:,} contacts, {args.units} stores; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)",
        rows,
    )


if __name__ == "__main__":
    main()
