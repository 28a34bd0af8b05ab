"""Personas on PostgreSQL: the network's assignment (records, then persons, then the
month's counts) against the cost of counting its personas' rules once each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_personas_bench \
      DATABASE_APP_ROLE=enseigne_app ENSEIGNE_DATA_DIR=/tmp/ens-personas \
      .venv/bin/python bench/personas.py --people 200000 --lines 600000

The orders, persons and links are ``bench/rfm.py``'s load (202 stores, one person in ten
with a second record); the records are added with SQL (consent, customer, language varied).
RFM's full run gives the groups; three personas: "loyal and reachable" (RFM group in three
groups AND e-mail consent valid), "customers", "English speakers".

Timed, in the same run, as the app role under row-level security (scope ALL, the worker):
- baseline: the three personas' rules counted one after the other, as HQ's segment count
  (``segment_count``): what the live counts cost;
- the assignment (``assignment.assign_network``): three ``INSERT … SELECT`` for the records,
  two for the persons (linked, not linked), and the month's counts.
"""

from __future__ import annotations

import argparse
import os
import time

from _setup import django_ready, recreate_database
from rfm import load

RULES = {
    "Fidèles joignables": {
        "match": "all",
        "rules": [
            {
                "field": "rfm_group",
                "op": "equals",
                "value": ["champions", "loyal", "potential_loyalists"],
            },
            {"field": "consent_email", "op": "is_valid"},
        ],
    },
    "Clients": {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]},
    "Anglophones": {
        "match": "all",
        "rules": [{"field": "language", "op": "equals", "value": "en"}],
    },
}


def add_records(records: int) -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            """
            INSERT INTO contacts_contact (id, public_id, unit_path, unit_id, email, first_name,
                last_name, language, is_customer, attributes, email_consent, sms_consent,
                created_at, updated_at, open_tracking)
            SELECT l.contact_id, gen_random_uuid(), l.unit_path, n.id,
                   'p' || l.contact_id || '@example.com', 'P', 'N',
                   CASE WHEN l.contact_id %% 5 = 0 THEN 'en' ELSE 'fr' END,
                   l.contact_id %% 3 = 0, '{}'::jsonb,
                   (ARRAY['granted', 'none', 'soft_opt_in', 'withdrawn'])[1 + l.contact_id %% 4],
                   'none', now(), now(), false
            FROM identity_recordlink l JOIN network_orgnode n ON n.path = l.unit_path
            WHERE l.contact_id <= %s
            """,
            [records],
        )
        conn.execute("SELECT setval('contacts_contact_id_seq', %s)", [records])
        conn.execute("ANALYZE")


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--lines", type=int, default=600_000)
    args = parser.parse_args()
    database = os.environ["DATABASE_URL"]
    assert database.startswith("postgres"), "bench/personas.py runs on PostgreSQL"
    recreate_database(database)
    django_ready()

    from django.db import connection

    from enseigne.contacts.segments import segment_count
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import OrgNode, User
    from enseigne.personas import assignment
    from enseigne.personas.models import PersonaPerson, PersonaRecord
    from enseigne.personas.services import persona_save
    from enseigne.rfm import scoring

    started = time.perf_counter()
    records, _orders = load(args.people, args.lines)
    add_records(records)
    connection.close()
    with db_scope(ALL):
        scoring.full_run()
    hq = User.objects.get(email="hq@example.com")
    root = OrgNode.objects.get(depth=1).path
    with db_scope(ALL):
        for name, rules in RULES.items():
            persona_save(actor=hq, name=name, rules=rules)
    print(
        f"loaded {records:,} records, {args.people:,} people, {args.lines:,} lines in "
        f"{time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores"
    )

    def baseline() -> None:
        with db_scope(ALL):
            for rules in RULES.values():
                segment_count(hq, rules)

    rows = [("step", "seconds", "rows")]
    rows.append(("baseline: the 3 rules counted (HQ)", f"{timed(baseline):.2f}", ""))
    for label in ("assignment, empty tables", "assignment again (rows replaced)"):
        with db_scope(ALL):
            seconds = timed(lambda: assignment.assign_network(root))
            placed = (
                f"{PersonaRecord.objects.count():,} records, "
                f"{PersonaPerson.objects.count():,} persons"
            )
        rows.append((label, f"{seconds:.2f}", placed))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width[i]) for i, cell in enumerate(row)))


if __name__ == "__main__":
    main()
