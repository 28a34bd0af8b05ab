"""The work behind each page, not its wall time: queries per page and the slowest of them.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_speed DATABASE_APP_ROLE=enseigne_app \
      ENSEIGNE_DATA_DIR=/tmp/ens-speed python bench/page_queries.py [--only /results/] [--top 3]

On a busy machine wall times move with the load; the number of queries and the database
time of each do much less. For each persona and page (bench/pages.py's list), after one
warm-up: the query count, the summed query time, the CPU time this process spent on the
request (Python: views, templates, reading rows), the Python function calls of one more
run (thousands: a measure of work that the load does not stretch), the request's time, and the ``--top``
slowest statements (with ``--explain``, their EXPLAIN ANALYZE on PostgreSQL).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_ready, table
from pages import PASSWORD, PERSONAS, pages_for


def _blocks(connection, queries) -> int:
    """Shared blocks (8 kB, from cache or disk) the page's SELECTs touched, by EXPLAIN (ANALYZE,
    BUFFERS) of each under the system scope: the database's work, which the load does not
    stretch (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return 0
    from enseigne.lib.rowsecurity import ALL, db_scope

    total = 0
    with db_scope(ALL), connection.cursor() as cursor:
        for _ms, sql in queries:
            if not sql.lstrip().upper().startswith("SELECT") or "set_config" in sql:
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0][0]
            node = plan["Plan"]
            total += node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0)
            planning = plan.get("Planning", {})
            total += planning.get("Shared Hit Blocks", 0) + planning.get("Shared Read Blocks", 0)
    return total


def main() -> int:
    queue = Path(tempfile.gettempdir()) / "enseigne-bench-pages-queue.sqlite3"
    os.environ["HUEY_URL"] = os.environ.get("BENCH_HUEY_URL", f"sqlite:///{queue}")
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="", help="only URLs containing this text")
    parser.add_argument("--personas", default=",".join(PERSONAS))
    parser.add_argument("--password", default=PASSWORD)
    parser.add_argument("--top", type=int, default=2)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument(
        "--buffers", action="store_true", help="the 8 kB blocks the page's SELECTs read (EXPLAIN)"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs per page (the median shown)")
    options = parser.parse_args()
    django_ready()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from enseigne.network.models import User

    rows = [
        ("persona", "page", "queries", "sql ms", "python cpu ms", "k calls", "blocks", "request ms")
    ]
    slow = []
    for email in options.personas.split(","):
        user = User.objects.get(email=email)
        client = Client()
        if not client.login(username=email, password=options.password):
            client.force_login(user)
        for url in pages_for(user):
            if options.only not in url or client.get(url).status_code != 200:
                continue
            runs = []
            for _ in range(options.repeat):
                with CaptureQueriesContext(connection) as captured:
                    started, cpu = time.perf_counter(), time.process_time()
                    client.get(url)
                    cpu = (time.process_time() - cpu) * 1000
                    elapsed = (time.perf_counter() - started) * 1000
                queries = [(float(q["time"]) * 1000, q["sql"]) for q in captured.captured_queries]
                runs.append((sum(t for t, _ in queries), cpu, elapsed, queries))
            # The median run by CPU time; its queries.
            sql_ms, cpu, elapsed, queries = sorted(runs, key=lambda r: r[1])[len(runs) // 2]
            # Python's work in a unit the load does not stretch: function calls, one more run.
            profile = cProfile.Profile()
            profile.runcall(client.get, url)
            calls = pstats.Stats(profile).total_calls
            blocks = _blocks(connection, queries) if options.buffers else ""
            persona = email.split("@")[0]
            rows.append(
                (
                    persona,
                    url,
                    len(queries),
                    f"{sql_ms:.0f}",
                    f"{cpu:.0f}",
                    f"{calls / 1000:.1f}",
                    blocks,
                    f"{elapsed:.0f}",
                )
            )
            for ms, sql in sorted(queries, reverse=True)[: options.top]:
                slow.append((ms, persona, url, sql))
    table("Queries per page", rows)
    print("\nSlowest statements")
    for ms, persona, url, sql in sorted(slow, reverse=True)[:25]:
        print(f"\n{ms:7.1f} ms  {persona} {url}\n  {sql[:600]}")
        if options.explain and connection.vendor == "postgresql" and ms > 20:
            from enseigne.lib.rowsecurity import ALL, db_scope

            with db_scope(ALL), connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                print("\n".join("    " + r[0] for r in cursor.fetchall()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
