"""Nothing lost, nothing doubled: real worker processes, SIGKILLed, against a faulty SMTP server.

The workers run as separate processes on a scratch database of the same engine as the
test run (a temporary SQLite file, or a fresh PostgreSQL database), so they can be
killed with SIGKILL mid-send like a crashed machine.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from enseigne.delivery.messages import recipient_of
from tests.faulty_sink import FaultyHandler, FaultySink

ROOT = Path(__file__).resolve().parent.parent
CONTACTS = 20_000


class ScratchDatabase:
    """A database the worker processes can reach: a temp SQLite file or a new PostgreSQL DB."""

    def __init__(self, tmp_path: Path):
        default = settings.DATABASES["default"]
        self.postgres = default["ENGINE"].endswith("postgresql")
        if self.postgres:
            self.name = f"enseigne_faults_{uuid.uuid4().hex[:8]}"
            self.admin = f"postgres://{default['USER'] or 'postgres'}@{default['HOST'] or '127.0.0.1'}:{default['PORT'] or 5432}"
            self.url = f"{self.admin}/{self.name}"
        else:
            self.path = tmp_path / "faults.sqlite3"
            self.url = f"sqlite:///{self.path}"

    def __enter__(self):
        if self.postgres:
            self._psql(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc):
        if self.postgres:
            self._psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def _psql(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"{self.admin}/postgres", autocommit=True) as conn:
            conn.execute(sql)

    def rows(self, sql: str) -> list[tuple]:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.url) as conn:
                return list(conn.execute(sql).fetchall())
        with sqlite3.connect(self.path) as conn:
            return list(conn.execute(sql).fetchall())


def _env(database: ScratchDatabase, port: int, data_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database.url,
            "DATABASE_APP_ROLE": settings.DATABASE_APP_ROLE if database.postgres else "",
            "EMAIL_URL": f"smtp://127.0.0.1:{port}",
            "ENSEIGNE_DATA_DIR": str(data_dir),
            "ENSEIGNE_SMTP_CONCURRENCY": "2",
            "ENSEIGNE_SEND_LEASE_SECONDS": "4",
            "ENSEIGNE_SEND_RETRY_SECONDS": "0",
            "ENSEIGNE_SEND_BATCH_SIZE": "500",
            "ENSEIGNE_SEND_CHUNK_SIZE": "50",
            "ENSEIGNE_SEND_MAX_ATTEMPTS": "20",
            "ENSEIGNE_AMBIGUOUS_POLICY": "retry",
            "HUEY_URL": "immediate:",
            "LOG_LEVEL": "ERROR",
        }
    )
    return env


def _sent(database: ScratchDatabase) -> int:
    return database.rows("SELECT count(*) FROM campaigns_recipient WHERE status <> 'pending'")[0][0]


def _worker(campaign_id: str, env: dict, *, until_finished: bool = False) -> subprocess.Popen:
    args = [sys.executable, "-m", "enseigne.cli", "send_campaign", campaign_id]
    if until_finished:
        args += ["--until-finished", "--timeout", "240"]
    return subprocess.Popen(  # noqa: S603
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _kill_when(
    worker: subprocess.Popen, database: ScratchDatabase, done: int, timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while _sent(database) < done:
        assert worker.poll() is None, worker.stdout.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()


@pytest.mark.slow  # worker processes killed mid-send (minutes)
@pytest.mark.django_db(transaction=False)
def test_killed_workers_and_a_faulty_server_lose_nothing_and_double_only_logged_ambiguous(tmp_path):
    handler = FaultyHandler(seed=11, reset=0.01, r451=0.02, r454=0.01, r550=0.005, drop_after=0.005)
    with ScratchDatabase(tmp_path) as database, FaultySink(handler) as sink:
        env = _env(database, sink.port, tmp_path)
        setup = subprocess.run(  # noqa: S603
            [sys.executable, "tests/send_scenario.py", str(CONTACTS)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert setup.returncode == 0, setup.stderr[-3000:]
        campaign_id = setup.stdout.strip().splitlines()[-1]

        first = _worker(campaign_id, env)
        _kill_when(first, database, CONTACTS // 4)
        second, third = _worker(campaign_id, env), _worker(campaign_id, env, until_finished=True)
        _kill_when(second, database, CONTACTS // 2)
        output, _ = third.communicate(timeout=300)
        assert third.returncode == 0, output.decode()[-3000:]

        rows = database.rows("SELECT id, status, reason, ambiguous_count FROM campaigns_recipient")
        status = database.rows(
            f"SELECT status FROM campaigns_campaign WHERE id = {int(campaign_id)}"  # noqa: S608
        )[0][0]

    assert len(rows) == CONTACTS
    by_status = {}
    for _pk, state, _reason, _ambiguous in rows:
        by_status[state] = by_status.get(state, 0) + 1
    assert by_status.get("pending", 0) == 0, by_status
    assert status == "finished"
    kept = {recipient_of(mid): n for mid, n in handler.kept.items()}
    refused = {recipient_of(mid) for mid in handler.refused}
    ambiguous = {pk for pk, _s, _r, count in rows if count}
    sent = {pk for pk, state, _r, _a in rows if state == "sent"}
    # Refused for good: failed on a 550, or — when a worker that got the 550 had already lost
    # its lease — skipped by the next worker because the address is now suppressed.
    failed = {
        pk
        for pk, state, reason, _a in rows
        if state == "failed" or (state, reason) == ("skipped", "suppressed")
    }
    duplicates = {pk for pk, n in kept.items() if n > 1}
    # Every recipient ended sent or refused for good (550): nothing lost.
    assert sent | failed == {pk for pk, *_ in rows}, [r for r in rows if r[0] not in sent | failed][
        :10
    ]
    assert sent <= set(kept), "a row marked sent never reached the server"
    assert failed <= refused, "a row marked failed was never refused"
    # A message kept twice is always one the pipeline logged as ambiguous.
    assert duplicates <= ambiguous, sorted(duplicates - ambiguous)[:10]
    # The faults really happened.
    assert ambiguous and failed


@pytest.mark.slow  # real worker processes
@pytest.mark.django_db(transaction=False)
def test_no_message_reaches_a_contact_after_their_unsubscribe_is_committed(tmp_path):
    handler = FaultyHandler()
    with ScratchDatabase(tmp_path) as database, FaultySink(handler) as sink:
        env = _env(database, sink.port, tmp_path)
        env["ENSEIGNE_EMAIL_RATE"] = (
            "700"  # long enough a campaign for the unsubscribes to land mid-send
        )
        setup = subprocess.run(  # noqa: S603
            [sys.executable, "tests/send_scenario.py", "5000"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert setup.returncode == 0, setup.stderr[-3000:]
        campaign_id = setup.stdout.strip().splitlines()[-1]
        worker = _worker(campaign_id, env, until_finished=True)
        while _sent(database) < 300:
            assert worker.poll() is None
            time.sleep(0.02)
        unsubscribing = subprocess.run(  # noqa: S603
            [sys.executable, "tests/send_scenario.py", "unsubscribe", campaign_id, "500"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert unsubscribing.returncode == 0, unsubscribing.stderr[-3000:]
        output, _ = worker.communicate(timeout=300)
        assert worker.returncode == 0, output.decode()[-3000:]
        skipped = {
            pk
            for (pk,) in database.rows(
                "SELECT id FROM campaigns_recipient WHERE status = 'skipped' AND reason = 'no_consent'"
            )
        }

    committed = {}
    for line in unsubscribing.stdout.split("\n"):
        if line.strip():
            pk, at = line.split()
            committed[int(pk)] = float(at)
    assert len(committed) == 500
    received = {recipient_of(mid): at for mid, at in handler.kept_at.items()}
    late = [pk for pk, at in committed.items() if pk in received and received[pk] > at]
    assert late == []
    # The race was real: some of the 500 had already received it, the rest were stopped.
    assert skipped and skipped <= set(committed)
    assert len(skipped) + sum(1 for pk in committed if pk in received) == 500


# -- the queue's workers: kills, take-over, sharing (issue 17, items 3–5) ----------------------


def _scenario(env: dict, contacts: int) -> str:
    setup = subprocess.run(  # noqa: S603
        [sys.executable, "tests/send_scenario.py", str(contacts)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    return setup.stdout.strip().splitlines()[-1]


def _consumer(env: dict) -> subprocess.Popen:
    """``enseigne worker``: a Huey consumer, as an operator starts one per host."""
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "enseigne.cli", "worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(condition, timeout: float, what: str, processes=()) -> float:
    started = time.monotonic()
    while not condition():
        for process in processes:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def _status(database: ScratchDatabase, campaign_id: str) -> str:
    return database.rows(
        f"SELECT status FROM campaigns_campaign WHERE id = {int(campaign_id)}"  # noqa: S608
    )[0][0]


def _queue_env(database, port, tmp_path, **extra) -> dict:
    env = _env(database, port, tmp_path)
    env.update(
        {
            "HUEY_URL": f"sqlite:///{tmp_path / 'huey.sqlite3'}",
            "ENSEIGNE_AMBIGUOUS_POLICY": "at_most_once",
            "ENSEIGNE_SEND_LEASE_SECONDS": "6",
            **extra,
        }
    )
    return env


@pytest.mark.slow  # worker processes killed mid-send (minutes)
@pytest.mark.django_db(transaction=False)
def test_a_kill_leaves_in_doubt_only_what_was_in_flight_and_sends_the_rest(tmp_path):
    """At most once: two kills mid-send leave at most the in-flight window unknown each (SMTP
    connections x depth), never a chunk; rows never handed over are sent by the next worker."""
    handler = FaultyHandler(seed=5, reset=0.05, r451=0.02, r454=0.01, r550=0.005)
    total = 4000
    with ScratchDatabase(tmp_path) as database, FaultySink(handler) as sink:
        env = _env(database, sink.port, tmp_path)
        env.update(
            {
                "ENSEIGNE_AMBIGUOUS_POLICY": "at_most_once",
                "ENSEIGNE_SEND_CHUNK_SIZE": "250",
                "ENSEIGNE_SEND_INFLIGHT_DEPTH": "2",
            }
        )
        campaign_id = _scenario(env, total)
        first = _worker(campaign_id, env)
        _kill_when(first, database, total // 4)
        second = _worker(campaign_id, env)
        _kill_when(second, database, total // 2)
        third = _worker(campaign_id, env, until_finished=True)
        output, _ = third.communicate(timeout=400)
        assert third.returncode == 0, output.decode()[-3000:]
        rows = database.rows("SELECT id, status, detail FROM campaigns_recipient")
        status = _status(database, campaign_id)

    # ENSEIGNE_SMTP_CONCURRENCY x ENSEIGNE_SEND_INFLIGHT_DEPTH; SQLite: ENSEIGNE_SEND_SQLITE_INFLIGHT.
    window = 2 * 2 if database.postgres else 32
    by_kill = [
        pk for pk, state, detail in rows if detail == "the worker stopped while handing it off"
    ]
    assert len(by_kill) <= 2 * window, len(by_kill)
    assert {state for _pk, state, _d in rows} <= {"sent", "failed", "skipped", "ambiguous"}
    assert status == "finished"
    kept = {recipient_of(mid): n for mid, n in handler.kept.items()}
    # At most once: nothing doubled; every row the server kept is one the ledger says left or
    # left in doubt; every row marked sent reached the server.
    assert max(kept.values()) == 1
    sent = {pk for pk, state, _d in rows if state == "sent"}
    unknown = {pk for pk, state, _d in rows if state == "ambiguous"}
    assert sent <= set(kept)
    assert set(kept) <= sent | unknown
    # Faults were retried rather than lost: every row is sent, refused for good, or in doubt
    # because a kill caught it in flight (resets before the end of data are sent later).
    failed = {pk for pk, state, _d in rows if state == "failed"}
    assert len(sent) + len(failed) + len(by_kill) == total
    assert len(failed) <= len(handler.refused)


@pytest.mark.slow  # queue workers, one killed (minutes)
@pytest.mark.django_db(transaction=False)
def test_two_workers_share_a_campaign_and_a_killed_one_is_taken_over_in_seconds(tmp_path):
    total = 6000
    with ScratchDatabase(tmp_path) as database, FaultySink(FaultyHandler()) as sink:
        env = _queue_env(database, sink.port, tmp_path, ENSEIGNE_EMAIL_RATE="600")
        campaign_id = _scenario(env, total)
        workers = [_consumer(env), _consumer(env)]
        try:
            before = _wait(lambda: _sent(database) >= total // 4, 180, "the first quarter", workers)
            # Both workers run the campaign (each holds runners), so both burn CPU on it.
            cpu = [_cpu_seconds(w.pid) for w in workers]
            killed = workers.pop(0)
            killed.send_signal(signal.SIGKILL)
            killed.wait()
            at_kill = _sent(database)
            resumed = _wait(
                lambda: _sent(database) > at_kill + 50, 30, "sending to resume", workers
            )
            remaining = _wait(
                lambda: _status(database, campaign_id) == "finished", 240, "the end", workers
            )
            leases = int(env["ENSEIGNE_SEND_LEASE_SECONDS"])
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
        rows = database.rows("SELECT status, count(*) FROM campaigns_recipient GROUP BY status")

    assert min(cpu) >= 0.25 * sum(cpu), cpu
    assert resumed < 5, resumed
    # The dead worker's claimed rows came back after their lease, not after minutes: the rest
    # took about what it takes at the pace seen before the kill, plus one lease.
    pace = (total // 4) / before
    assert remaining < 2 * (total - at_kill) / pace + leases + 10, (remaining, pace)
    assert dict(rows).get("pending", 0) == 0


@pytest.mark.slow  # a queue worker killed and restarted
@pytest.mark.django_db(transaction=False)
def test_a_worker_restarted_after_a_kill_resumes_at_once(tmp_path):
    total = 3000
    with ScratchDatabase(tmp_path) as database, FaultySink(FaultyHandler()) as sink:
        env = _queue_env(database, sink.port, tmp_path, ENSEIGNE_EMAIL_RATE="400")
        campaign_id = _scenario(env, total)
        worker = _consumer(env)
        try:
            _wait(lambda: _sent(database) >= total // 3, 180, "a third", [worker])
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            at_kill = _sent(database)
            worker = _consumer(env)
            resumed = _wait(
                lambda: _sent(database) > at_kill + 50, 60, "sending to resume", [worker]
            )
            _wait(lambda: _status(database, campaign_id) == "finished", 240, "the end", [worker])
        finally:
            worker.kill()
            worker.wait()
    # The new worker looks for work as it starts, not at the next minute's tick: within the
    # issue's 30 s of the kill. Most of it is the new process starting Django (about 2 s on
    # an idle machine, 16 s once with CI's other half, benches and builds on the same cores).
    assert resumed < 30, resumed


@pytest.mark.slow  # a worker killed mid-freeze, then a queue worker started
@pytest.mark.django_db(transaction=False)
def test_a_worker_killed_while_preparing_leaves_it_preparing_and_the_next_one_sends_it(tmp_path):
    """Launched as a page launches (the worker freezes the audience), the worker dies with the
    ledger written but not committed: the campaign is still preparing with no row, nobody holds
    its slot, and the next worker to start prepares it and sends everything, once."""
    total = 2000
    handler = FaultyHandler()
    with ScratchDatabase(tmp_path) as database, FaultySink(handler) as sink:
        env = _queue_env(database, sink.port, tmp_path, SCENARIO_LAUNCH="start")
        campaign_id = _scenario(env, total)
        assert _status(database, campaign_id) == "preparing"
        dying = subprocess.run(  # noqa: S603
            [sys.executable, "tests/send_scenario.py", "prepare-and-die", campaign_id],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert dying.returncode == -signal.SIGKILL, dying.stderr[-3000:]
        assert "frozen, not committed" in dying.stdout
        assert _status(database, campaign_id) == "preparing"
        assert database.rows("SELECT count(*) FROM campaigns_recipient")[0][0] == 0
        worker = _consumer(env)
        try:
            _wait(lambda: _status(database, campaign_id) == "finished", 240, "the end", [worker])
        finally:
            worker.kill()
            worker.wait()
        rows = dict(database.rows("SELECT status, count(*) FROM campaigns_recipient GROUP BY 1"))
        frozen = database.rows(
            f"SELECT recipient_total, frozen_at IS NOT NULL FROM campaigns_campaign "  # noqa: S608
            f"WHERE id = {int(campaign_id)}"
        )[0]
    assert rows == {"sent": total}
    assert tuple(frozen) in ((total, True), (total, 1))
    # Each message arrived once (the kill left nothing behind to send twice).
    assert len(handler.kept) == total and set(handler.kept.values()) == {1}
