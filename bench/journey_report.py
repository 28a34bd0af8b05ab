"""A journey's report (issue 22): the control group's lift over many entries and orders.

    .venv/bin/python bench/journey_report.py --enrollments 200000 --orders 400000 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_journey_report

A scratch database (dropped and re-created): one store running a journey, ``--enrollments``
entries of ``--enrollments / 2`` records (entered 1 to 120 days ago, 10 % in the control
group), ``--orders`` orders of those records over the last 150 days (set-based SQL as the
owner, then ANALYZE). Measures, as the app role under row-level security: ``report.lifts`` with nothing written
(every closed entry's orders read on the (contact, time) index), the nightly
``report.close_windows`` (first pass, then the next night's), ``report.lifts`` once the
windows are written (their rows summed) — median of ``--repeat`` — against a bare count of
the same entries by group (the baseline: one pass over the table, no orders read).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from _setup import recreate_database, table

NOW_SQL = "%(now)s::timestamptz"


def _world(args, now):
    import psycopg
    from django.db import connection

    from enseigne.contacts.models import Contact
    from enseigne.lib.rowsecurity import ALL, db_scope

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import journeys as journey_bench  # bench/journeys.py: the store, its records and run

    people = max(1, args.enrollments // 2)
    flow = {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "out",
        "steps": {"out": {"kind": "exit"}},
    }
    with db_scope(ALL):
        run = journey_bench._store_and_run("jr", people, flow, now)
        first = Contact.objects.order_by("pk").values_list("pk", flat=True).first()
    connection.close()
    started = time.perf_counter()
    values = {
        "run": run.pk,
        "version": run.version_id,
        "unit": run.unit_id,
        "path": run.unit_path,
        "first": first,
        "people": people,
        "entries": args.enrollments,
        "orders": args.orders,
        "now": now,
    }
    with psycopg.connect(args.database, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO journeys_enrollment (run_id, version_id, contact_id, unit_path, "
            "occurrence, step, status, held_out, wake_at, entered_at, updated_at) "
            "SELECT %(run)s, %(version)s, %(first)s + g %% %(people)s, %(path)s, g::text, "
            "'out', 'done', (g * 7919) %% 10 = 0, NULL, "
            f"{NOW_SQL} - interval '1 day' - ((g * 104729) %% 10368000) * interval '1 second', "
            f"{NOW_SQL} FROM generate_series(0::bigint, %(entries)s - 1) g",
            values,
        )
        conn.execute(
            "INSERT INTO commerce_order (public_id, unit_id, unit_path, external_id, contact_id, "
            "occurred_at, total, channel, source, created_at) "
            "SELECT gen_random_uuid(), %(unit)s, %(path)s, 'B' || g, "
            "%(first)s + (g * 31337) %% %(people)s, "
            f"{NOW_SQL} - ((g * 7919) %% 12960000) * interval '1 second', "
            "CASE WHEN g %% 17 = 0 THEN -10 ELSE 5 + (g %% 90) END, 'in_store', 'demo', "
            f"{NOW_SQL} FROM generate_series(0::bigint, %(orders)s - 1) g",
            values,
        )
        conn.execute("ANALYZE")
    return run, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--enrollments", type=int, default=200_000)
    parser.add_argument("--orders", type=int, default=400_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    os.environ["DATABASE_APP_ROLE"] = "enseigne_app"
    import datetime as dt

    from _setup import django_ready

    recreate_database(args.database)
    django_ready()
    from django.db import connection

    from enseigne.journeys import report
    from enseigne.journeys.models import JourneyRun
    from enseigne.lib.rowsecurity import ALL, db_scope

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    run, setup = _world(args, now)
    runs = JourneyRun.objects.filter(pk=run.pk)

    def median_of(call, repeat: int) -> tuple[float, float, object]:
        timings, found = [], None
        for _round in range(repeat):
            with db_scope(ALL):
                started = time.perf_counter()
                found = call()
                timings.append(time.perf_counter() - started)
        return statistics.median(timings), max(timings), found

    def bare_count():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT held_out, count(*) FROM journeys_enrollment WHERE run_id = %s "
                "GROUP BY held_out",
                [run.pk],
            )
            return cursor.fetchall()

    joined = median_of(lambda: report.lifts(runs, now=now)[run.pk], args.repeat)
    first = median_of(lambda: report.close_windows(now=now), 1)
    night = median_of(lambda: report.close_windows(now=now), 1)
    import psycopg

    with psycopg.connect(args.database, autocommit=True) as owner:
        owner.execute("ANALYZE journeys_entrypurchases")
    summed = median_of(lambda: report.lifts(runs, now=now)[run.pk], args.repeat)
    baseline = median_of(bare_count, args.repeat)
    found = summed[2]
    assert isinstance(found, report.Lift) and isinstance(joined[2], report.Lift)
    assert (found.treated, found.control, found.waiting) == (
        joined[2].treated,
        joined[2].control,
        joined[2].waiting,
    ), "the written windows must give the joined figures"
    load = os.getloadavg()
    print(
        f"\n{args.enrollments:,} entries, {args.orders:,} orders; generated in {setup:.0f} s; "
        f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(
        f"counted: {found.treated.people:,} with messages ({found.treated.buyers:,} bought), "
        f"{found.control.people:,} in the control group ({found.control.buyers:,} bought), "
        f"{found.waiting:,} waiting for their window; rows written: first pass {first[2]:,}, "
        f"next night {night[2]:,}"
    )
    table(
        f"The report's lift (app role, RLS), seconds, median of {args.repeat}",
        [
            ("query", "median", "max"),
            ("report.lifts, nothing written: every closed entry's orders read", *_s(joined)),
            ("report.close_windows, first pass: every closed window written", *_s(first)),
            ("report.close_windows, next night: the last 7 days' windows again", *_s(night)),
            ("report.lifts after the pass: written windows summed", *_s(summed)),
            ("baseline: count of the entries by group", *_s(baseline)),
        ],
    )


def _s(measured) -> tuple[str, str]:
    return f"{measured[0]:.2f}", f"{measured[1]:.2f}"


if __name__ == "__main__":
    main()
