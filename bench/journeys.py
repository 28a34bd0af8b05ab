"""Journeys (issue 22): birthdays across a change of time through killed workers, and the
engine at 1,000,000 enrollments.

    .venv/bin/python bench/journeys.py dst --birthdays 1000 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_journeys
    .venv/bin/python bench/journeys.py scale --enrollments 1000000 --due 100000 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_journeys

``dst``: a scratch database (dropped and re-created), N birthdays on 27–31 March 2026 in a
Paris store (summer time starts on the 29th), a birthday journey (date trigger, one e-mail
step), two worker processes on a shared simulated clock (``tests/journey_scenario.py``:
the triggers' pass, the engine's batches, the journey campaigns' runner, into an SMTP sink
that counts messages by Message-ID). Run twice, each on a fresh database: the baseline
with no kill, then with the oldest worker SIGKILLed twice and started again at once.
Checked from the ledger (enrollments, ``campaigns.Recipient`` rows) and the sink: every
birthday entered on its local day, got exactly one message; duplicates and lost.

``scale``: N enrollments generated with set-based SQL (as the owner, then ANALYZE), most
waiting in the future, ``--due`` of them due, on a simple flow (a one-day wait, then a
condition, then exit). Measures the engine's next-due query (``engine.due_rows``, as the
app role, median of 20, in a transaction rolled back), then the rows moved per second by
``--workers`` processes calling ``engine.advance_all`` — against a bare ``UPDATE`` of the
same rows (the baseline, same run, same rows, rolled back).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _setup import recreate_database, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env(database: str, port: int, data_dir: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database,
            "DATABASE_APP_ROLE": "enseigne_app",
            "EMAIL_URL": f"smtp://127.0.0.1:{port}",
            "ENSEIGNE_DATA_DIR": data_dir,
            # A killed worker's leases are taken over after 4 s (30 s by default), so the
            # run ends in seconds; the at-most-once policy of the default is kept.
            "ENSEIGNE_SEND_LEASE_SECONDS": "4",
            "HUEY_URL": "immediate:",
            "LOG_LEVEL": "ERROR",
        }
    )
    return env


def dst(args) -> None:
    from tests.faulty_sink import FaultyHandler, FaultySink
    from tests.journey_scenario import drive, outcome

    os.makedirs(args.data_dir, exist_ok=True)
    results = []
    for kills in (0, 2):
        handler = FaultyHandler()
        with FaultySink(handler) as sink:
            recreate_database(args.database)
            env = _env(args.database, sink.port, args.data_dir)
            subprocess.run(  # noqa: S603
                [sys.executable, "tests/journey_scenario.py", "setup", str(args.birthdays)],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
            )
            run = drive(env, per_hour=args.per_hour, kills=kills, timeout=args.timeout)
            import psycopg

            with psycopg.connect(args.database) as conn:

                def rows(sql, conn=conn):
                    return list(conn.execute(sql).fetchall())

                with handler.lock:
                    kept = dict(handler.kept)
                results.append((kills, run, outcome(rows, kept)))
    print(
        f"\n{args.birthdays:,} birthdays on 27–31 March 2026, Europe/Paris (summer time on the "
        f"29th); 2 worker processes, simulated clock {1 / args.per_hour:.1f} h per second"
    )
    measures = list(results[0][2])
    table(
        "Outcome (baseline: no kill; then the oldest worker SIGKILLed twice, restarted)",
        [
            ("measure", "no kill", "2 kills", "goal"),
            *[
                (
                    m,
                    *[_cell(r[2][m]) for r in results],
                    {"duplicates": "0", "lost": "0"}.get(m, ""),
                )
                for m in measures
            ],
            (
                "killed at (simulated, UTC)",
                "",
                ", ".join(k.strftime("%d %H:%M") for k in results[1][1]["kills"]),
                "",
            ),
            ("passes failed (database error, run again)", *[str(r[1]["failed passes"]) for r in results], ""),
            ("wall time", *[f"{r[1]['seconds']:.0f} s" for r in results], ""),
        ],
    )


def _cell(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:,}" for k, v in sorted(value.items()))
    return f"{value:,}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["dst", "scale"])
    parser.add_argument(
        "--database", default="postgres://postgres@127.0.0.1:5432/enseigne_bench_journeys"
    )
    parser.add_argument("--data-dir", default="/tmp/enseigne-bench-journeys")
    parser.add_argument("--birthdays", type=int, default=1000)
    parser.add_argument("--per-hour", type=float, default=0.25, help="wall seconds per hour")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.database.startswith("postgres"):
        raise SystemExit("the journeys bench runs on PostgreSQL")
    {"dst": dst, "scale": scale}[args.part](args)


if __name__ == "__main__":
    main()
