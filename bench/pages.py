"""Every page of the demo, driven through Django's test client as the demo's personas.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_speed DATABASE_APP_ROLE=enseigne_app \
      ENSEIGNE_DATA_DIR=/tmp/ens-speed python bench/pages.py [--repeat 20] [--only campaigns]

Runs on an existing database (``enseigne demo --no-serve`` seeds it, or bench/audience.py's
network with ``--network``): it reads the pages, it never writes except the session rows of
the logins. Prints p50 / p95 / max per page and persona, and the worst p95.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _setup import django_ready, table

PERSONAS = [
    "siege@maison-lumiere.test",
    "marketing@maison-lumiere.test",
    "region.sud-est@maison-lumiere.test",
    "lyon@maison-lumiere.test",
    "vendeur.lyon@maison-lumiere.test",
]
PASSWORD = "enseigne-demo"


def pages_for(user) -> list[str]:
    """The pages a persona opens: the menus' pages and each object's page (first few of each)."""
    from enseigne.brand.models import Template
    from enseigne.campaigns.selectors import campaigns_for_user
    from enseigne.contacts.models import Contact, Segment
    from enseigne.lib.rowsecurity import ALL, db_scope

    with db_scope(ALL):
        campaigns = list(campaigns_for_user(user).order_by("-created_at")[:12])
        contacts = list(Contact.objects.order_by("id").values_list("public_id", flat=True)[:2])
        segments = list(Segment.objects.order_by("id").values_list("public_id", flat=True)[:2])
        templates = list(Template.objects.order_by("id").values_list("public_id", flat=True)[:2])
    urls = [
        "/hq/",
        "/contacts/",
        "/segments/",
        "/imports/",
        "/brand/templates/",
        "/brand/assets/",
        "/campaigns/",
        "/campaigns/calendar/",
        "/campaigns/calendar/events/",
        "/campaigns/rules/",
        "/campaigns/approvals/",
        "/results/",
        "/results/people/",
        "/gallery/",
        "/outbox/",
    ]
    urls += [f"/contacts/{pk}/" for pk in contacts]
    urls += [f"/segments/{pk}/" for pk in segments]
    urls += [f"/brand/templates/{pk}/" for pk in templates]
    for campaign in campaigns:
        urls.append(f"/campaigns/{campaign.public_id}/")
        if campaign.launched_at is None:
            urls.append(f"/campaigns/{campaign.public_id}/audience/")
        else:
            urls.append(f"/campaigns/{campaign.public_id}/progress/")
            urls.append(f"/campaigns/{campaign.public_id}/report/")
    return urls


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    # A queue nobody consumes: a page that asks for a count must not run it (immediate mode).
    queue = Path(tempfile.gettempdir()) / "enseigne-bench-pages-queue.sqlite3"
    os.environ["HUEY_URL"] = os.environ.get("BENCH_HUEY_URL", f"sqlite:///{queue}")
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--only", default="", help="only URLs containing this text")
    parser.add_argument("--personas", default=",".join(PERSONAS))
    parser.add_argument("--password", default=PASSWORD)
    options = parser.parse_args()
    django_ready()
    from django.test import Client

    from enseigne.campaigns.figures import COUNTED, figures_compute
    from enseigne.campaigns.models import Campaign
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import User

    # The worker's part, done before the pages are timed: every campaign's audience is counted
    # and kept (the pages read the figures; their queue here is one nobody consumes).
    with db_scope(ALL):
        planned = list(Campaign.objects.filter(status__in=COUNTED).values_list("pk", flat=True))
    for pk in planned:
        figures_compute(pk)
    timings: dict[tuple[str, str], list[float]] = {}
    statuses: dict[tuple[str, str], int] = {}
    for email in options.personas.split(","):
        user = User.objects.get(email=email)
        client = Client()
        if not client.login(username=email, password=options.password):
            client.force_login(user)
        urls = [u for u in pages_for(user) if options.only in u]
        # One warm-up round (template and query-plan caches); pages the persona may not open
        # (another unit's contact, a 403) are left out of the figures.
        urls = [u for u in urls if client.get(u).status_code == 200]
        for _ in range(options.repeat):
            for url in urls:
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
                key = (email.split("@")[0], url)
                timings.setdefault(key, []).append(elapsed * 1000)
                statuses[key] = response.status_code
    rows = [("persona", "page", "status", "p50 ms", "p95 ms", "max ms")]
    for (persona, url), values in sorted(
        timings.items(), key=lambda item: -percentile(item[1], 95)
    ):
        rows.append(
            (
                persona,
                url,
                statuses[(persona, url)],
                f"{statistics.median(values):.0f}",
                f"{percentile(values, 95):.0f}",
                f"{max(values):.0f}",
            )
        )
    table("Pages through the test client (slowest p95 first)", rows)
    every = [v for values in timings.values() for v in values]
    print(
        f"\n{len(timings)} page×persona, {len(every)} requests: "
        f"p50 {statistics.median(every):.0f} ms, p95 {percentile(every, 95):.0f} ms, "
        f"worst page p95 {max(percentile(v, 95) for v in timings.values()):.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
