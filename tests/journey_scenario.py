"""Birthdays across a change of time, moved by worker processes that can be SIGKILLed.

Shared by ``tests/test_journey_faults.py`` (a small run) and ``bench/journeys.py`` (1,000
birthdays). Run as a script against a scratch database the workers can reach:

    DATABASE_URL=… python tests/journey_scenario.py setup <birthdays>     → prints the run id
    DATABASE_URL=… python tests/journey_scenario.py worker <clock file> <seconds per hour>

The clock is simulated and shared: at wall time ``t`` every worker reads the moment
``START + (t − t0) / seconds-per-hour`` hours (``t0`` written in the clock file once the
first workers are ready), so a worker killed and started again goes on
at the same moment as the one that stayed alive. Each worker loops: the triggers' pass, the
engine's batches, then the journey campaigns' runner (sending through ``EMAIL_URL``), until
the simulated clock passes ``END`` and nothing is left pending.

Paris goes to summer time on Sunday 2026-03-29 at 02:00 local (01:00 UTC): the birthdays
fall on 27–31 March, every local day around the change.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

PARIS = ZoneInfo("Europe/Paris")
START = dt.datetime(2026, 3, 26, 21, 0, tzinfo=dt.UTC)
END = dt.datetime(2026, 4, 1, 3, 0, tzinfo=dt.UTC)
DAYS = [dt.date(2026, 3, d) for d in (27, 28, 29, 30, 31)]


def simulated(t0: float, per_hour: float) -> dt.datetime:
    return START + dt.timedelta(hours=(time.time() - t0) / per_hour)


def setup(total: int) -> None:
    from tests.send_scenario import migrated

    migrated()
    from enseigne.contacts.models import ConsentStatus, Contact
    from enseigne.journeys.models import JourneyRun, JourneyTemplate, JourneyVersion
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import Network
    from tests.campaign_helpers import email_template
    from tests.factories import build_world

    with db_scope(ALL):
        world = build_world()
        Network.objects.filter(node=world.root).update(time_zone="Europe/Paris")
        unit = world.unit_a
        Contact.objects.bulk_create(
            [
                Contact(
                    unit=unit,
                    unit_path=unit.path,
                    email=f"b{i}@example.com",
                    first_name=f"B{i}",
                    email_consent=ConsentStatus.GRANTED,
                    birthday=DAYS[i % len(DAYS)].replace(year=1970 + i % 40),
                )
                for i in range(total)
            ],
            batch_size=5000,
        )
        hello = email_template(world, "Anniversaire")
        template = JourneyTemplate.objects.create(
            network=Network.objects.get(node=world.root),
            owner=world.root,
            owner_path=world.root.path,
            name="Anniversaire",
            created_by=world.hq_admin,
            reentry=JourneyTemplate.Reentry.EVERY,
        )
        version = JourneyVersion.objects.create(
            template=template,
            number=1,
            owner_path=world.root.path,
            flow={
                "trigger": {"kind": "date", "field": "birthday"},
                "start": "hello",
                "steps": {
                    "hello": {"kind": "send_email", "template": str(hello.public_id)},
                },
            },
        )
        template.live_version = version
        template.save()
        run = JourneyRun.objects.create(
            template=template,
            version=version,
            unit=unit,
            unit_path=unit.path,
            starts_on=dt.date(2026, 3, 1),
            created_by=world.manager_a,
        )
    print(run.pk)


def worker(clock: str, per_hour: float) -> None:
    import django

    django.setup()
    import logging

    from django.db import DatabaseError

    from enseigne.campaigns.models import Recipient
    from enseigne.delivery.pipeline import run_campaign
    from enseigne.journeys import engine, triggers
    from enseigne.journeys.models import Enrollment, JourneySend
    from enseigne.lib.rowsecurity import ALL, db_scope

    print("ready", flush=True)
    while not os.path.exists(clock):  # the clock starts when both workers are ready
        time.sleep(0.02)
    with open(clock) as handle:
        t0 = float(handle.read())
    while True:
        now = simulated(t0, per_hour)
        try:
            triggers.run_triggers(now)
            engine.advance_all(now=now)
            with db_scope(ALL):
                campaigns = list(JourneySend.objects.values_list("campaign_id", flat=True))
            for campaign_id in campaigns:
                run_campaign(campaign_id)
        except DatabaseError:
            # A task queue runs the tick again; so does this loop (counted by the caller).
            logging.getLogger("journey_scenario").exception("pass failed")
            print("pass failed", flush=True)
            continue
        if now > END:
            with db_scope(ALL):
                pending = (
                    Recipient.objects.filter(status=Recipient.Status.PENDING).exists()
                    or Enrollment.objects.filter(status=Enrollment.Status.WAITING).exists()
                )
            if not pending:
                return
            time.sleep(0.2)


def drive(env: dict, *, per_hour: float, kills: int = 2, timeout: float = 600) -> dict:
    """Two workers on the shared clock (started at ``START`` once both are ready); at evenly
    spaced moments the oldest worker alive is SIGKILLed and started again at once. Returns
    the simulated moments of the kills, the wall time, and the passes that failed."""
    import signal
    import subprocess
    import tempfile

    script = os.path.abspath(__file__)
    root = os.path.dirname(os.path.dirname(script))
    folder = tempfile.mkdtemp(prefix="journey-scenario-")
    clock = os.path.join(folder, "clock")
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = os.path.join(folder, f"worker-{len(started) + 1}.log")
        with open(log, "w") as stderr:
            worker = subprocess.Popen(  # noqa: S603
                [sys.executable, "-u", script, "worker", clock, str(per_hour)],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        started.append(worker)
        return worker

    alive = [start(), start()]
    for worker in alive:
        assert worker.stdout.readline().strip() == "ready", _tail(folder)
    t0 = time.time()
    with open(clock + ".tmp", "w") as handle:
        handle.write(repr(t0))
    os.rename(clock + ".tmp", clock)
    span = (END - START).total_seconds() / 3600 * per_hour
    kill_at = [t0 + span * (n + 1) / (kills + 1) for n in range(kills)]
    events = []
    try:
        while any(w.poll() is None for w in alive):
            if kill_at and time.time() >= kill_at[0]:
                kill_at.pop(0)
                victim = alive.pop(0)
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                events.append(simulated(t0, per_hour))
                alive.append(start())
            for worker in alive:
                if worker.poll() not in (None, 0):
                    raise RuntimeError(_tail(folder))
            if time.time() - t0 > timeout:
                raise TimeoutError("the workers did not finish")
            time.sleep(0.05)
    finally:
        for worker in started:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
    failed = 0
    for worker in started:
        failed += worker.stdout.read().count("pass failed")
        worker.stdout.close()
    return {"kills": events, "seconds": time.time() - t0, "failed passes": failed, "logs": folder}


def _tail(folder: str) -> str:
    return "\n".join(
        open(os.path.join(folder, name)).read()[-2000:] for name in sorted(os.listdir(folder))
    )


def outcome(rows, kept_by_message_id: dict[str, int]) -> dict:
    """What the ledger and the sink say, from ``rows(sql)`` (any connection to the scratch
    database) and the sink's messages kept by Message-ID."""
    from enseigne.delivery.messages import recipient_of

    people = rows("SELECT id, birthday FROM contacts_contact WHERE birthday IS NOT NULL")
    enrolled = rows(
        "SELECT id, contact_id, entered_at, status, occurrence FROM journeys_enrollment"
    )
    ledger = rows("SELECT id, occurrence, status FROM campaigns_recipient")
    kept: dict[int, int] = {}
    for mid, count in kept_by_message_id.items():
        pk = recipient_of(mid)
        if pk is not None:
            kept[pk] = kept.get(pk, 0) + count
    birthday = {
        pk: dt.date.fromisoformat(day) if isinstance(day, str) else day for pk, day in people
    }
    by_contact: dict[int, list] = {}
    for pk, contact_id, entered_at, status, occurrence in enrolled:
        by_contact.setdefault(contact_id, []).append((pk, entered_at, status, occurrence))
    on_day = 0
    for contact_id, day in birthday.items():
        for _pk, entered_at, _status, occurrence in by_contact.get(contact_id, []):
            if isinstance(entered_at, str):  # SQLite keeps UTC without an offset
                entered_at = dt.datetime.fromisoformat(entered_at).replace(tzinfo=dt.UTC)
            local = entered_at.astimezone(PARIS)
            if (local.month, local.day) == (day.month, day.day) and occurrence == "2026":
                on_day += 1
    ledger_by_enrollment: dict[int, list] = {}
    for pk, occurrence, status in ledger:
        ledger_by_enrollment.setdefault(int(occurrence), []).append((pk, status))
    received: dict[int, int] = {}  # messages the sink kept, per birthday
    for contact_id in birthday:
        for enrollment, *_ in by_contact.get(contact_id, []):
            for pk, _status in ledger_by_enrollment.get(enrollment, []):
                received[contact_id] = received.get(contact_id, 0) + kept.get(pk, 0)
    statuses: dict[str, int] = {}
    for _pk, _occurrence, status in ledger:
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "birthdays": len(birthday),
        "enrolled": sum(len(v) for v in by_contact.values()),
        "entered on the local day": on_day,
        "ledger rows": len(ledger),
        "ledger by status": statuses,
        "messages kept by the sink": sum(kept.values()),
        "birthdays with exactly one message": sum(1 for n in received.values() if n == 1),
        "duplicates": sum(1 for n in received.values() if n > 1),
        "lost": sum(1 for c in birthday if received.get(c, 0) == 0),
    }


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(int(sys.argv[2]))
    elif sys.argv[1] == "worker":
        worker(sys.argv[2], float(sys.argv[3]))
