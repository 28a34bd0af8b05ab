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

from _setup import bench_network, bench_users, recreate_database, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env(database: str, port: int, data_dir: str, lease: int = 0) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database,
            "DATABASE_APP_ROLE": "enseigne_app",
            "EMAIL_URL": f"smtp://127.0.0.1:{port}",
            "ENSEIGNE_DATA_DIR": data_dir,
            "HUEY_URL": "immediate:",
            "LOG_LEVEL": "ERROR",
        }
    )
    if lease:  # a killed worker's send leases are taken over after this (30 s by default)
        env["ENSEIGNE_SEND_LEASE_SECONDS"] = str(lease)
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
            env = _env(args.database, sink.port, args.data_dir, args.lease)
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
            (
                "passes failed (database error, run again)",
                *[str(r[1]["failed passes"]) for r in results],
                "",
            ),
            ("wall time", *[f"{r[1]['seconds']:.0f} s" for r in results], ""),
        ],
    )


NOW_SQL = "%(now)s::timestamptz"


def _flow(author_rules: dict) -> dict:
    return {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "pause",
        "steps": {
            "pause": {"kind": "wait", "days": 1, "next": "check"},
            "check": {"kind": "condition", "rules": author_rules, "yes": "out", "no": "bye"},
            "out": {"kind": "exit"},
            "bye": {"kind": "exit"},
        },
    }


def _store_and_run(code: str, count: int, flow: dict, now, **contact):
    """A network with one store, ``count`` consenting contacts (``contact(i)``: extra
    fields), and a running journey of ``flow``; returns the run."""
    from enseigne.contacts.models import ConsentStatus, Contact
    from enseigne.journeys.models import JourneyRun, JourneyTemplate, JourneyVersion
    from enseigne.network import services as network
    from enseigne.network.models import Network

    roles = network.builtin_roles_ensure()
    root, (store,) = bench_network(code, 1)
    hq, manager = bench_users(root, store, roles)
    extra = contact.get("fields", lambda i: {})
    Contact.objects.bulk_create(
        [
            Contact(
                unit=store,
                unit_path=store.path,
                email=f"{code}{i}@example.com",
                email_consent=ConsentStatus.GRANTED,
                **extra(i),
            )
            for i in range(count)
        ],
        batch_size=5000,
    )
    template = JourneyTemplate.objects.create(
        network=Network.objects.get(node=root),
        owner=root,
        owner_path=root.path,
        name=code,
        created_by=hq,
        reentry=JourneyTemplate.Reentry.EVERY,
    )
    version = JourneyVersion.objects.create(
        template=template, number=1, owner_path=root.path, flow=flow
    )
    return JourneyRun.objects.create(
        template=template,
        version=version,
        unit=store,
        unit_path=store.path,
        starts_on=now.date(),
        created_by=manager,
    )


