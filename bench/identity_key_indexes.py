"""B-tree or hash indexes for the link's matching keys (issue 20, PostgreSQL only).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_bench \
        .venv/bin/python bench/identity_key_indexes.py --links 1000000

Builds a scratch copy of ``identity_recordlink`` (its primary key, its person index, and the
two key indexes as B-trees, then as hashes), grows it batch by batch as imports do (random
128-bit keys, ``--batch`` links a statement) to ``--links`` links, then measures, on the
next five batches, the database CPU a record of the two probes ``linking._link_fresh``
makes and of the link's insert (all four indexes kept up). CPU of the database session
read from /proc (the database must run on this machine): the machine is shared. Prints
the median batch of each kind, in the same run; the scratch table is dropped.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from _setup import table

KINDS = ("btree", "hash")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--links", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of both kinds")
    args = parser.parse_args()
    import psycopg

    url = os.environ["DATABASE_URL"]
    with psycopg.connect(url) as conn:
        pid = conn.info.backend_pid

        def cpu() -> float:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        conn.execute("SET jit = off")
        n = args.batch
        measured: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}
        sizes: dict[str, str] = {}
        for _round in range(args.repeat):
            for kind in KINDS:
                conn.execute("DROP TABLE IF EXISTS bench_link")
                conn.execute(
                    "CREATE TABLE bench_link (LIKE identity_recordlink INCLUDING DEFAULTS)"
                )
                conn.execute("ALTER TABLE bench_link ADD PRIMARY KEY (contact_id)")
                conn.execute("CREATE INDEX ON bench_link (person_id)")
                for column in ("email_key", "phone_key"):
                    conn.execute(
                        f"CREATE INDEX bench_link_{column} ON bench_link USING {kind} ({column}) "
                        f"WHERE {column} IS NOT NULL"
                    )
                conn.commit()
                done = 0
                while done < args.links + 5 * n:
                    conn.execute("DROP TABLE IF EXISTS bench_new")
                    conn.execute(
                        "CREATE TEMPORARY TABLE bench_new AS SELECT g, gen_random_uuid() AS ek, "
                        "gen_random_uuid() AS pk FROM generate_series(%s::bigint, %s::bigint) AS g",
                        [done + 1, done + n],
                    )
                    started = cpu()
                    conn.execute(
                        "SELECT count(*) FROM bench_new AS r WHERE "
                        "(SELECT 1 FROM bench_link WHERE email_key = r.ek LIMIT 1) IS NULL AND "
                        "(SELECT 1 FROM bench_link WHERE phone_key = r.pk LIMIT 1) IS NULL"
                    ).fetchall()
                    probes = cpu() - started
                    started = cpu()
                    conn.execute(
                        "INSERT INTO bench_link (contact_id, person_id, unit_path, method, "
                        "linked_at, email_key, phone_key) "
                        "SELECT g, g, '00010001', 'alone', now(), ek, pk FROM bench_new"
                    )
                    conn.commit()
                    insert = cpu() - started
                    if done >= args.links:
                        measured[kind].append((probes * 1e6 / n, insert * 1e6 / n))
                    done += n
                sizes[kind] = conn.execute(
                    "SELECT pg_size_pretty(pg_relation_size('bench_link_email_key'))"
                ).fetchone()[0]
        conn.execute("DROP TABLE IF EXISTS bench_link")
        conn.commit()
    rows = [("key indexes", "two probes, µs a record", "link insert, µs a record", "one index")]
    for kind in KINDS:
        rows.append(
            (
                kind,
                f"{statistics.median(m[0] for m in measured[kind]):.1f}",
                f"{statistics.median(m[1] for m in measured[kind]):.1f}",
                sizes[kind],
            )
        )
    table(f"Link key indexes with {args.links:,} links, database CPU (median batch)", rows)


if __name__ == "__main__":
    main()
