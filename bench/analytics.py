"""Reports and dashboards over a year of events: rollups, the campaign report, the network dashboard.

    .venv/bin/python bench/analytics.py --events 10000000 --units 100

A scratch PostgreSQL database (dropped and re-created) gets a network of ``--units``
units, 20 local campaigns per unit and one national campaign, and ``--events`` events
written in SQL: the national campaign's 2,000,000 over the last 30 days (1,000,000 sent,
600,000 opens, 300,000 clicks by 200,000 recipients, unsubscribes, bounces, sales), the
rest spread over the local campaigns and the last 365 days (monthly partitions made
first, as ``enseigne event_partitions`` would). Then, as the app role under row-level
security:

- the first rollup pass (every day from the first event) and an incremental one (today);
- the campaign report's totals for the national campaign (opens, unique clickers: rollups
  plus the day's raw events), beside the same two figures counted from the raw events;
- the network dashboard as HQ (100 units ranked, sparklines, interval verdicts, medians)
  and a unit's dashboard, for 90 and 365 days; the gallery.

Each figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/enseigne_bench_analytics"


def _owner(database: str):
    import psycopg

    return psycopg.connect(database.replace("postgres://", "postgresql://", 1), autocommit=True)


def _ms(fn, repeat: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), value


EVENTS_SQL = """
INSERT INTO delivery_event (occurred_at, kind, channel, campaign_id, unit_id, unit_path, recipient_id, link_id,
                            machine, amount)
SELECT now() - (g %% 365) * interval '1 day' - (g %% 997) * interval '1 minute',
       k.kind, 'email', c.id, c.unit_id, c.unit_path,
       CASE WHEN k.kind = 3 THEN NULL ELSE g / 3 END,
       CASE WHEN k.kind = 4 THEN 1 + g %% 3 END,
       k.kind IN (3, 4) AND g %% 17 = 0,
       CASE WHEN k.kind = 8 THEN (20 + g %% 80)::numeric END
FROM generate_series(1, %(n)s) AS g
CROSS JOIN LATERAL (SELECT CASE WHEN g %% 100 < 55 THEN 1 WHEN g %% 100 < 80 THEN 3 WHEN g %% 100 < 92 THEN 4
                               WHEN g %% 100 < 94 THEN 5 WHEN g %% 100 < 97 THEN 6 WHEN g %% 100 < 98 THEN 7
                               ELSE 8 END AS kind) AS k
JOIN bench_campaign AS c ON c.n = g %% %(campaigns)s
"""
BIG_SQL = """
INSERT INTO delivery_event (occurred_at, kind, channel, campaign_id, unit_id, unit_path, recipient_id, link_id,
                            machine, amount)
SELECT now() - (g %% 30) * interval '1 day' - (g %% 631) * interval '1 minute',
       k.kind, 'email', %(campaign)s, u.id, u.path,
       CASE WHEN k.kind = 3 THEN NULL WHEN k.kind = 4 THEN g %% 200000 ELSE g END,
       CASE WHEN k.kind = 4 THEN 1 + g %% 3 END,
       k.kind IN (3, 4) AND g %% 17 = 0,
       CASE WHEN k.kind = 8 THEN (20 + g %% 80)::numeric END
FROM generate_series(1, 2000000) AS g
CROSS JOIN LATERAL (SELECT CASE WHEN g <= 1000000 THEN 1 WHEN g <= 1600000 THEN 3 WHEN g <= 1900000 THEN 4
                               WHEN g <= 1950000 THEN 6 WHEN g <= 1980000 THEN 5 ELSE 8 END AS kind) AS k