def _scale_world(args, now):
    """The store, its run, ``--due`` contacts, and the enrollments (set-based, as owner)."""
    import psycopg
    from django.db import connection

    from enseigne.contacts.models import Contact
    from enseigne.lib.rowsecurity import ALL, db_scope

    with db_scope(ALL):
        run = _store_and_run(
            "jb",
            args.due,
            _flow({"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}),
            now,
            fields=lambda i: {"is_customer": i % 2 == 0},
        )
        people, version, store = args.due, run.version, run.unit
        first = Contact.objects.order_by("pk").values_list("pk", flat=True).first()
    connection.close()
    started = time.perf_counter()
    with psycopg.connect(args.database, autocommit=True) as conn:
        # Due rows: woken over the last hour, ~1,700 rows to each minute (as a trigger pass
        # enrolls a day's birthdays at one moment); the others over the next 30 days.
        conn.execute(
            "INSERT INTO journeys_enrollment (run_id, version_id, contact_id, unit_path, "
            "occurrence, step, status, held_out, wake_at, entered_at, updated_at) "
            "SELECT %(run)s, %(version)s, %(first)s + g %% %(people)s, %(path)s, g::text, "
            "'pause', 'waiting', false, CASE WHEN g < %(due)s "
            f"THEN {NOW_SQL} - (g %% 60) * interval '1 minute' "
            f"ELSE {NOW_SQL} + interval '1 minute' + (g %% 2592000) * interval '1 second' END, "
            f"{NOW_SQL} - interval '1 day', {NOW_SQL} - interval '1 day' "
            "FROM generate_series(0, %(total)s - 1) g",
            {
                "run": run.pk,
                "version": version.pk,
                "first": first,
                "people": people,
                "path": store.path,
                "due": args.due,
                "total": args.enrollments,
                "now": now,
            },
        )
        conn.execute("ANALYZE")
    return time.perf_counter() - started


def _due_query(args, now) -> tuple[list[float], list[float], list[float], str]:
    """The engine's claim (as the app role, RLS on): the call, rows loaded as models, and
    its execution in the database; against the same claim in bare SQL as the owner; each in
    a transaction rolled back. Milliseconds."""
    import psycopg
    from django.db import connection, transaction

    from enseigne.journeys import engine
    from enseigne.lib.rowsecurity import ALL, db_scope

    app, bare = [], []
    for _ in range(21):
        with transaction.atomic(), db_scope(ALL):
            started = time.perf_counter()
            rows = engine.due_rows(now, engine.BATCH)
            app.append((time.perf_counter() - started) * 1000)
            assert len(rows) == engine.BATCH
            transaction.set_rollback(True)
    database = []  # the same claim's execution in the database (EXPLAIN ANALYZE, app role)
    for _ in range(21):
        with db_scope(ALL), transaction.atomic(), connection.cursor() as cursor:
            sql, params = _due_sql(engine, now)
            cursor.execute("EXPLAIN ANALYZE " + sql, params)
            lines = [line for (line,) in cursor.fetchall()]
            database.append(float(lines[-1].split(":")[1].split()[0]))
            plan = " / ".join(line.split("  (")[0].strip() for line in lines[:-2])
            transaction.set_rollback(True)
    with psycopg.connect(args.database) as conn:
        for _ in range(21):
            started = time.perf_counter()
            found = conn.execute(
                "SELECT * FROM journeys_enrollment WHERE status = 'waiting' AND wake_at <= %s "
                "ORDER BY wake_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
                (now, engine.BATCH),
            ).fetchall()
            bare.append((time.perf_counter() - started) * 1000)
            assert len(found) == engine.BATCH
            conn.rollback()
    return app[1:], database[1:], bare[1:], plan


def _due_sql(engine, now):
    from django.db import connection

    query = engine.Enrollment.objects.filter(
        status="waiting", wake_at__lte=now, run__status="active"
    ).order_by("wake_at", "id")[: engine.BATCH]
    query = query.select_for_update(skip_locked=True, of=("self",))
    compiler = query.query.get_compiler(connection=connection)
    return compiler.as_sql()


def _bare_update(args, now) -> float:
    """The baseline: one UPDATE moving the same due rows to their end, rolled back (s)."""
    import psycopg

    with psycopg.connect(args.database) as conn:
        started = time.perf_counter()
        moved = conn.execute(
            "UPDATE journeys_enrollment SET step = 'out', status = 'exited', wake_at = NULL, "
            "updated_at = %s WHERE status = 'waiting' AND wake_at <= %s",
            (now, now),
        ).rowcount
        seconds = time.perf_counter() - started
        conn.rollback()
    assert moved == args.due, moved
    return seconds


def advance_worker(go: str, now: str, batch: int) -> None:
    """One engine process: set up, wait for the go file, ``advance_all``; prints
    ``moved start end``."""
    import datetime as dt

    import django

    from enseigne.lib.rowsecurity import set_role_switch

    django.setup()
    set_role_switch(True)
    from enseigne.journeys import engine

    moment = dt.datetime.fromisoformat(now)
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    started = time.time()
    moved = engine.advance_all(now=moment, limit=batch or engine.BATCH)
    print(moved, started, time.time(), flush=True)


def _advance(args, now) -> tuple[int, float]:
    import tempfile

    go = os.path.join(tempfile.mkdtemp(prefix="jbench-"), "go")
    env = dict(os.environ)
    workers = [
        subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-u",
                __file__,
                "advance-worker",
                "--go",
                go,
                "--now",
                now.isoformat(),
                "--database",
                args.database,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(args.workers)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    open(go, "w").close()
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=args.timeout)
        moved, start, end = out.split()
        results.append((int(moved), float(start), float(end)))
    moved = sum(r[0] for r in results)
    return moved, max(r[2] for r in results) - min(r[1] for r in results)


def engine_batch() -> int:
    from enseigne.journeys import engine

    return engine.BATCH


def _reset(args, now) -> None:
    """The due rows back at their wait, their history gone (as owner; VACUUM ANALYZE)."""
    import psycopg

    with psycopg.connect(args.database, autocommit=True) as conn:
        conn.execute("DELETE FROM journeys_enrollmentstep")
        conn.execute(
            "UPDATE journeys_enrollment SET status = 'waiting', step = 'pause', "
            "wake_at = %s - (id %% 60) * interval '1 minute' WHERE status <> 'waiting'",
            (now,),
        )
        conn.execute("VACUUM ANALYZE journeys_enrollment")


def scale(args) -> None:
    import datetime as dt

    os.environ["DATABASE_URL"] = args.database
    os.environ["DATABASE_APP_ROLE"] = "enseigne_app"
    from _setup import django_ready

    recreate_database(args.database)
    django_ready()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    setup = _scale_world(args, now)
    app, database, bare, plan = _due_query(args, now)
    baseline = _bare_update(args, now)
    runs = []
    for batch in dict.fromkeys([args.batch or engine_batch(), 2000]):
        if runs:
            _reset(args, now)
        args.batch = batch
        runs.append((batch, *_advance(args, now)))
    import psycopg

    with psycopg.connect(args.database) as conn:
        left = conn.execute(
            "SELECT count(*) FROM journeys_enrollment WHERE status = 'waiting' AND wake_at <= %s",
            (now,),
        ).fetchone()[0]
        history = conn.execute("SELECT count(*) FROM journeys_enrollmentstep").fetchone()[0]
    load = os.getloadavg()
    print(
        f"\n{args.enrollments:,} enrollments ({args.due:,} due, the rest waiting up to 30 days); "
        f"generated in {setup:.0f} s; load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"plan of the engine's claim (EXPLAIN ANALYZE, app role): {plan}")
    table(
        "Next-due query (claim of 500, FOR UPDATE SKIP LOCKED), ms",
        [
            ("query", "median", "p95", "max", "goal"),
            *[
                (
                    name,
                    f"{statistics.median(times):.1f}",
                    f"{sorted(times)[18]:.1f}",
                    f"{max(times):.1f}",
                    goal,
                )
                for name, times, goal in [
                    (
                        "engine.due_rows: the query in the database (app role, RLS)",
                        database,
                        "< 20",
                    ),
                    ("engine.due_rows: the call, 500 rows loaded as models", app, ""),
                ]
            ],
            (
                "baseline: bare SQL as owner",
                f"{statistics.median(bare):.1f}",
                f"{sorted(bare)[18]:.1f}",
                f"{max(bare):.1f}",
                "",
            ),
        ],
    )
    table(
        f"Due rows advanced (wait over → condition → exit), {args.workers} processes",
        [
            ("mover", "rows", "seconds", "rows/s", "goal"),
            *[
                (
                    f"engine.advance_all x {args.workers}, {batch} rows a claim",
                    f"{moved:,}",
                    f"{seconds:.1f}",
                    f"{moved / seconds:,.0f}",
                    "≥ 10,000",
                )
                for batch, moved, seconds in runs
            ],
            (
                "baseline: one bare UPDATE (rolled back)",
                f"{args.due:,}",
                f"{baseline:.1f}",
                f"{args.due / baseline:,.0f}",
                "",
            ),
            ("due rows left", f"{left:,}", "", "", "0"),
            (
                "history rows of the last run (waited, yes/no, exited)",
                f"{history:,}",
                "",
                "",
                f"{3 * args.due:,}",
            ),
        ],
    )


def triggers_part(args) -> None:
    """A minute of consents at ``--rate`` a second: how long the tick's trigger pass and
    the engine's first step take, against one INSERT of the same enrollments."""
    import datetime as dt

    import psycopg

    os.environ["DATABASE_URL"] = args.database
    os.environ["DATABASE_APP_ROLE"] = "enseigne_app"
    from _setup import django_ready

    recreate_database(args.database)
    django_ready()
    from django.db import connection

    from enseigne.journeys import engine, triggers
    from enseigne.lib.rowsecurity import ALL, db_scope

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    count = int(args.rate * 60)
    with db_scope(ALL):
        flow = {
            "trigger": {"kind": "consent", "channel": "email"},
            "start": "pause",
            "steps": {"pause": {"kind": "wait", "days": 1, "next": "out"}, "out": {"kind": "exit"}},
        }
        run = _store_and_run("jt", count, flow, now)
        version = run.version
    connection.close()
    with psycopg.connect(args.database, autocommit=True) as conn:
        conn.execute(
            "UPDATE journeys_journeyrun SET created_at = %(now)s - interval '1 hour', "
            "events_read_at = %(now)s - interval '1 minute' WHERE id = %(run)s",
            {"now": now, "run": run.pk},
        )
        # The minute's consents, one every 1/rate second, as the owner (append-only table).
        conn.execute(
            "INSERT INTO contacts_consentevent (contact_id, unit_path, channel, purpose, status, "
            "occurred_at, source, source_ref, wording_version, user_agent, recorded_at) "
            "SELECT c.id, c.unit_path, 'email', 'marketing', 'granted', "
            "%(now)s - interval '1 minute' + (row_number() OVER (ORDER BY c.id)) "
            "* interval '1 second' / %(rate)s, 'form', '', '', '', "
            "%(now)s - interval '1 minute' + (row_number() OVER (ORDER BY c.id)) "
            "* interval '1 second' / %(rate)s FROM contacts_contact c",
            {"now": now, "rate": args.rate},
        )
        conn.execute("ANALYZE")
    started = time.perf_counter()
    entered = triggers.run_triggers(now)
    pass_seconds = time.perf_counter() - started
    started = time.perf_counter()
    moved = engine.advance_all(now=now)
    advance_seconds = time.perf_counter() - started
    with psycopg.connect(args.database) as conn:
        conn.execute("DELETE FROM journeys_enrollmentstep")
        conn.execute("DELETE FROM journeys_enrollment")
        started = time.perf_counter()
        conn.execute(
            "INSERT INTO journeys_enrollment (run_id, version_id, contact_id, unit_path, "
            "occurrence, step, status, held_out, wake_at, entered_at, updated_at) "
            "SELECT %(run)s, %(version)s, e.contact_id, e.unit_path, e.id::text, 'pause', "
            "'waiting', false, %(now)s, %(now)s, %(now)s FROM contacts_consentevent e",
            {"run": run.pk, "version": version.pk, "now": now},
        )
        baseline = time.perf_counter() - started
        conn.rollback()
    load = os.getloadavg()
    tick = 60.0
    print(
        f"\n{count:,} consents recorded over the last minute ({args.rate:g}/s); "
        f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    table(
        "One tick (journeys_tick: the triggers' pass, then the engine)",
        [
            ("measure", "value", "goal"),
            ("entered by the pass", f"{entered:,}", f"{count:,}"),
            ("triggers.run_triggers (the pass)", f"{pass_seconds:.1f} s", ""),
            ("engine.advance_all (first step of each)", f"{advance_seconds:.1f} s ({moved:,})", ""),
            ("baseline: one INSERT of the same enrollments", f"{baseline:.2f} s", ""),
            (
                "latency p95: wait for the tick (57 s) + pass + first step",
                f"{0.95 * tick + pass_seconds + advance_seconds:.0f} s",
                "≤ 60 s",
            ),
        ],
    )


def _cell(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:,}" for k, v in sorted(value.items()))
    return f"{value:,}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("part", choices=["dst", "scale", "triggers", "advance-worker"])
    parser.add_argument("--rate", type=float, default=100, help="consents a second")
    parser.add_argument("--go", default="")
    parser.add_argument("--now", default="")
    parser.add_argument(
        "--database", default="postgres://postgres@127.0.0.1:5432/enseigne_bench_journeys"
    )
    parser.add_argument("--data-dir", default="/tmp/enseigne-bench-journeys")
    parser.add_argument("--birthdays", type=int, default=1000)
    parser.add_argument("--per-hour", type=float, default=0.25, help="wall seconds per hour")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--lease", type=int, default=0, help="send lease seconds (0: default)")
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0, help="rows per claim (0: the engine's)")
    args = parser.parse_args()
    if args.part == "advance-worker":
        os.environ["DATABASE_URL"] = args.database
        os.environ["DATABASE_APP_ROLE"] = "enseigne_app"
        advance_worker(args.go, args.now, args.batch)
        return
    if not args.database.startswith("postgres"):
        raise SystemExit("the journeys bench runs on PostgreSQL")
    {"dst": dst, "scale": scale, "triggers": triggers_part}[args.part](args)


if __name__ == "__main__":
    main()
