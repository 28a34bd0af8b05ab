"""Write-time person matching (issue 20) on a network of ``--records`` records.

    python bench/identity_links.py --records 1000000 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_identity

Builds ``--units`` units holding ``--records`` records of which about 20 % are a second
record of someone another unit knows (same e-mail, and the same phone where both have
one), then measures, each beside its baseline in the same run:

- linking every existing record (the data migration's ``link_unlinked``);
- one record written through the product's own service (``contact_create``, what the form
  and the API run), half of them joining an existing person: p50/p95 with matching on,
  and the same calls with the record hooks off;
- a CSV import (``--import-rows`` new people) through the product's import, with matching
  on and off (the CPU of the import's writer thread and database session beside the wall
  time: only that ratio holds on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def generate(units, records: int) -> None:
    from django.db import connection

    people = int(records * 0.8)
    per_unit = records // len(units)
    with connection.cursor() as cursor:
        for i, unit in enumerate(units):
            cursor.execute(
                """
                INSERT INTO contacts_contact (public_id, unit_id, unit_path, email, phone, first_name, last_name,
                    language, is_customer, attributes, email_consent, sms_consent, open_tracking, created_at, updated_at)
                SELECT gen_random_uuid(), %(unit)s, %(path)s, 'marie.' || p || '.martin@orange.fr',
                    CASE WHEN p %% 10 < 7 THEN '+336' || lpad(p::text, 8, '0') END, 'Prénom', 'Nom' || p,
                    'fr', true, '{}'::jsonb, 'granted', 'none', false, now(), now()
                FROM (SELECT (%(start)s + g) %% %(people)s + 1 AS p FROM generate_series(1, %(n)s) AS g) AS s
                ON CONFLICT DO NOTHING
                """,
                {
                    "unit": unit.pk,
                    "path": unit.path,
                    "start": i * per_unit,
                    "people": people,
                    "n": per_unit,
                },
            )
        cursor.execute("ANALYZE contacts_contact")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--database", required=True)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="baseline/matched import pairs, alternately baseline first and second",
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("DATABASE_APP_ROLE", "enseigne_app")
    from _setup import django_ready, recreate_database, table

    recreate_database(args.database)
    django_ready()
    from django.conf import settings
    from django.db import connection, transaction

    from enseigne.contacts import records as record_hooks
    from enseigne.contacts import services as contacts
    from enseigne.contacts.models import Contact
    from enseigne.identity.linking import link_unlinked
    from enseigne.identity.models import Person, RecordLink
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network

    def hooks(on: bool) -> None:
        settings.ENSEIGNE_RECORD_HOOKS = ["enseigne.identity.linking.hooks"] if on else []
        record_hooks._hooks.cache_clear()

    with db_scope(ALL):
        roles = network.builtin_roles_ensure()
        root = network.network_create(
            actor=None,
            name="Bench",
            code="bench-id",
            legal_name="Bench",
            sending_domain="example.org",
        )
        units = [
            network.node_create(
                actor=None, parent=root, kind="unit", name=f"U{i}", code=f"bench-id-u{i}"
            )
            for i in range(args.units)
        ]
        hq = network.user_create(
            actor=None, email="bench-hq@example.org", password="bench-password-1"
        )
        network.membership_grant(actor=None, user=hq, node=root, role=roles["hq_admin"])
        started = time.perf_counter()
        generate(units, args.records)
        generated = time.perf_counter() - started
    # Outside the set-up's transaction: link_unlinked commits page by page, as in production.
    started = time.perf_counter()
    linked = link_unlinked()
    link_all = time.perf_counter() - started
    with db_scope(ALL):
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE identity_recordlink")
            cursor.execute("ANALYZE identity_person")
        records = Contact.objects.count()
        people = Person.objects.count()
        shared = RecordLink.objects.exclude(method="alone").count()

    def writes(on: bool, offset: int) -> list[float]:
        hooks(on)
        timings = []
        for n in range(args.writes):
            unit = units[(n * 7 + 3) % len(units)]
            # Every other write is someone another unit knows; the rest are new people.
            known = n % 2 == 0
            email = (
                f"marie.{(n * 977 + offset) % (args.records // 2) + 1}.martin@orange.fr"
                if known
                else f"new.{offset}.{n}@sfr.fr"
            )
            with db_scope([unit.path]):
                if Contact.objects.filter(unit=unit, email=email).exists():
                    continue
                started = time.perf_counter()
                with transaction.atomic():
                    contacts.contact_create(
                        actor=hq, unit=unit, data={"email": email, "first_name": "Bench"}
                    )
                timings.append(time.perf_counter() - started)
        return timings

    plain = writes(False, 11)
    matched = writes(True, 13)

    def p(values, q):
        return statistics.quantiles(values, n=100)[q - 1] * 1000

    import import_csv

    def import_once(on: bool, code: str, path: Path) -> import_csv.Timing:
        hooks(on)
        with db_scope(ALL):
            unit = network.node_create(actor=None, parent=root, kind="unit", name=code, code=code)
        imp = import_csv.queued_import(unit, path)
        return import_csv.timed_run(imp.pk)

    # Each pair imports its own file of people new to the network (prenom.N.nom@…): every
    # row probes the network's keys and writes its person, on indexes holding --records
    # entries; the pairs alternate which import goes first.
    pairs = []
    for turn in range(args.repeat):
        path = Path(tempfile.mkdtemp()) / "contacts.csv"
        import_csv.make_csv(path, args.import_rows, first=turn * args.import_rows)
        plain_first = import_once(False, f"bench-id-plain-{turn}", path) if turn % 2 == 0 else None
        on = import_once(True, f"bench-id-matched-{turn}", path)
        pairs.append((on, plain_first or import_once(False, f"bench-id-plain-{turn}", path)))
    hooks(True)

    table(
        f"Person matching at write time, {records:,} records",
        [
            ("measure", "value"),
            ("database", connection.vendor),
            (
                "records / people / records joined to another",
                f"{records:,} / {people:,} / {shared:,}",
            ),
            ("records generated (SQL, no matching)", f"{generated:.1f} s"),
            (
                "linking every existing record (link_unlinked)",
                f"{link_all:.1f} s = {linked / link_all:,.0f} records/s",
            ),
            (
                "one record through contact_create, matching on: p50 / p95",
                f"{p(matched, 50):.1f} / {p(matched, 95):.1f} ms",
            ),
            (
                "baseline: the same, matching off: p50 / p95",
                f"{p(plain, 50):.1f} / {p(plain, 95):.1f} ms",
            ),
            (f"import of {args.import_rows:,} people new to the network into one unit", ""),
            *import_csv.matching_cost_rows(pairs, args.import_rows),
        ],
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
