"""Users browsing through ``enseigne serve`` while a national audience is counted and a campaign sends.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_speed DATABASE_APP_ROLE=enseigne_app \
      ENSEIGNE_DATA_DIR=/tmp/ens-speed python bench/serve_load.py --port 8107 --users 20 \
      --seconds 60 --web-workers 2 --threads 1

On an existing demo database (``enseigne demo --no-serve``). Starts ``enseigne serve`` (granian,
``--web-workers`` × ``--threads``), one ``enseigne worker`` (the embedded SQLite Huey queue in
``ENSEIGNE_DATA_DIR``) and an SMTP sink (bench/_sink.py), then:

1. *quiet*: ``--users`` users (threads, each with its own session, logged in as the demo's
   personas in turn) open the demo's pages (bench/pages.py's list) one after the other,
   reading each for ``--think`` seconds on average (0: back to back), for ``--seconds`` / 2;
2. *busy*: the same, while the national campaign's audience is counted again and again by the
   worker (``figures_request`` as soon as the last count is done) and a national e-mail
   campaign to the whole network is launched and sends into the sink.

Prints p50 / p95 / max of every page in each phase, and how many counts and messages the
worker got through. The launched campaign is cancelled at the end (the demo keeps it, cancelled);
the next run deletes it and its ledger first, so that its sends do not hold the caps.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from _setup import django_ready, table
from pages import PASSWORD, PERSONAS, pages_for, percentile

ROOT = Path(__file__).resolve().parent.parent
BENCH_CAMPAIGN = "Bench: network send"


def _wait_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {seconds} s")


def _login(base: str, email: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=30).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    answer = session.post(
        f"{base}/login/",
        data={"username": email, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"login of {email} answered {answer.status_code}")
    return session


def _browse(base, session, urls, stop, out, errors, think):
    index = 0
    pause = random.Random(id(session))
    while not stop.is_set():
        if think:  # a person reads the page before the next click
            stop.wait(pause.uniform(think / 2, think * 1.5))
            if stop.is_set():
                break
        url = urls[index % len(urls)]
        index += 1
        started = time.perf_counter()
        try:
            response = session.get(f"{base}{url}", timeout=120)
            status = response.status_code
        except requests.RequestException:
            status = 0
        out.append((url, (time.perf_counter() - started) * 1000))
        if status != 200:
            errors.append((url, status))


def _phase(base, sessions, urls_by_user, seconds, think):
    stop = threading.Event()
    timings: list[tuple[str, float]] = []
    errors: list[tuple[str, int]] = []
    threads = [
        threading.Thread(
            target=_browse, args=(base, session, urls_by_user[i], stop, timings, errors, think)
        )
        for i, session in enumerate(sessions)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    return timings, errors


def _summary(name: str, timings, errors) -> list[tuple]:
    by_page: dict[str, list[float]] = {}
    for url, ms in timings:
        key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", url)
        by_page.setdefault(key, []).append(ms)
    rows = [("page", "requests", "p50 ms", "p95 ms", "max ms")]
    for page, values in sorted(by_page.items(), key=lambda item: -percentile(item[1], 95)):
        rows.append(
            (
                page,
                len(values),
                f"{statistics.median(values):.0f}",
                f"{percentile(values, 95):.0f}",
                f"{max(values):.0f}",
            )
        )
    every = [ms for _url, ms in timings]
    table(f"{name}: {len(every)} requests, {len(errors)} not 200", rows)
    if errors:
        print("not 200:", sorted(set(errors))[:10])
    print(
        f"{name}: all pages p50 {statistics.median(every):.0f} ms, "
        f"p95 {percentile(every, 95):.0f} ms, max {max(every):.0f} ms"
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8107)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sink-port", type=int, default=8125)
    parser.add_argument(
        "--think",
        type=float,
        default=3.0,
        help="mean seconds a user reads a page before the next (0: back to back)",
    )
    options = parser.parse_args()
    os.environ["HUEY_URL"] = os.environ.get("BENCH_HUEY_URL", "")  # the embedded queue
    if not os.environ["HUEY_URL"]:
        del os.environ["HUEY_URL"]
    django_ready()
    from django.db import transaction
    from django.utils import timezone

    from enseigne.brand.models import Template
    from enseigne.campaigns import figures, services
    from enseigne.campaigns.models import AudienceFigures, Campaign, Recipient
    from enseigne.delivery.services import sending_launch
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import User

    env = dict(os.environ)
    env["EMAIL_URL"] = f"smtp://127.0.0.1:{options.sink_port}"
    env["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    env.pop("HUEY_URL", None)
    sample = tempfile.NamedTemporaryFile(suffix=".eml", delete=False).name  # noqa: SIM115
    python = sys.executable
    children = [
        subprocess.Popen(  # noqa: S603
            [python, str(ROOT / "bench" / "_sink.py"), str(options.sink_port), sample, "0"],
            stdout=subprocess.DEVNULL,
        ),
        subprocess.Popen(  # noqa: S603
            [python, "-m", "enseigne.cli", "worker"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
        ),
        subprocess.Popen(  # noqa: S603
            [
                python,
                "-m",
                "enseigne.cli",
                "serve",
                "--port",
                str(options.port),
                "--workers",
                str(options.web_workers),
                "--threads",
                str(options.threads),
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
        ),
    ]
    base = f"http://127.0.0.1:{options.port}"
    try:
        _wait_up(f"{base}/login/")
        with db_scope(ALL):
            # An earlier run's send counts against the pressure caps (2 e-mails in 7 days in
            # the demo): without this, a second run's campaign skipped everyone and sent nothing.
            # Before the users' page lists are made, which would hold its pages.
            Recipient.objects.filter(campaign__name=BENCH_CAMPAIGN).delete()
            Campaign.objects.filter(name=BENCH_CAMPAIGN).delete()
        users = [User.objects.get(email=e) for e in PERSONAS]
        sessions, urls = [], []
        for i in range(options.users):
            user = users[i % len(users)]
            sessions.append(_login(base, user.email))
            pages = pages_for(user)
            urls.append(pages[i % len(pages) :] + pages[: i % len(pages)])
        with db_scope(ALL):
            national = (
                Campaign.objects.filter(kind="national", launched_at__isnull=True)
                .exclude(status__in=("cancelled", "finished"))
                .first()
            )
        half = options.seconds // 2
        quiet, quiet_errors = _phase(base, sessions, urls, half, options.think)

        # Busy: count the national audience again and again, and send a campaign.
        stop = threading.Event()
        counts = [0]

        def recount():
            while not stop.is_set():
                with db_scope(ALL):
                    row = AudienceFigures.objects.filter(campaign=national).first()
                    idle = row is None or row.queued_at is None
                    if idle:
                        if row is not None and row.computed_at:
                            counts[0] += 1
                        figures.figures_request(national)
                time.sleep(0.5)

        admin = User.objects.get(email=PERSONAS[0])
        with db_scope(ALL), transaction.atomic():
            template = Template.objects.filter(channel="email", current__isnull=False).first()
            sending = services.campaign_create_national(
                actor=admin, channel="email", name=BENCH_CAMPAIGN, template=template
            )
            services.campaign_submit(actor=admin, campaign=sending)
            sending_launch(actor=admin, campaign=sending)
        launched = time.monotonic()
        counter = threading.Thread(target=recount)
        counter.start()
        busy, busy_errors = _phase(base, sessions, urls, options.seconds - half, options.think)
        stop.set()
        counter.join()
        elapsed = time.monotonic() - launched
        with db_scope(ALL):
            sent = Recipient.objects.filter(campaign=sending, status="sent").count()
            total = Recipient.objects.filter(campaign=sending).count()
            sending.refresh_from_db()
            if sending.status in ("sending", "paused"):
                services.campaign_cancel(actor=admin, campaign=sending)
        _summary("quiet", quiet, quiet_errors)
        _summary("busy (national count + a campaign sending)", busy, busy_errors)
        print(
            f"\nDuring the busy phase the worker counted the national audience {counts[0]} "
            f"time(s) and sent {sent:,} of {total:,} ledger rows in {elapsed:.0f} s "
            f"({options.users} users reading {options.think:g} s a page on average, "
            f"{options.web_workers} web worker(s) × "
            f"{options.threads} thread(s), {timezone.now():%Y-%m-%d %H:%M} UTC)."
        )
    finally:
        for child in reversed(children):
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        Path(sample).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
