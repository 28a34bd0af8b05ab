"""Journeys (issue 22): birthdays across a change of time through killed workers, the
engine at 1,000,000 enrollments, and the triggers' latency and cost.

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

    .venv/bin/python bench/journeys.py latency --rate 100 --seconds 60 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_journeys
    .venv/bin/python bench/journeys.py segments --members 50000 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_journeys

``latency``: consents, then purchases, written through the services (``consent_record``,
``orders_record`` in batches of a tenth of a second) at ``--rate`` a second for
``--seconds``, while two real Huey consumers (``run_huey``, SQLite queue, every periodic
task of the app) run the journeys' tick and its quick passes; each entrant's time from its
event's recording to its first step (a condition's history line). The baseline, in the same
run: the same load with the minute's tick alone (``--quick`` 0).

``segments``: a segment trigger's pass over a store of 2 × ``--members`` records.

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
                "latency p95, minute tick alone: wait for it (57 s) + pass + first step",
                f"{0.95 * tick + pass_seconds + advance_seconds:.0f} s",
                "≤ 60 s",
            ),
            (
                "latency p95, quick passes: wait for one (9.5 s) + pass + first step "
                "(measured: the latency part)",
                f"{0.95 * 10 + pass_seconds + advance_seconds:.0f} s",
                "≤ 60 s",
            ),
        ],
    )


LATENCY_FLOW_RULES = {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}


def _latency_flow(trigger: dict) -> dict:
    """The first step is a condition (its history line dates the first step), then a wait."""
    return {
        "trigger": trigger,
        "start": "check",
        "steps": {
            "check": {
                "kind": "condition",
                "rules": LATENCY_FLOW_RULES,
                "yes": "pause",
                "no": "pause",
            },
            "pause": {"kind": "wait", "days": 1, "next": "out"},
            "out": {"kind": "exit"},
        },
    }


def consumer(quick: int, workers: int) -> None:
    """A Huey consumer as ``enseigne worker`` runs it (system scope), the journeys' quick
    passes every ``quick`` seconds (0: none, the minute's tick alone)."""
    os.environ["ENSEIGNE_DB_SYSTEM_SCOPE"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from enseigne.journeys import tasks

    tasks.QUICK_EVERY = quick or 60
    call_command("run_huey", workers=workers)


def _latency_run(args, kind: str, quick: int) -> dict:
    """``args.seconds`` of consents or purchases at ``args.rate`` a second, written through
    the services while ``args.consumers`` Huey consumers run every task; each entrant's
    latency: its first step's time (the condition's history line) less its event's
    recording (the consent's ``recorded_at``, the order's ``created_at``, taken before the
    batch's transaction)."""
    import datetime as dt

    import psycopg

    recreate_database(args.database)
    from _setup import django_ready

    django_ready()
    from django.db import connection
    from huey.contrib.djhuey import HUEY

    HUEY.flush()  # the previous run's scheduled quick passes

    from enseigne.commerce.services import orders_record
    from enseigne.contacts.models import Contact
    from enseigne.contacts.services import consent_record
    from enseigne.lib.rowsecurity import ALL, db_scope

    count = int(args.rate * args.seconds)
    now = dt.datetime.now(dt.UTC)
    trigger = (
        {"kind": "consent", "channel": "email"}
        if kind == "consent"
        else {"kind": "event", "event": "purchase"}
    )
    with db_scope(ALL):
        run = _store_and_run("jl", count, _latency_flow(trigger), now)
        store = run.unit
        people = list(Contact.objects.order_by("pk"))
    connection.close()
    with psycopg.connect(args.database, autocommit=True) as conn:
        conn.execute(
            "UPDATE journeys_journeyrun SET created_at = %s - interval '1 minute' WHERE id = %s",
            (now, run.pk),
        )
    env = dict(os.environ)  # the queue's, as ``latency`` set it
    env.update({"EMAIL_URL": "locmem:", "LOG_LEVEL": "INFO"})
    logs = [
        open(os.path.join(os.environ["ENSEIGNE_DATA_DIR"], f"{kind}-{quick}-{n}.log"), "w")  # noqa: SIM115
        for n in range(args.consumers)
    ]
    consumers = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, __file__, "consumer", "--quick", str(quick), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for log in logs
    ]
    try:
        # The consumers start; events begin after their first tick (a consumer schedules
        # the minute's quick passes at its tick: in its first minute there are none).
        time.sleep(62 - time.time() % 60)
        per_batch = max(1, int(args.rate / 10))
        started = time.time()
        written = 0
        while written < count:
            due = started + written / args.rate
            if due > time.time():
                time.sleep(due - time.time())
            batch = people[written : written + per_batch]
            # One transaction a batch, as a request or a till's call (``db_scope`` is one).
            with db_scope(ALL):
                if kind == "consent":
                    for person in batch:
                        consent_record(
                            actor=None,
                            contact=person,
                            channel="email",
                            status="granted",
                            source="form",
                        )
                else:
                    orders_record(
                        actor=None,
                        unit=store,
                        orders=[
                            {
                                "order_id": f"L-{written + i}",
                                "contact": str(person.public_id),
                                "lines": [{"sku": "S-1", "quantity": 1, "amount": "25.00"}],
                            }
                            for i, person in enumerate(batch)
                        ],
                    )
            written += len(batch)
        wrote_for = time.time() - started
        connection.close()
        deadline = time.time() + 150
        with psycopg.connect(args.database, autocommit=True) as conn:
            while time.time() < deadline:
                (done,) = conn.execute(
                    "SELECT count(*) FROM journeys_enrollmentstep WHERE step = 'check'"
                ).fetchone()
                if done >= count:
                    break
                time.sleep(1)
            source = (
                "SELECT id, recorded_at AS at FROM contacts_consentevent"
                if kind == "consent"
                else "SELECT id, created_at AS at FROM commerce_order"
            )
            rows = conn.execute(
                "SELECT extract(epoch FROM s.at - ev.at), extract(epoch FROM e.entered_at - ev.at) "
                "FROM journeys_enrollmentstep s JOIN journeys_enrollment e ON e.id = s.enrollment_id "
                f"JOIN ({source}) ev ON ev.id = e.occurrence::bigint WHERE s.step = 'check'"  # noqa: S608
            ).fetchall()
    finally:
        for process in consumers:
            os.killpg(process.pid, 15)
        for process in consumers:
            process.wait(timeout=60)
        for log in logs:
            log.close()
    tasks = _task_times([log.name for log in logs])
    first = sorted(float(r[0]) for r in rows)
    entered = sorted(float(r[1]) for r in rows)

    def at(values, share):
        return values[min(len(values) - 1, int(share * len(values)))] if values else float("nan")

    return {
        "events": count,
        "rate": count / wrote_for,
        "stepped": len(first),
        "p50": at(first, 0.5),
        "p95": at(first, 0.95),
        "max": first[-1] if first else float("nan"),
        "entered p95": at(entered, 0.95),
        "tasks": tasks,
    }


def _task_times(paths: list[str]) -> str:
    """How long the consumers' journeys tasks took ("… executed in 0.7s" lines): count,
    median and max per task."""
    import re

    times: dict[str, list[float]] = {}
    for path in paths:
        with open(path) as log:
            for line in log:
                found = re.search(r"journeys\.tasks\.(\w+): .* executed in ([0-9.]+)s", line)
                if found:
                    times.setdefault(found[1], []).append(float(found[2]))
    return "; ".join(
        f"{name} ×{len(v)} median {statistics.median(v):.2f} s max {max(v):.2f} s"
        for name, v in sorted(times.items())
    )


def latency(args) -> None:
    """Trigger latency under load: consents and purchases at ``--rate`` a second for
    ``--seconds``, with the quick passes (``tasks.QUICK_EVERY``) and, as the baseline in
    the same run, with the minute's tick alone."""
    import tempfile

    os.environ["DATABASE_URL"] = args.database
    os.environ["DATABASE_APP_ROLE"] = "enseigne_app"
    # One queue for the writers (the RFM hook queues its refresh on commit) and the consumers.
    queue = tempfile.mkdtemp(prefix="jlat-")
    os.environ["HUEY_URL"] = f"sqlite:///{queue}/huey.sqlite3"
    os.environ["ENSEIGNE_DATA_DIR"] = queue
    results = []
    for quick in (args.quick, 0)[: 1 if args.no_baseline else 2]:
        for kind in args.kinds.split(","):
            results.append((kind, quick, _latency_run(args, kind, quick)))
    load = os.getloadavg()
    print(
        f"\n{args.consumers} Huey consumers (2 threads each) on PostgreSQL, events written "
        f"through the services for {args.seconds} s; load {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f}"
    )
    table(
        "Trigger latency: event recorded → first step done (seconds)",
        [
            (
                "trigger",
                "passes",
                "events",
                "written/s",
                "stepped",
                "p50",
                "p95",
                "max",
                "entered p95",
                "goal p95",
            ),
            *[
                (
                    kind,
                    f"tick + quick every {quick} s" if quick else "baseline: minute tick alone",
                    f"{r['events']:,}",
                    f"{r['rate']:.0f}",
                    f"{r['stepped']:,}",
                    f"{r['p50']:.1f}",
                    f"{r['p95']:.1f}",
                    f"{r['max']:.1f}",
                    f"{r['entered p95']:.1f}",
                    "≤ 60",
                )
                for kind, quick, r in results
            ],
        ],
    )
    for kind, quick, r in results:
        print(f"{kind}, quick every {quick} s: {r['tasks']}")


def segments_part(args) -> None:
    """The cost of a segment trigger's pass: a store of ``--members`` × 2 records, half in
    the segment; the first pass (records the snapshot), a pass with nothing new, a pass
    where 1 % entered and 1 % left — against listing the segment's members alone."""
    import datetime as dt

    os.environ["DATABASE_URL"] = args.database
    os.environ["DATABASE_APP_ROLE"] = "enseigne_app"
    from _setup import django_ready

    recreate_database(args.database)
    django_ready()
    from django.db import connection

    from enseigne.contacts.models import Contact
    from enseigne.journeys import engine, triggers
    from enseigne.lib.rowsecurity import ALL, db_scope

    now = dt.datetime.now(dt.UTC)
    total = args.members * 2
    trigger = {"kind": "segment", "rules": LATENCY_FLOW_RULES}
    with db_scope(ALL):
        run = _store_and_run(
            "js", total, _latency_flow(trigger), now, fields=lambda i: {"is_customer": i % 2 == 0}
        )
    connection.close()
    timings = []
    with db_scope(ALL):
        for label, change in (
            ("first pass (records the members, enters none)", 0),
            ("a pass, nothing new", 0),
            ("a pass, 1 % entered and 1 % left", args.members // 100),
        ):
            if change:
                ids = list(Contact.objects.order_by("pk").values_list("pk", flat=True))
                Contact.objects.filter(pk__in=ids[1 : 2 * change : 2]).update(is_customer=True)
                Contact.objects.filter(pk__in=ids[0 : 2 * change : 2]).update(is_customer=False)
            now += triggers.SEGMENT_EVERY
            started = time.perf_counter()
            entered = triggers.run_triggers(now)
            timings.append((label, time.perf_counter() - started, entered))
        run.refresh_from_db()
        started = time.perf_counter()
        listed = len(
            Contact.objects.filter(
                engine.compile_rules(run.version, LATENCY_FLOW_RULES), unit_path=run.unit_path
            ).values_list("pk", flat=True)
        )
        baseline = time.perf_counter() - started
    load = os.getloadavg()
    print(
        f"\nA store of {total:,} records, {args.members:,} in the segment; "
        f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    table(
        "Segment trigger pass (triggers.run_triggers)",
        [
            ("pass", "seconds", "entered"),
            *[(label, f"{seconds:.2f}", f"{entered:,}") for label, seconds, entered in timings],
            (f"baseline: listing the {listed:,} members", f"{baseline:.2f}", ""),
        ],
    )


def _cell(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:,}" for k, v in sorted(value.items()))
    return f"{value:,}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "part",
        choices=["dst", "scale", "triggers", "latency", "segments", "advance-worker", "consumer"],
    )
    parser.add_argument("--kinds", default="consent,purchase", help="latency: which triggers")
    parser.add_argument("--seconds", type=int, default=60, help="latency: seconds of events")
    parser.add_argument("--consumers", type=int, default=2, help="latency: Huey consumers")
    parser.add_argument("--quick", type=int, default=10, help="quick pass seconds")
    parser.add_argument("--no-baseline", action="store_true", help="latency: quick passes only")
    parser.add_argument("--members", type=int, default=50_000, help="segments: members")
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
    if args.part == "consumer":
        consumer(args.quick, args.workers)
        return
    if args.part == "advance-worker":
        os.environ["DATABASE_URL"] = args.database
        os.environ["DATABASE_APP_ROLE"] = "enseigne_app"
        advance_worker(args.go, args.now, args.batch)
        return
    if not args.database.startswith("postgres"):
        raise SystemExit("the journeys bench runs on PostgreSQL")
    parts = {"latency": latency, "segments": segments_part}
    {"dst": dst, "scale": scale, "triggers": triggers_part, **parts}[args.part](args)


if __name__ == "__main__":
    main()
