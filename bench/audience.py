"""National audience preview with marketing pressure, and the send pipeline's next-batch fetch.

    .venv/bin/python bench/audience.py --contacts 1000000 --units 100
    .venv/bin/python bench/audience.py --contacts 10000000 --units 100 --skip-preview

A scratch PostgreSQL database (dropped and re-created) holds a network of ``--units``
units sharing ``--contacts`` contacts (70 % with email consent), generated in SQL, and
what makes a preview work for its answer:

- pressure caps of at most 2 marketing e-mails in 7 days and 4 in 30 days;
- two finished national campaigns whose ledgers say they reached every third contact
  2 days ago and every fifth 5 days ago (so every fifteenth contact is at the cap);
- a national campaign scheduled for tomorrow, which counts against the cap too;
- 1 % of the addresses (all with consent) on the brand-wide (hashed) suppression list;
- every contact linked to its person (identity), ``--shared`` of them (20 %) in pairs of
  neighbouring units: a national campaign sends those one message a person, and pressure
  counts per person.

Measured as HQ, through the same code as the campaign page, under row-level security:
``audience.preview`` of a national e-mail campaign to every unit (median of 3), beside a
bare ``COUNT(*)`` of the units' contacts in the same run. Then the campaign is launched
(its audience frozen into the ledger) and ``Runner.claim`` takes batches of 1,000 at the
start, in the middle (half the ledger sent, no VACUUM) and behind another worker's live
leases; each figure is the median and p95 of 20 claims, the fetch (``SELECT … FOR UPDATE
SKIP LOCKED``) timed apart from the whole claim (fetch, lease write, commit), beside a
bare ``SELECT id … ORDER BY id LIMIT 1000`` of the same pending rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/enseigne_bench_audience"


def _analyze(database: str) -> None:
    import psycopg

    with psycopg.connect(
        database.replace("postgres://", "postgresql://", 1), autocommit=True
    ) as conn:
        conn.execute("ANALYZE")


def _ms(fn, repeat: int) -> tuple[list[float], object]:
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, value


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.95) - 1)]


def link_people(per_unit: int, shared: float) -> None:
    """Every contact linked to its person, as the product's writers leave them (identity);
    ``shared`` of them, in pairs of neighbouring units (a contact and the one of the same
    rank in the unit before), are one person: two records for one person.

    The contacts of one unit were generated in one statement after the previous unit's, so
    rank ``g`` of unit ``u`` is ``first + u * per_unit + g``."""
    from django.db import connection

    step = max(1, round(1 / shared)) if shared else 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), count(*) FROM contacts_contact")
        first, total = cursor.fetchone()
        # One person a contact, in contact order (one statement: consecutive ids).
        cursor.execute(
            "INSERT INTO identity_person (created_at) SELECT now() FROM generate_series(1, %s)",
            [total],
        )
        cursor.execute("SELECT min(id) FROM identity_person")
        (person_base,) = cursor.fetchone()
        rank = "(c.id - %s)"
        twin = (
            f"CASE WHEN {rank} %% {step} = 0 AND ({rank} / %s) %% 2 = 1 "
            f"THEN {rank} - %s ELSE {rank} END"
            if step
            else rank
        )
        cursor.execute(
            "INSERT INTO identity_recordlink (contact_id, person_id, unit_path, method, linked_at) "
            f"SELECT c.id, %s + {twin}, c.unit_path, 'email', now() FROM contacts_contact c",  # noqa: S608
            [person_base, *([first, first, per_unit, first, per_unit, first] if step else [first])],
        )


def build(args) -> dict:
    from _setup import bench_network
    from django.db import connection, transaction
    from django.utils import timezone
    from segments import generate

    from enseigne.brand.services import template_create
    from enseigne.campaigns import services
    from enseigne.campaigns.models import Campaign
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from tests.campaign_helpers import EMAIL_SOURCE

    now = timezone.now()
    with db_scope(ALL):
        roles = network.builtin_roles_ensure()
        root, units = bench_network("bench-seg", args.units)
        hq = network.user_create(
            actor=None, email="bench-hq@example.com", password="bench-password-1"
        )
        network.membership_grant(actor=None, user=hq, node=root, role=roles["hq_admin"])
        started = time.perf_counter()
        with transaction.atomic():
            generate(units, args.contacts // args.units)
        generated = time.perf_counter() - started
        with transaction.atomic():
            link_people(args.contacts // args.units, args.shared)
        services.pressure_rules_replace(
            actor=hq, node=root, rules=[("email", 2, 7), ("email", 4, 30)]
        )
        template = template_create(
            actor=hq,
            shared_with=root,
            channel="email",
            name="Saison",
            source=EMAIL_SOURCE,
            subject="{{ contact.first_name }}, la saison commence",
        )

        def national(name, send_at):
            return services.campaign_create_national(
                actor=hq,
                channel="email",
                name=name,
                template=template,
                send_at=send_at,
                allow_opt_out=False,
            )

        started = time.perf_counter()
        for name, days, modulo in (("Past A", 2, 3), ("Past B", 5, 5)):
            past = national(name, now - dt.timedelta(days=days))
            with transaction.atomic(), connection.cursor() as cursor:
                # Checked per statement: hundreds of thousands of deferred foreign-key checks
                # queued for the commit took minutes here.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(
                    "INSERT INTO campaigns_recipient (campaign_id, contact_id, unit_id, unit_path, channel, status, "
                    "reason, detail, lease_owner, attempts, ambiguous_count, segments, feedback, sent_at) "
                    "SELECT %s, id, unit_id, unit_path, 'email', 'sent', '', '', '', 1, 0, 0, '', %s "
                    "FROM contacts_contact WHERE id %% %s = 0 AND email_consent = 'granted'",
                    [past.pk, now - dt.timedelta(days=days), modulo],
                )
            Campaign.objects.filter(pk=past.pk).update(status=Campaign.Status.FINISHED)
        with transaction.atomic(), connection.cursor() as cursor:
            # Contacts with consent (the 70 % where id % 10 < 7), or consent would hide them.
            cursor.execute(
                "INSERT INTO contacts_suppression (channel, value_hash, unit_path, reason, created_at) "
                "SELECT 'email', email_hash, '', 'hard_bounce', now() FROM contacts_contact WHERE id % 100 = 5"
            )
    # As the owner, as autovacuum would after such a load, and once it is committed: inside
    # db_scope's transaction the statistics saw empty tables.
    _analyze(args.database)
    history = time.perf_counter() - started
    with db_scope(ALL):
        planned = national("Planned tomorrow", now + dt.timedelta(days=1))
        services.campaign_submit(actor=hq, campaign=planned)
        services.campaign_schedule(actor=hq, campaign=planned, send_at=now + dt.timedelta(days=1))
        campaign = national("Measured", now + dt.timedelta(days=2))
    return {
        "hq": hq,
        "units": units,
        "campaign": campaign,
        "generated": generated,
        "history": history,
    }


def preview_figures(world, repeat: int) -> list[tuple]:
    from enseigne.campaigns import audience
    from enseigne.contacts.models import Contact
    from enseigne.lib.rowsecurity import ALL, db_scope

    campaign = world["campaign"]

    def preview():
        with db_scope(ALL):
            return audience.preview(campaign)

    def bare():
        with db_scope(ALL):
            return Contact.objects.filter(unit__in=[u.pk for u in world["units"]]).count()

    times, result = _ms(preview, repeat)
    bare_times, total = _ms(bare, repeat)
    exclusions = ", ".join(f"{k} {v:,}" for k, v in sorted(result.exclusions.items()))
    sources = ", ".join(f"{name} {n:,}" for name, n in result.pressure_sources)
    return [
        (
            f"national preview, 100 units, with pressure (median of {repeat})",
            f"{statistics.median(times):,.0f} ms",
            f"{result.recipients:,} of {result.candidates:,}",
        ),
        ("  exclusions", "", exclusions),
        ("  pressure lost to", "", sources),
        (
            "baseline: bare COUNT(*) of the units' contacts",
            f"{statistics.median(bare_times):,.0f} ms",
            f"{total:,}",
        ),
    ]


def claim_figures(world, repeat: int) -> list[tuple]:
    from django.db import connection, transaction
    from django.utils import timezone

    from enseigne.campaigns import services
    from enseigne.campaigns.models import Recipient
    from enseigne.delivery.pipeline import Runner
    from enseigne.lib.rowsecurity import ALL, db_scope

    campaign, hq = world["campaign"], world["hq"]
    with db_scope(ALL):
        services.campaign_submit(actor=hq, campaign=campaign)
        services.campaign_schedule(
            actor=hq, campaign=campaign, send_at=timezone.now() + dt.timedelta(minutes=1)
        )
        started = time.perf_counter()
        ledger = services.campaign_launch(actor=hq, campaign=campaign)
        launch_s = time.perf_counter() - started
    _analyze(os.environ["DATABASE_URL"])
    runner = Runner(campaign.pk, worker="bench-claim")
    fetches: list[float] = []

    def fetch_timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if "FOR UPDATE SKIP LOCKED" in sql:
                fetches.append((time.perf_counter() - started) * 1000)

    def claims() -> tuple[list[float], list[float], int]:
        fetches.clear()
        took, got = [], 0
        with connection.execute_wrapper(fetch_timer):
            for _ in range(repeat):
                started = time.perf_counter()
                rows = runner.claim()
                took.append((time.perf_counter() - started) * 1000)
                got += len(rows)
                with transaction.atomic(), db_scope(ALL):  # "sent", so the next claim moves on
                    Recipient.objects.filter(pk__any=[r["id"] for r in rows]).update(
                        status=Recipient.Status.SENT,
                        sent_at=timezone.now(),
                        lease_owner="",
                        lease_until=None,
                    )
        return took, list(fetches), got

    def bare() -> list[float]:
        def once():
            with transaction.atomic(), db_scope(ALL), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id FROM campaigns_recipient WHERE campaign_id = %s AND status = 'pending' "
                    "ORDER BY id LIMIT 1000",
                    [campaign.pk],
                )
                return cursor.fetchall()

        return _ms(once, repeat)[0]

    rows = [
        (
            "campaign launch: audience frozen into the ledger",
            f"{launch_s:,.1f} s",
            f"{ledger:,} rows",
        )
    ]

    def record(label):
        took, fetched, got = claims()
        rows.append(
            (
                f"{label}: fetch of the next 1,000 (median / p95)",
                f"{statistics.median(fetched):,.1f} / {_p95(fetched):,.1f} ms",
                f"{got:,} rows claimed",
            )
        )
        rows.append(
            (
                f"{label}: whole claim, fetch + lease + commit",
                f"{statistics.median(took):,.1f} / {_p95(took):,.1f} ms",
                "",
            )
        )
        base = bare()
        rows.append(
            (
                f"{label}: baseline, bare SELECT … LIMIT 1000",
                f"{statistics.median(base):,.1f} / {_p95(base):,.1f} ms",
                "",
            )
        )

    record("start")
    with transaction.atomic(), db_scope(ALL), connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM campaigns_recipient WHERE campaign_id = %s AND status = 'pending'",
            [campaign.pk],
        )
        (pending,) = cursor.fetchone()
        cursor.execute(
            "SELECT id FROM campaigns_recipient WHERE campaign_id = %s AND status = 'pending' ORDER BY id "
            "OFFSET %s LIMIT 1",
            [campaign.pk, pending // 2],
        )
        (middle,) = cursor.fetchone()
        cursor.execute(
            "UPDATE campaigns_recipient SET status = 'sent', sent_at = now() WHERE campaign_id = %s "
            "AND status = 'pending' AND id < %s",
            [campaign.pk, middle],
        )
    record("half sent")
    with transaction.atomic(), db_scope(ALL), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_recipient SET lease_owner = 'other', lease_until = now() + interval '1 hour' "
            "WHERE id IN (SELECT id FROM campaigns_recipient WHERE campaign_id = %s AND status = 'pending' "
            "ORDER BY id LIMIT 5000)",
            [campaign.pk],
        )
    record("behind 5,000 rows leased by another worker")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    parser.add_argument("--repeat", type=int, default=20, help="claims per measure")
    parser.add_argument("--skip-preview", action="store_true")
    parser.add_argument(
        "--shared",
        type=float,
        default=0.2,
        help="share of the records that are one person with a record of another unit",
    )
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("DATABASE_APP_ROLE", "enseigne_app")
    os.environ.setdefault("ENSEIGNE_DATA_DIR", "/tmp/enseigne-bench-audience")
    from _setup import django_ready, recreate_database, table

    recreate_database(args.database)

    django_ready()
    world = build(args)
    rows = [
        ("measure", "time", "result"),
        (
            "generate contacts (SQL)",
            f"{world['generated']:,.0f} s",
            f"{args.contacts:,} in {args.units} units",
        ),
        ("history: two past ledgers, suppressions, ANALYZE", f"{world['history']:,.0f} s", ""),
    ]
    if not args.skip_preview:
        rows += preview_figures(world, 3)
    rows += claim_figures(world, args.repeat)
    table(f"Audience preview and next-batch fetch, PostgreSQL, {args.contacts:,} contacts", rows)


if __name__ == "__main__":
    main()
