"""The preferred-channel conditions (issue 21) beside "clicked in the last N days".

    .venv/bin/python bench/preferred_channel.py --contacts 1000000 --units 100

A scratch PostgreSQL database (dropped and re-created) holds ``--contacts`` contacts in
``--units`` units (``segments.generate``), each linked to its person, a fifth of them in
pairs across two units (``audience.link_people``). Three finished e-mail campaigns and one
SMS campaign have ledgers (every 2nd, 3rd, 5th contact by e-mail, every 4th by SMS); human
clicks on every 7th e-mail row and every 11th SMS row (SMS clicks are not recorded by the
product yet: they stand for the later issue), machine clicks on every 13th e-mail row, an
attributed purchase on every 29th. Measured as HQ (the network, and the person level) and as
one store, under row-level security, each the median of 5 counts through the segment
compiler, beside "clicked a campaign in the last 90 days" and a bare ``COUNT(*)`` in the
same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/enseigne_bench_channel"


def build(args) -> dict:
    from _setup import bench_network, bench_users
    from audience import _analyze, link_people
    from django.db import connection, transaction
    from django.utils import timezone
    from segments import generate

    from enseigne.brand.services import template_create
    from enseigne.campaigns import services
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from tests.campaign_helpers import EMAIL_SOURCE, SMS_SOURCE

    now = timezone.now()
    with db_scope(ALL):
        roles = network.builtin_roles_ensure()
        root, units = bench_network("bench-seg", args.units)
        hq, manager = bench_users(root, units[0], roles)
        started = time.perf_counter()
        with transaction.atomic():
            generate(units, args.contacts // args.units)
            link_people(args.contacts // args.units, 0.2)
        generated = time.perf_counter() - started
        templates = {
            channel: template_create(
                actor=hq,
                shared_with=root,
                channel=channel,
                name=channel,
                source=source,
                sms_stop="STOP 36111",
            )
            for channel, source in (("email", EMAIL_SOURCE), ("sms", SMS_SOURCE))
        }
        started = time.perf_counter()
        for name, channel, every, days, clicked in (
            ("A", "email", 2, 10, 7),
            ("B", "email", 3, 40, 7),
            ("C", "email", 5, 200, 7),
            ("S", "sms", 4, 20, 11),
        ):
            campaign = services.campaign_create_national(
                actor=hq,
                channel=channel,
                name=name,
                template=templates[channel],
                send_at=now - dt.timedelta(days=days),
                allow_opt_out=False,
            )
            sent_at = now - dt.timedelta(days=days)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(
                    "INSERT INTO campaigns_recipient (campaign_id, contact_id, unit_id, unit_path, "
                    "channel, status, reason, detail, lease_owner, attempts, ambiguous_count, "
                    "segments, feedback, sent_at) SELECT %s, id, unit_id, unit_path, %s, 'sent', "
                    "'', '', '', 1, 0, 0, '', %s FROM contacts_contact WHERE id %% %s = 0",
                    [campaign.pk, channel, sent_at, every],
                )
                # Human clicks, machine clicks (e-mail), attributed purchases.
                for kind, modulo, machine in ((4, clicked, False), (4, 13, True), (8, 29, False)):
                    cursor.execute(
                        "INSERT INTO delivery_event (occurred_at, kind, channel, campaign_id, "
                        "unit_id, unit_path, recipient_id, link_id, machine) "
                        "SELECT %s, %s, channel, campaign_id, unit_id, unit_path, id, NULL, %s "
                        "FROM campaigns_recipient WHERE campaign_id = %s AND id %% %s = 0",
                        [sent_at + dt.timedelta(hours=2), kind, machine, campaign.pk, modulo],
                    )
        history = time.perf_counter() - started
    _analyze(args.database)
    return {
        "root": root,
        "units": units,
        "hq": hq,
        "manager": manager,
        "generated": generated,
        "history": history,
    }


def figures(world) -> list[tuple]:
    from segments import timed

    from enseigne.contacts.models import Contact
    from enseigne.contacts.segments import segment_count
    from enseigne.lib.rowsecurity import db_scope

    root, store = world["root"].path, world["units"][0].path

    def count(user, path, field, value, days=90):
        tree = {"match": "all", "rules": [{"field": field, "op": "equals", "value": value}]}
        tree["rules"][0]["days"] = days
        if field == "clicked":
            tree["rules"][0] = {"field": field, "op": "any_in_last_days", "value": days}
        with db_scope([path]):
            return segment_count(user, tree)

    def bare(path):
        with db_scope([path]):
            return Contact.objects.filter(unit_path__startswith=path).count()

    rows = []
    for who, user, path in (("network", world["hq"], root), ("one store", world["manager"], store)):
        bare_ms, total = timed(lambda path=path: bare(path))
        clicked_ms, clicked = timed(lambda u=user, p=path: count(u, p, "clicked", None))
        for field, value in (("preferred_channel", "email"), ("preferred_channel", "sms")):
            ms, n = timed(lambda u=user, p=path, f=field, v=value: count(u, p, f, v))
            rows.append(
                (
                    f"{field} = {value}, 90 days, {who} ({total:,})",
                    f"{ms:,.1f}",
                    f"{n:,}",
                    f"clicked in 90 days {clicked_ms:,.1f} ms ({clicked:,}); "
                    f"bare COUNT(*) {bare_ms:,.1f} ms",
                )
            )
    ms, n = timed(lambda: count(world["hq"], root, "person_preferred_channel", "email"))
    rows.append(
        (
            "person_preferred_channel = email, 90 days, network",
            f"{ms:,.1f}",
            f"{n:,}",
            "see the network's rows above",
        )
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    for name, default in (("contacts", 1_000_000), ("units", 100), ("database", DEFAULT_DATABASE)):
        parser.add_argument(f"--{name}", type=type(default), default=default)
    args = parser.parse_args()
    os.environ.update(
        {
            "DATABASE_URL": args.database,
            "DATABASE_APP_ROLE": os.environ.get("DATABASE_APP_ROLE", "enseigne_app"),
            "ENSEIGNE_DATA_DIR": os.environ.get("ENSEIGNE_DATA_DIR", "/tmp/enseigne-bench-channel"),
        }
    )
    from _setup import django_ready, recreate_database, table

    recreate_database(args.database)
    django_ready()
    world = build(args)
    rows = [
        ("measure", "median ms", "result", "baseline (same run)"),
        ("generate contacts and persons (SQL)", f"{world['generated']:,.0f} s", "", ""),
        ("ledgers and events (SQL)", f"{world['history']:,.0f} s", "", ""),
        *figures(world),
    ]
    table(f"Preferred channel, PostgreSQL, {args.contacts:,} contacts", rows)


if __name__ == "__main__":
    main()