JOIN bench_unit AS u ON u.n = g %% %(units)s
"""


def build(args) -> dict:
    from django.db import connection
    from django.utils import timezone

    from enseigne.brand.services import template_create
    from enseigne.campaigns.models import Campaign
    from enseigne.delivery import partitions
    from enseigne.lib.rowsecurity import ALL, db_scope, set_role_switch
    from enseigne.network import services as network
    from tests.campaign_helpers import EMAIL_SOURCE

    with db_scope(ALL):
        roles = network.builtin_roles_ensure()
        root = network.network_create(
            actor=None,
            name="Bench",
            code="bench-an",
            legal_name="Bench",
            sending_domain="example.com",
        )
        regions = [
            network.node_create(
                actor=None, parent=root, kind="region", name=f"R{r}", code=f"bench-an-r{r}"
            )
            for r in range(5)
        ]
        units = [
            network.node_create(
                actor=None,
                parent=regions[i % 5],
                kind="unit",
                name=f"U{i:03d}",
                code=f"bench-an-u{i}",
            )
            for i in range(args.units)
        ]
        hq = network.user_create(
            actor=None, email="bench-hq@example.com", password="bench-password-1"
        )
        network.membership_grant(actor=None, user=hq, node=root, role=roles["hq_admin"])
        template = template_create(
            actor=hq,
            shared_with=root,
            channel="email",
            name="Saison",
            source=EMAIL_SOURCE,
            subject="S",
        )
        made = Campaign.objects.bulk_create(
            [
                Campaign(
                    kind=Campaign.Kind.LOCAL,
                    channel="email",
                    name=f"{u.name} #{i}",
                    owner=u,
                    owner_path=u.path,
                    template=template,
                    status=Campaign.Status.FINISHED,
                )
                for u in units
                for i in range(20)
            ]
        )
        big = Campaign.objects.create(
            kind=Campaign.Kind.NATIONAL,
            channel="email",
            name="National",
            owner=root,
            owner_path=root.path,
            template=template,
            status=Campaign.Status.FINISHED,
        )
    Campaign.objects.filter(pk__in=[c.pk for c in made] + [big.pk]).update(
        created_at=timezone.now() - dt.timedelta(days=400)
    )
    set_role_switch(False)
    connection.close()
    today = timezone.localdate()
    partitions.ensure(today - dt.timedelta(days=400), today + dt.timedelta(days=60))
    connection.close()
    set_role_switch(True)
    started = time.perf_counter()
    with _owner(args.database) as owner:
        owner.execute("CREATE TABLE bench_unit (n int, id bigint, path text)")
        owner.cursor().executemany(
            "INSERT INTO bench_unit VALUES (%s, %s, %s)",
            [(i, u.pk, u.path) for i, u in enumerate(units)],
        )
        owner.execute(
            "CREATE TABLE bench_campaign (n int, id bigint, unit_id bigint, unit_path text)"
        )
        owner.cursor().executemany(
            "INSERT INTO bench_campaign VALUES (%s, %s, %s, %s)",
            [(i, c.pk, c.owner_id, c.owner_path) for i, c in enumerate(made)],
        )
        owner.execute(BIG_SQL, {"campaign": big.pk, "units": len(units)})
        owner.execute(EVENTS_SQL, {"n": args.events - 2_000_000, "campaigns": len(made)})
        owner.execute("ANALYZE")
        total = owner.execute("SELECT count(*) FROM delivery_event").fetchone()[0]
    return {
        "hq": hq,
        "root": root,
        "units": units,
        "big": big,
        "total": total,
        "generated": time.perf_counter() - started,
    }


def reuse() -> dict:
    """The previous run's network, its rollups cleared so the first pass is measured again."""
    from enseigne.analytics.models import DailyStat, RollupState, UnitDay
    from enseigne.campaigns.models import Campaign
    from enseigne.delivery.models import Event
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import OrgNode, User

    with db_scope(ALL):
        for model in (DailyStat, UnitDay, RollupState):
            model.objects.all().delete()
        return {
            "hq": User.objects.get(email="bench-hq@example.com"),
            "root": OrgNode.objects.get(code="bench-an"),
            "units": list(OrgNode.objects.filter(kind="unit").order_by("name")),
            "big": Campaign.objects.get(name="National"),
            "total": Event.objects.count(),
            "generated": 0.0,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database of the previous run (events and all) and measure again",
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("DATABASE_APP_ROLE", "enseigne_app")
    from _setup import django_ready, recreate_database, table

    if not args.reuse:
        recreate_database(args.database)
    django_ready()
    from django.db.models import Count

    from enseigne.analytics import rollups, selectors
    from enseigne.analytics.models import DailyStat, RollupState
    from enseigne.delivery.models import Event
    from enseigne.lib.rowsecurity import ALL, db_scope

    world = reuse() if args.reuse else build(args)
    with db_scope(ALL):
        started = time.perf_counter()
        first = rollups.refresh()
        first_seconds = time.perf_counter() - started
        rows = DailyStat.objects.count()
    with _owner(args.database) as owner:
        owner.execute("ANALYZE analytics_dailystat")
    with db_scope(ALL):
        started = time.perf_counter()
        rollups.refresh()
        incremental_seconds = time.perf_counter() - started
        state = RollupState.objects.get()
    big, hq, root = world["big"], world["hq"], world["root"]

    def report_totals():
        with db_scope([root.path]):
            out = selectors.campaign_rows(big, [root.path])
        return sum(c.opened for c in out.values()), sum(c.clickers for c in out.values())

    def raw_totals():
        with db_scope([root.path]):
            events = Event.objects.filter(campaign_id=big.pk, machine=False)
            opens = events.filter(kind=Event.Kind.OPENED).count()
            clickers = events.filter(kind=Event.Kind.CLICKED).aggregate(
                n=Count("recipient_id", distinct=True)
            )["n"]
        return opens, clickers

    report_ms, (opens, clickers) = _ms(report_totals, args.repeat)
    raw_ms, raw = _ms(raw_totals, args.repeat)
    assert (opens, clickers) == raw, f"report {(opens, clickers)} != raw {raw}"

    def network(days):
        def run():
            with db_scope([root.path]):
                return selectors.network_dashboard(hq, days=days, kpi="email_click_rate")

        return run

    def unit(days):
        def run():
            with db_scope([world["units"][7].path]):
                return selectors.unit_dashboard(world["units"][7], days=days)

        return run

    def gallery():
        with db_scope([root.path]):
            return selectors.gallery()

    network_90, board = _ms(network(90), args.repeat)
    network_365, board_year = _ms(network(365), args.repeat)
    unit_90, _ = _ms(unit(90), args.repeat)
    unit_365, _ = _ms(unit(365), args.repeat)
    gallery_ms, entries = _ms(gallery, args.repeat)
    table(
        f"Analytics over {world['total']:,} events, {args.units} units (PostgreSQL, median of {args.repeat})",
        [
            ("measure", "value"),
            ("events written (SQL, owner)", f"{world['total']:,} in {world['generated']:.0f} s"),
            (
                "first rollup pass (every day since the first event)",
                f"{first_seconds:.1f} s → {rows:,} daily rows ({first['days']} days)",
            ),
            (
                "incremental rollup pass (from the dirty day: today)",
                f"{incremental_seconds * 1000:.0f} ms "
                f"(dirty from {state.dirty_from:%Y-%m-%d %H:%M})",
            ),
            (
                "campaign report: opens + unique clickers, 2,000,000 events (rollups + raw events since the last pass)",
                f"{report_ms:.1f} ms ({opens:,} opens, {clickers:,} clickers)",
            ),
            ("same two figures counted from the raw events (baseline)", f"{raw_ms:.1f} ms"),
            (
                f"network dashboard as HQ, {len(board['rows'])} units, 90 days",
                f"{network_90:.0f} ms",
            ),
            (
                f"network dashboard as HQ, {len(board_year['rows'])} units, 365 days",
                f"{network_365:.0f} ms",
            ),
            ("unit dashboard, 90 days", f"{unit_90:.0f} ms"),
            ("unit dashboard, 365 days", f"{unit_365:.0f} ms"),
            (f"gallery ({len(entries)} campaigns shown)", f"{gallery_ms:.0f} ms"),
        ],
    )


if __name__ == "__main__":
    main()
