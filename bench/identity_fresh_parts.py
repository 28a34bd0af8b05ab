"""Where the CPU of linking new people goes, part by part (issue 20, PostgreSQL only).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_bench DATABASE_APP_ROLE=enseigne_app \
        .venv/bin/python bench/identity_fresh_parts.py --records 20000 --repeat 3

Runs ``linking.link_new_records`` on ``--records`` records of people nobody holds (what
an import of new customers hands it), once computing their keys and once with the keys
prepared beforehand (``linking.key_preparer``: the import does it in its helper thread, so
that row's Python is what is left on the writer's thread), then the statement it sends cut
down part by part,
each in a transaction rolled back, and prints the CPU per record of the Python thread
and of the database session (read from /proc: the database must run on this machine).
CPU, not wall time: the parts are a few µs each and the machine is shared. The rows
"+ x" are each the statement's first part plus x, so a part costs its row minus the
"probes" row (the last two: minus the "unnest" row). With ``--upkeep`` (the database's
user must own the tables; the statement itself runs as the app role), what each index,
constraint and row-level security policy of the two inserts costs: the inserts with it
dropped, in the rolled-back transaction, against the inserts with everything. WAL bytes
a record beside each.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import django_ready, table

# The statement of linking._link_fresh, in parts (the same tables, columns and plans).
ROWS = """rec AS (
    SELECT r.*, {fresh} AS fresh
    FROM unnest(string_to_array(%(ids)s, ',')::bigint[], string_to_array(%(paths)s, ','),
        string_to_array(%(ek)s, ',', '')::uuid[], string_to_array(%(pk)s, ',', '')::uuid[])
        AS r (id, unit_path, ek, pk)
), alone AS (
    SELECT id, unit_path, ek, pk, nextval(%(sequence)s::regclass) AS person FROM rec WHERE fresh
)"""
PROBES = """(SELECT 1 FROM identity_recordlink WHERE email_key = r.ek LIMIT 1) IS NULL
    AND (SELECT 1 FROM identity_recordlink WHERE phone_key = r.pk LIMIT 1) IS NULL"""
PEOPLE = """, people AS (
    INSERT INTO identity_person (id, created_at) SELECT person, now() FROM alone
)"""
LINKS = """, links AS (
    INSERT INTO identity_recordlink (contact_id, person_id, unit_path, method, linked_at,
        email_key, phone_key)
    SELECT id, person, unit_path, 'alone', now(), ek, pk FROM alone
)"""
PARTS = {
    "unnest the records, number their persons": ROWS.format(fresh="true"),
    "+ probes (two key indexes a record)": ROWS.format(fresh=PROBES),
    "+ probes + the persons' rows": ROWS.format(fresh=PROBES) + PEOPLE,
    "+ probes + the links' rows": ROWS.format(fresh=PROBES) + LINKS,
    "the whole statement": ROWS.format(fresh=PROBES) + PEOPLE + LINKS,
}
# With --upkeep: what each index, constraint and policy the two inserts keep up costs,
# each dropped in the rolled-back transaction (as the owner), beside the inserts with
# everything (no probes: without the key indexes they would scan the table).
INSERTS = ROWS.format(fresh="true") + PEOPLE + LINKS
UPKEEP = {
    "the inserts (no probes), everything kept up": [],
    "  without the link's primary key": [
        "ALTER TABLE identity_recordlink DROP CONSTRAINT identity_recordlink_pkey"
    ],
    "  without the link's person index": ["DROP INDEX recordlink_person"],
    "  without the link's two key indexes": [
        "DROP INDEX recordlink_email_hash",
        "DROP INDEX recordlink_phone_hash",
    ],
    "  without row-level security on the link": [
        "ALTER TABLE identity_recordlink NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE identity_recordlink DISABLE ROW LEVEL SECURITY",
    ],
    "  without the person's primary key": [
        "ALTER TABLE identity_person DROP CONSTRAINT identity_person_pkey CASCADE"
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--upkeep",
        action="store_true",
        help="also each index, constraint and policy of the inserts dropped in turn "
        "(the database's user must own the tables)",
    )
    args = parser.parse_args()
    django_ready()
    from django.db import connection, transaction
    from import_csv import _session_cpu

    from enseigne.contacts.records import Record
    from enseigne.identity import linking
    from enseigne.identity.keys import record_keys
    from enseigne.lib.rowsecurity import ALL, db_scope

    class Rollback(Exception):
        pass

    n = args.records
    root = f"Z{int(time.time()) % 1000:03d}"  # a network of its own: nobody holds its keys
    path = root + "0001"
    whole = "link_new_records (Python + SQL)"
    prepared = "link_new_records, keys prepared beforehand (as the import does)"
    measured: dict[str, list[tuple[float, float]]] = {whole: [], prepared: []}
    measured.update({name: [] for name in PARTS})
    if args.upkeep:
        measured.update({name: [] for name in UPKEEP})
    wal: dict[str, list[float]] = {name: [] for name in measured}
    from django.conf import settings

    first = 0
    with db_scope(ALL):
        for _ in range(args.repeat):
            for name in measured:
                first += n
                people = range(10**9 + first, 10**9 + first + n)
                records = [
                    Record(i, path, f"prenom.{i}.nom@orange.fr", f"+336{i % 10**8:08d}")
                    for i in people
                ]
                ready = None
                if name == prepared:  # in the import's helper thread, off the writer's
                    ready = linking.key_preparer(path)([(r.email, r.phone) for r in records])
                try:
                    with transaction.atomic(), connection.cursor() as cursor:
                        if name in UPKEEP and UPKEEP[name]:
                            cursor.execute("RESET ROLE")
                            for statement in UPKEEP[name]:
                                cursor.execute(statement)
                            cursor.execute(
                                "SELECT set_config('role', %s, true)", [settings.DATABASE_APP_ROLE]
                            )
                        cursor.execute("SELECT pg_current_wal_insert_lsn()")
                        (lsn,) = cursor.fetchone()
                        session, thread = _session_cpu(), time.thread_time()
                        if name in PARTS or name in UPKEEP:
                            keys = [
                                record_keys(root, r.email, r.phone, gmail_rules=False)
                                for r in records
                            ]
                            thread = time.thread_time()  # the parts: the database only
                            cursor.execute("SET LOCAL jit = off")
                            cursor.execute(
                                f"WITH {PARTS.get(name, INSERTS)} SELECT count(*) FROM alone",  # noqa: S608
                                {
                                    "ids": ",".join(str(r.contact_id) for r in records),
                                    "paths": ",".join(r.unit_path for r in records),
                                    "ek": ",".join(k[0] or "" for k in keys),
                                    "pk": ",".join(k[1] or "" for k in keys),
                                    "sequence": linking._person_sequence(),
                                },
                            )
                        else:
                            linking.link_new_records(records, ready)
                        thread = time.thread_time() - thread
                        session = _session_cpu() - session  # type: ignore[operator]
                        cursor.execute("SELECT pg_current_wal_insert_lsn() - %s::pg_lsn", [lsn])
                        wal[name].append(float(cursor.fetchone()[0]) / n)
                        raise Rollback
                except Rollback:
                    pass
                measured[name].append((thread * 1e6 / n, session * 1e6 / n))
    rows = [("part", "Python µs a record", "database µs a record", "WAL bytes a record")]
    for name, values in measured.items():
        python = statistics.median(v[0] for v in values)
        database = statistics.median(v[1] for v in values)
        rows.append(
            (
                name,
                f"{python:.1f}" if name not in PARTS and name not in UPKEEP else "",
                f"{database:.1f}",
                f"{statistics.median(wal[name]):,.0f}",
            )
        )
    table(f"Linking {n:,} new people, CPU (median of {args.repeat})", rows)


if __name__ == "__main__":
    main()
