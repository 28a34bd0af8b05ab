"""Sending through faults and kills: nothing lost, nothing doubled, doubt bounded, take-over fast.

    .venv/bin/python bench/send_faults.py --recipients 100000 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_faults

Builds a scratch database (dropped and re-created), a network and N consenting contacts,
launches a personalised local e-mail campaign, and sends it with ``enseigne worker``
processes (Huey consumers on ``--huey``, a Redis db flushed first) into an SMTP sink that
misbehaves at set rates (``tests/faulty_sink.py``, aiosmtpd in a thread of this process):
connection resets before the end of the message, 451, 454 and 550 replies, and, with
``--drop-after``, connections dropped after the end of the message (kept, no reply).

The run, with the product's defaults (lease 30 s, retries 60 s doubled, policy
``at_most_once``, 4 SMTP connections x depth 8, one runner per worker):

- one worker starts and finds the campaign by itself;
- at ``--kill-at`` fractions of the recipients kept by the sink, the oldest worker still
  alive is SIGKILLed and a new one started at once;
- at ``--second-at`` a second worker is started beside it;
- the bench waits until the campaign is finished (the retries' back-off included).

It prints the ledger's outcome against what the sink kept (Message-ID → ledger row):
duplicates (kept twice), lost (a row that ended other than sent, refused with 550, or
ambiguous; or marked sent and never kept), rows in doubt split by cause, and for each
kill the rows the dead worker held, how many it left in doubt, and how long until the
sink's count grew again and until the dead worker's rows were all taken over and ended.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _setup import recreate_database, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faulty_sink import FaultyHandler, FaultySink  # noqa: E402

BY_KILL = "the worker stopped while handing it off"
AFTER_DATA = "connection lost after the end of the message"


def _env(database: str, port: int, data_dir: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        # The product's defaults, whatever the caller's shell says.
        if not k.startswith(
            ("ENSEIGNE_SEND_", "ENSEIGNE_AMBIGUOUS", "ENSEIGNE_SMTP", "ENSEIGNE_EMAIL_RATE")
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database,
            "DATABASE_APP_ROLE": "enseigne_app" if database.startswith("postgres") else "",
            "EMAIL_URL": f"smtp://127.0.0.1:{port}",
            "ENSEIGNE_DATA_DIR": data_dir,
            "HUEY_URL": "immediate:",
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


class Database:
    def __init__(self, url: str):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def rows(self, sql: str, params=None) -> list[tuple]:
        return list(self.conn.execute(sql, params).fetchall())

    def one(self, sql: str, params=None):
        return self.conn.execute(sql, params).fetchone()


class Kill:
    def __init__(self, number: int, pid: int, at: float, kept: int, held: set, flying: set):
        self.number, self.pid, self.at, self.kept = number, pid, at, kept
        self.held, self.flying = held, flying
        self.resumed: float | None = None
        self.taken_over: float | None = None
        self.ended: float | None = None


def _kept(handler: FaultyHandler) -> int:
    with handler.lock:
        return sum(handler.kept.values())


def main() -> None:  # noqa: C901, PLR0912, PLR0915 - one scenario, told in order
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--database", default="postgres://postgres@127.0.0.1:5432/enseigne_bench_faults"
    )
    parser.add_argument("--huey", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--data-dir", default="/tmp/enseigne-bench-faults")
    parser.add_argument("--reset", type=float, default=0.05)
    parser.add_argument("--r451", type=float, default=0.02)
    parser.add_argument("--r454", type=float, default=0.01)
    parser.add_argument("--r550", type=float, default=0.005)
    parser.add_argument("--drop-after", type=float, default=0.0)
    parser.add_argument("--kill-at", type=float, nargs="*", default=[0.2, 0.5])
    parser.add_argument("--second-at", type=float, default=0.35)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--env",
        nargs="*",
        default=[],
        help="KEY=VALUE settings for a quick check (e.g. ENSEIGNE_SEND_RETRY_SECONDS=1); "
        "the figures are taken with the defaults",
    )
    args = parser.parse_args()
    if not args.database.startswith("postgres"):
        raise SystemExit("the fault bench runs on PostgreSQL")

    os.makedirs(args.data_dir, exist_ok=True)
    handler = FaultyHandler(
        seed=args.seed,
        reset=args.reset,
        r451=args.r451,
        r454=args.r454,
        r550=args.r550,
        drop_after=args.drop_after,
    )
    workers: list[subprocess.Popen] = []
    logs = []
    kills: list[Kill] = []
    with FaultySink(handler) as sink:
        recreate_database(args.database)
        env = _env(args.database, sink.port, args.data_dir)
        env.update(dict(item.split("=", 1) for item in args.env))
        setup_started = time.perf_counter()
        setup = subprocess.run(  # noqa: S603
            [sys.executable, "tests/send_scenario.py", str(args.recipients)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        campaign_id = int(setup.stdout.strip().splitlines()[-1])
        setup_seconds = time.perf_counter() - setup_started
        import redis

        redis.Redis.from_url(args.huey).flushdb()
        env["HUEY_URL"] = args.huey
        db = Database(args.database)

        def start() -> subprocess.Popen:
            log = open(Path(args.data_dir) / f"worker-{len(workers) + 1}.log", "w")  # noqa: SIM115
            logs.append(log)
            worker = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "enseigne.cli", "worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            workers.append(worker)
            return worker

        kill_at = sorted(args.kill_at)
        second_started = False
        alive = [start()]
        started = time.monotonic()
        events = [("worker 1 started", 0.0)]
        try:
            while True:
                now = time.monotonic() - started
                kept = _kept(handler)
                if kill_at and kept >= kill_at[0] * args.recipients:
                    kill_at.pop(0)
                    victim = alive.pop(0)
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    at = time.monotonic() - started
                    kept_then = _kept(handler)
                    alive.append(start())
                    # What the dead worker held: its leases, and of those the rows marked in
                    # flight (attempted_at). Worker names are host:pid:random.
                    held = db.rows(
                        "SELECT id, attempted_at IS NOT NULL FROM campaigns_recipient "
                        "WHERE campaign_id = %s AND status = 'pending' AND lease_owner LIKE %s",
                        (campaign_id, f"%:{victim.pid}:%"),
                    )
                    kills.append(
                        Kill(
                            len(kills) + 1,
                            victim.pid,
                            at,
                            kept_then,
                            {pk for pk, _ in held},
                            {pk for pk, flying in held if flying},
                        )
                    )
                    events.append(
                        (f"kill {len(kills)} (pid {victim.pid}), worker {len(workers)} started", at)
                    )
                if not second_started and kept >= args.second_at * args.recipients:
                    alive.append(start())
                    second_started = True
                    events.append((f"worker {len(workers)} started beside", now))
                for kill in kills:
                    if kill.resumed is None and _kept(handler) > kill.kept:
                        kill.resumed = max(0.0, time.monotonic() - started - kill.at)
                    if kill.ended is None and kill.held:
                        rows = db.rows(
                            "SELECT status, lease_owner FROM campaigns_recipient WHERE id = ANY(%s)",
                            (list(kill.held),),
                        )
                        if kill.taken_over is None and not any(
                            status == "pending" and f":{kill.pid}:" in owner
                            for status, owner in rows
                        ):
                            kill.taken_over = now - kill.at
                        if all(status != "pending" for status, _ in rows):
                            kill.ended = now - kill.at
                    elif not kill.held:
                        kill.taken_over = kill.ended = 0.0
                status = db.one(
                    "SELECT status FROM campaigns_campaign WHERE id = %s", (campaign_id,)
                )[0]
                if status == "finished":
                    break
                for worker in alive:
                    if worker.poll() is not None:
                        raise SystemExit(f"worker pid {worker.pid} died by itself")
                if now > args.timeout:
                    raise SystemExit("timed out")
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            events.append(("campaign finished", elapsed))
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
            for worker in workers:
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
            for log in logs:
                log.close()
        rows = db.rows(
            "SELECT id, status, reason, detail, ambiguous_count FROM campaigns_recipient "
            "WHERE campaign_id = %s",
            (campaign_id,),
        )

    from enseigne.delivery.messages import recipient_of

    kept = {}
    for mid, n in handler.kept.items():
        pk = recipient_of(mid)
        kept[pk] = kept.get(pk, 0) + n
    refused = {recipient_of(mid) for mid in handler.refused}
    by_status: dict[str, int] = {}
    for _pk, state, *_ in rows:
        by_status[state] = by_status.get(state, 0) + 1
    sent = {pk for pk, state, *_ in rows if state == "sent"}
    failed_550 = {
        pk
        for pk, state, reason, _d, _a in rows
        if pk in refused and (state == "failed" or (state, reason) == ("skipped", "suppressed"))
    }
    in_doubt = {pk for pk, state, *_ in rows if state == "ambiguous"}
    doubt_by_kill = {
        pk for pk, state, _r, detail, _a in rows if state == "ambiguous" and detail == BY_KILL
    }
    doubt_after_data = {
        pk for pk, state, _r, detail, _a in rows if state == "ambiguous" and detail == AFTER_DATA
    }
    duplicates = {pk for pk, n in kept.items() if n > 1}
    lost_rows = {pk for pk, *_ in rows} - sent - failed_550 - in_doubt
    never_got = sent - set(kept)
    lost = lost_rows | never_got
    delivered_in_doubt = in_doubt & set(kept)
    failed_other = {pk for pk, state, *_ in rows if state == "failed" and pk not in failed_550}

    # A killed worker's doubt: one runner's SMTP connections x the in-flight depth (defaults).
    window = 4 * int(os.environ.get("ENSEIGNE_SEND_INFLIGHT_DEPTH", "8"))
    print(
        f"\n{args.recipients:,} recipients on PostgreSQL; sink faults: resets {args.reset:.1%}, "
        f"451 {args.r451:.1%}, 454 {args.r454:.1%}, 550 {args.r550:.1%}, "
        f"dropped after data {args.drop_after:.1%}; setup {setup_seconds:.0f} s"
    )
    table(
        "Timeline (seconds from the first worker's start)",
        [("event", "at"), *[(e, f"{t:.1f}") for e, t in events]],
    )
    table(
        "Outcome",
        [
            ("measure", "value", "goal"),
            ["total rows", f"{len(rows):,}", ""],
            ["ledger by status", ", ".join(f"{k} {v:,}" for k, v in sorted(by_status.items())), ""],
            ["sent", f"{len(sent):,}", ""],
            ["failed: refused (550)", f"{len(failed_550):,}", ""],
            ["failed: other (gave up after retries)", f"{len(failed_other):,}", ""],
            ["skipped", f"{by_status.get('skipped', 0):,}", ""],
            ["ambiguous", f"{len(in_doubt):,}", ""],
            [
                "  by kill (stopped while handing it off)",
                f"{len(doubt_by_kill):,}",
                f"≤ {window} per kill",
            ],
            ["  connection lost after end of data", f"{len(doubt_after_data):,}", ""],
            ["  of the ambiguous, kept by the sink", f"{len(delivered_in_doubt):,}", ""],
            ["duplicates (kept twice)", f"{len(duplicates):,}", "0"],
            [
                "lost",
                f"{len(lost):,} ({len(lost_rows):,} rows, {len(never_got):,} sent never kept)",
                "0",
            ],
            ["messages kept by the sink", f"{sum(kept.values()):,}", ""],
            ["time to finished", f"{elapsed:.0f} s", ""],
        ],
    )
    table(
        "Kills",
        [
            (
                "kill",
                "at (s)",
                "rows held (in flight)",
                "left in doubt",
                "resumed after",
                "taken over after",
                "all ended after",
            ),
            *[
                [
                    str(k.number),
                    f"{k.at:.1f}",
                    f"{len(k.held)} ({len(k.flying)})",
                    str(len(k.flying & doubt_by_kill)),
                    f"{k.resumed:.1f} s" if k.resumed is not None else "never",
                    f"{k.taken_over:.1f} s" if k.taken_over is not None else "never",
                    f"{k.ended:.1f} s" if k.ended is not None else "never",
                ]
                for k in kills
            ],
        ],
    )
    if lost:
        print("lost rows (first 10):", sorted(lost)[:10])
    if duplicates:
        print("duplicates (first 10):", sorted(duplicates)[:10])


if __name__ == "__main__":
    main()
