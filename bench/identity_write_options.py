"""Two options for write-time person matching, measured on scratch tables (issue 20).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_bench \
        .venv/bin/python bench/identity_write_options.py --links 600000

PostgreSQL only, as a superuser (``CHECKPOINT``, ``SET wal_compression``), on the database's
own machine (the session's CPU is read from /proc). Builds two scratch tables of
``--links`` links with random keys, shaped like ``identity_recordlink`` where it matters
(a bigint primary key, a person, an e-mail and a phone key as ``uuid``), then inserts
batches of ``--batch`` records whose keys nobody holds, each in a rolled-back transaction,
and prints the database session's CPU a record:

1. **"First holder" unique index.** The product probes each key's hash index, then inserts
   the link, which keeps both hash indexes up (``linking._link_fresh``). The option: only
   a key's first holder carries it in a column with a unique B-tree index, so that
   ``INSERT … ON CONFLICT DO NOTHING`` finds a held key by its conflict (later holders in
   partial hash indexes). PostgreSQL's speculative insertion pre-checks every arbiter
   index before inserting, then inserts with a uniqueness check: the descent is not saved.
2. **wal_compression.** Right after a checkpoint (full-page images of every index page the
   batch touches first), the product's statement with ``wal_compression`` off, ``lz4`` and
   ``pglz``: CPU and WAL bytes a record. A server setting: the app cannot choose it.

WAL bytes are the server's, so other sessions' writes meanwhile count too. The scratch
tables are dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import uuid
from pathlib import Path

import psycopg
from _setup import table

PRODUCT = """
WITH rec AS (
    SELECT r.*, (SELECT 1 FROM bench_links WHERE ek = r.ek LIMIT 1) IS NULL
        AND (SELECT 1 FROM bench_links WHERE pk = r.pk LIMIT 1) IS NULL AS fresh
    FROM unnest(%s::bigint[], %s::uuid[], %s::uuid[]) AS r (id, ek, pk)
), ins AS (
    INSERT INTO bench_links SELECT id, id, ek, pk FROM rec WHERE fresh RETURNING contact
) SELECT count(*) FROM ins"""
NO_PROBES = """
WITH ins AS (
    INSERT INTO bench_links SELECT id, id, ek, pk
    FROM unnest(%s::bigint[], %s::uuid[], %s::uuid[]) AS r (id, ek, pk) RETURNING contact
) SELECT count(*) FROM ins"""
FIRST_HOLDER = """
WITH ins AS (
    INSERT INTO bench_first_holders (contact, person, ek, pk, first_ek, first_pk)
    SELECT id, id, ek, pk, ek, pk FROM unnest(%s::bigint[], %s::uuid[], %s::uuid[]) AS r (id, ek, pk)
    ON CONFLICT DO NOTHING RETURNING contact
) SELECT count(*) FROM ins"""
SETUP = [
    "DROP TABLE IF EXISTS bench_links, bench_first_holders",
    "CREATE TABLE bench_links (contact bigint PRIMARY KEY, person bigint, ek uuid, pk uuid)",
    "CREATE TABLE bench_first_holders (contact bigint PRIMARY KEY, person bigint, ek uuid, pk uuid, "
    "first_ek uuid, first_pk uuid)",
    "INSERT INTO bench_links SELECT i, i, gen_random_uuid(), gen_random_uuid() "
    "FROM generate_series(1, %(links)s) AS i",
    "INSERT INTO bench_first_holders SELECT contact, person, ek, pk, ek, pk FROM bench_links",
    "CREATE INDEX ON bench_links USING hash (ek)",
    "CREATE INDEX ON bench_links USING hash (pk)",
    "CREATE UNIQUE INDEX ON bench_first_holders (first_ek)",
    "CREATE UNIQUE INDEX ON bench_first_holders (first_pk)",
    # The rare later holders of a key: only they are in the (partial) hash indexes.
    "CREATE INDEX ON bench_first_holders USING hash (ek) WHERE first_ek IS NULL",
    "CREATE INDEX ON bench_first_holders USING hash (pk) WHERE first_pk IS NULL",
    "VACUUM ANALYZE bench_links",
    "VACUUM ANALYZE bench_first_holders",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=600_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    cursor = conn.cursor()
    (pid,) = cursor.execute("SELECT pg_backend_pid()").fetchone()

    def cpu_ns() -> int:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])

    for statement in SETUP:
        cursor.execute(statement, {"links": args.links} if "%(links)s" in statement else None)
    cursor.execute("SET jit = off")
    next_id = 10**12

    def insert(sql: str, before: str | None = None) -> tuple[float, float]:
        """Session CPU µs and WAL bytes a record of one batch of new keys, rolled back."""
        nonlocal next_id
        if before:
            cursor.execute(before)
        ids = list(range(next_id, next_id + args.batch))
        next_id += args.batch
        email_keys = [uuid.uuid4() for _ in ids]
        phone_keys = [uuid.uuid4() for _ in ids]
        cursor.execute("BEGIN")
        (lsn,) = cursor.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        start = cpu_ns()
        (count,) = cursor.execute(sql, [ids, email_keys, phone_keys]).fetchone()
        spent = cpu_ns() - start
        (wal,) = cursor.execute("SELECT pg_current_wal_insert_lsn() - %s::pg_lsn", [lsn]).fetchone()
        cursor.execute("ROLLBACK")
        assert count == args.batch, count
        return spent / 1e3 / args.batch, float(wal) / args.batch

    options = {
        "the product: probe the two hash indexes, insert": (PRODUCT, None),
        "  the same without the probes (its floor)": (NO_PROBES, None),
        "first holder: ON CONFLICT DO NOTHING, two unique B-trees": (FIRST_HOLDER, None),
        "the product after a CHECKPOINT, wal_compression off": (
            PRODUCT,
            "SET wal_compression = off; CHECKPOINT",
        ),
        "  the same, wal_compression lz4": (PRODUCT, "SET wal_compression = lz4; CHECKPOINT"),
        "  the same, wal_compression pglz": (PRODUCT, "SET wal_compression = pglz; CHECKPOINT"),
    }
    measured: dict[str, list[tuple[float, float]]] = {name: [] for name in options}
    # Interleaved, each option once a round; the checkpointed ones after all the others (a
    # checkpoint's full-page images would otherwise fall on the next round's first option).
    phases = [[n for n in options if not options[n][1]], [n for n in options if options[n][1]]]
    try:
        for phase in phases:
            for _ in range(args.repeat):
                for name in phase:
                    sql, before = options[name]
                    measured[name].append(insert(sql, before))
                    cursor.execute("RESET wal_compression")
    finally:
        cursor.execute("DROP TABLE IF EXISTS bench_links, bench_first_holders")
    rows = [("option", "database CPU µs a record (median; runs)", "WAL bytes a record")]
    for name, values in measured.items():
        cpus = [v[0] for v in values]
        rows.append(
            (
                name,
                f"{statistics.median(cpus):.2f} ({', '.join(f'{c:.1f}' for c in cpus)})",
                f"{statistics.median(v[1] for v in values):,.0f}",
            )
        )
    table(
        f"New records' links, {args.batch:,} a batch, {args.links:,} links there "
        f"(load {os.getloadavg()[0]:.1f})",
        rows,
    )


if __name__ == "__main__":
    main()
