"""Segment count and contact-list benchmarks over a generated network.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_bench DATABASE_APP_ROLE=enseigne_app \
        .venv/bin/python bench/segments.py --contacts 10000000 --units 100
    ENSEIGNE_DATA_DIR=/tmp/bench-sqlite .venv/bin/python bench/segments.py --contacts 1000000 --units 100

Contacts are generated inside the database (INSERT … SELECT generate_series) under the
same RLS policies the app runs with. Each figure is the median of 5 runs, printed beside
a baseline from the same run: a bare COUNT(*) of the table the scope selects.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import bench_network, bench_users, django_ready, table

RULES = {
    "match": "all",
    "rules": [
        {"field": "consent_email", "op": "is_valid"},
        {"field": "is_customer", "op": "is_true"},
        {"field": "created_at", "op": "in_last_days", "value": 365},
    ],
}


def timed(fn, repeat=5):
    results, values = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        values = fn()
        results.append((time.perf_counter() - start) * 1000)
    return statistics.median(results), values


def generate(units, per_unit):
    from django.db import connection

    with connection.cursor() as cursor:
        for unit in units:
            if connection.vendor == "postgresql":
                cursor.execute(
                    """
                    INSERT INTO contacts_contact (public_id, unit_id, unit_path, email, phone, first_name, last_name,
                        language, is_customer, attributes, email_consent, sms_consent, created_at, updated_at)
                    SELECT gen_random_uuid(), %s, %s, 'c' || g || '.' || %s || '@example.com', NULL, 'Prénom', 'Nom' || g,
                        'fr', g %% 2 = 0, '{}'::jsonb,
                        CASE WHEN g %% 10 < 7 THEN 'granted' ELSE 'none' END,
                        CASE WHEN g %% 10 < 3 THEN 'granted' ELSE 'none' END,
                        now() - (g %% 730) * interval '1 day', now()
                    FROM generate_series(1, %s) AS g
                    """,
                    [unit.pk, unit.path, unit.code, per_unit],
                )
            else:
                cursor.execute(
                    """
                    WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < %s)
                    INSERT INTO contacts_contact (public_id, unit_id, unit_path, email, phone, first_name, last_name,
                        language, is_customer, attributes, email_consent, sms_consent, created_at, updated_at)
                    SELECT lower(hex(randomblob(16))), %s, %s, 'c' || n || '.' || %s || '@example.com', NULL, 'Prénom', 'Nom' || n,
                        'fr', n %% 2 = 0, '{}',
                        CASE WHEN n %% 10 < 7 THEN 'granted' ELSE 'none' END,
                        CASE WHEN n %% 10 < 3 THEN 'granted' ELSE 'none' END,
                        datetime('now', '-' || (n %% 730) || ' days'), datetime('now')
                    FROM g
                    """,
                    [per_unit, unit.pk, unit.path, unit.code],
                )
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE contacts_contact")
        else:
            cursor.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=100)
    args = parser.parse_args()
    django_ready()
    from django.db import connection, transaction
    from django.test import Client

    from enseigne.contacts.models import Contact
    from enseigne.contacts.segments import segment_count
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from enseigne.network.models import OrgNode

    per_unit = args.contacts // args.units
    with db_scope(ALL):
        roles = network.builtin_roles_ensure()
        root = OrgNode.objects.filter(code="bench-seg").first()
        if (
            root is None
            or Contact.objects.filter(unit_path__startswith=root.path).count()
            != per_unit * args.units
        ):
            if root is not None:
                raise SystemExit("bench-seg exists with another size: use a fresh database")
            root, units = bench_network("bench-seg", args.units)
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

    def count_as(user, paths):
        with db_scope(paths):
            return segment_count(user, RULES)

    def bare_count(paths):
        with db_scope(paths):
            return Contact.objects.filter(unit_path__startswith=paths[0]).count()

    network_ms, network_n = timed(lambda: count_as(hq, [root.path]))
    bare_network_ms, total = timed(lambda: bare_count([root.path]))
    unit_ms, unit_n = timed(lambda: count_as(manager, [units[0].path]))
    bare_unit_ms, unit_total = timed(lambda: bare_count([units[0].path]))

    client = Client()
    client.force_login(manager)
    assert client.get("/contacts/").status_code == 200
    page_ms, page = timed(lambda: client.get("/contacts/?page=3"), repeat=10)
    search_ms, search = timed(lambda: client.get("/contacts/?q=Nom12"), repeat=10)
    assert page.status_code == 200 and search.status_code == 200

    rows = [("measure", "median ms", "result", "baseline (same run)")]
    rows += [
        (
            f"3-condition segment, network ({total:,} contacts)",
            f"{network_ms:,.0f}",
            f"{network_n:,}",
            f"bare COUNT(*) {bare_network_ms:,.0f} ms",
        ),
        (
            f"3-condition segment, one unit ({unit_total:,})",
            f"{unit_ms:,.1f}",
            f"{unit_n:,}",
            f"bare COUNT(*) {bare_unit_ms:,.1f} ms",
        ),
        (
            "contact list page 3 (50 rows), one unit",
            f"{page_ms:,.1f}",
            "200",
            "test client, full request",
        ),
        (
            "contact search 'Nom12', one unit",
            f"{search_ms:,.1f}",
            "200",
            "test client, full request",
        ),
    ]
    table(f"Segments and contact list on {connection.vendor}", rows)


if __name__ == "__main__":
    main()
