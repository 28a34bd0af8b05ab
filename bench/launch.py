"""How long *Send now*'s confirmed post takes: the demo's national campaign, as head office.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_speed DATABASE_APP_ROLE=enseigne_app \
      ENSEIGNE_DATA_DIR=/tmp/ens-speed python bench/launch.py [--repeat 7]

Runs on the demo's database (``enseigne demo --no-serve`` seeds it) and leaves it as it was:
each post runs inside a transaction that is rolled back (what the worker does after the
commit is not timed; the page's answer is). Prints p50 / max, the ledger rows the post
wrote before its rollback and, where the worker freezes, how long its freeze takes.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _setup import django_ready, table


class _Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--campaign", default="Les fêtes s'illuminent")
    parser.add_argument("--persona", default="marketing@maison-lumiere.test")
    args = parser.parse_args()
    django_ready()

    from django.db import transaction
    from django.test import Client

    from enseigne.campaigns.models import Campaign, Recipient
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import User

    with db_scope(ALL):
        campaign = Campaign.objects.get(name=args.campaign)
        user = User.objects.get(email=args.persona)
    client = Client()
    client.force_login(user)
    url = f"/campaigns/{campaign.public_id}/launch/"
    times, rows, statuses = [], [], set()
    for _ in range(args.repeat + 1):  # the first one warms up
        try:
            with transaction.atomic():
                started = time.perf_counter()
                response = client.post(url, {"confirm": "yes"})
                took = time.perf_counter() - started
                assert response.status_code == 302, response.status_code
                with db_scope(ALL):
                    rows.append(Recipient.objects.filter(campaign=campaign).count())
                    statuses.add(Campaign.objects.get(pk=campaign.pk).status)
                times.append(took)
                raise _Rollback
        except _Rollback:
            pass
    times = times[1:]
    worker = []
    try:
        from enseigne.campaigns.preparation import campaign_prepare
    except ImportError:  # before the launch moved its freeze to the worker
        campaign_prepare = None
    for _ in range(3 if campaign_prepare else 0):
        try:
            with transaction.atomic():
                client.post(url, {"confirm": "yes"})
                started = time.perf_counter()
                campaign_prepare(campaign.pk)
                worker.append(time.perf_counter() - started)
                raise _Rollback
        except _Rollback:
            pass
    table(
        f"Send now, confirmed: {args.campaign} ({campaign.status}), {args.repeat} posts",
        [
            ("p50", "max", "ledger rows written", "status after", "worker's freeze, p50"),
            (
                f"{statistics.median(times) * 1000:.0f} ms",
                f"{max(times) * 1000:.0f} ms",
                max(rows),
                ", ".join(sorted(statuses)),
                f"{statistics.median(worker) * 1000:.0f} ms" if worker else "—",
            ),
        ],
    )


if __name__ == "__main__":
    main()
