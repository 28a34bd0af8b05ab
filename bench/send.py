"""End-to-end campaign sending (claim → gates → compose → SMTP → mark) against a raw smtplib loop.

    .venv/bin/python bench/send.py --recipients 100000 --workers 1 2 --sink c \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_send
    .venv/bin/python bench/send.py --mode send_campaign --recipients 20000 --workers 1 \
        --database sqlite:////tmp/bench_send.sqlite3

For each worker count in ``--workers`` (one after the other, each on a fresh database):
builds a scratch database (dropped and re-created), a network and N consenting contacts,
launches a personalised local e-mail campaign, then sends it the way a user does:

- ``--mode worker`` (the default): N ``enseigne worker`` processes (Huey consumers on
  ``--huey``, a Redis db flushed first, or ``sqlite`` for a huey file in the data dir). The
  campaign is already *sending*; each worker finds it as it starts (its start-up hook) and
  its runners fan out over the consumers. The send is over when the campaign is finished;
  each worker's CPU (its process tree, from /proc) and peak RSS are read before it is
  stopped.
- ``--mode send_campaign``: N ``enseigne send_campaign <id> --until-finished`` processes.

Into a minimal sink in its own process (PIPELINING, answers 250 and counts, keeps nothing):
``bench/sink.c``, compiled here with gcc, or ``--sink python`` for ``bench/_sink.py`` (one
asyncio loop, which tops out near 2,000 msg/s and then is the bottleneck). The baseline,
same run, same sink: as many processes as workers sending the same number of pre-built
messages (the bytes Enseigne produced for the first recipients) with
``smtplib.SMTP.sendmail`` over one connection each.

Prints the rates (from the workers' start, and from the first message), the ratio to the
raw loop, the per-message CPU of both, each worker's CPU share and peak RSS. With
``BENCH_PROFILE=<dir>``, each worker's runner and journal threads are profiled with
cProfile on the thread's CPU clock (one ``.prof`` file per thread in that dir); with ``BENCH_SAMPLE=<dir>``, every thread of each
worker is sampled every 5 ms (counts of the innermost Python function and the innermost
``enseigne`` one, as JSON in that dir). Both are slower: for finding where the time goes.
"""

from __future__ import annotations

import argparse
import os
import resource
import smtplib
import subprocess
import sys
import time
from multiprocessing import Process, Queue
from pathlib import Path

from _setup import recreate_database, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TICK = os.sysconf("SC_CLK_TCK")

# `enseigne worker`, with the runner threads optionally under cProfile (BENCH_PROFILE=dir).
WORKER = """
import os, sys
profile_dir = os.environ.get("BENCH_PROFILE")
if profile_dir:
    import cProfile, functools, threading, uuid
    import django
    django.setup()
    import time as _time
    from enseigne.delivery import journal, tasks

    def profiled(inner, kind):
        # Timed by the thread's own CPU clock: the shares are CPU, not waits.
        @functools.wraps(inner)
        def wrapper(*args, **kwargs):
            profile = cProfile.Profile(_time.thread_time)
            profile.enable()
            try:
                return inner(*args, **kwargs)
            finally:
                profile.disable()
                name = f"{kind}-{os.getpid()}-{uuid.uuid4().hex[:6]}.prof"
                profile.dump_stats(os.path.join(profile_dir, name))

        return wrapper

    tasks.run_campaign = profiled(tasks.run_campaign, "runner")
    journal.ThreadJournal._run = profiled(journal.ThreadJournal._run, "journal")
sample_dir = os.environ.get("BENCH_SAMPLE")
if sample_dir:
    import collections, json, sys as _sys, threading, time as _time

    def sampler():
        me = threading.get_ident()
        leaf, ours, both = collections.Counter(), collections.Counter(), collections.Counter()
        cpu = {}
        path = os.path.join(sample_dir, f"{os.getpid()}.json")
        last = _time.monotonic()
        while True:
            _time.sleep(0.005)
            for ident, frame in _sys._current_frames().items():
                if ident == me:
                    continue
                top = f"{frame.f_code.co_filename.rsplit('/', 2)[-2:]}:{frame.f_code.co_name}"
                mine, f = "-", frame
                while f is not None:
                    if "/enseigne/" in f.f_code.co_filename:
                        mine = f"{f.f_code.co_filename.split('/enseigne/', 1)[1]}:{f.f_code.co_name}"
                        break
                    f = f.f_back
                leaf[top] += 1
                ours[mine] += 1
                both[f"{mine} > {top}"] += 1
            if _time.monotonic() - last > 2:
                last = _time.monotonic()
                for thread in threading.enumerate():
                    try:
                        with open(f"/proc/self/task/{thread.native_id}/stat") as stat:
                            fields = stat.read().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    cpu[(thread.native_id, thread.name)] = int(fields[11]) + int(fields[12])
                by_name = collections.Counter()
                for (_tid, name), ticks in cpu.items():
                    by_name[name.rstrip("0123456789_").rstrip("-")] += ticks
                with open(path, "w") as out:
                    json.dump({"leaf": leaf, "ours": ours, "both": both, "cpu": by_name}, out)

    threading.Thread(target=sampler, daemon=True).start()
from enseigne.cli import main
main(["enseigne", "worker"])
"""


def _env(database: str, port: int, data_dir: str, huey: str) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database,
            "DATABASE_APP_ROLE": "enseigne_app" if database.startswith("postgres") else "",
            "EMAIL_URL": f"smtp://127.0.0.1:{port}",
            "ENSEIGNE_DATA_DIR": data_dir,
            "HUEY_URL": huey,
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def _start_sink(kind: str, port: int, sample_file: Path, data_dir: str) -> subprocess.Popen:
    if kind == "c":
        binary = Path(data_dir) / "sink"
        subprocess.run(  # noqa: S603
            ["gcc", "-O2", "-o", str(binary), str(ROOT / "bench" / "sink.c")],  # noqa: S607
            check=True,
        )
        command = [str(binary), str(port), str(sample_file), "5000"]
    else:
        command = [
            sys.executable,
            str(ROOT / "bench" / "_sink.py"),
            str(port),
            str(sample_file),
            "5000",
        ]
    sink = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603
    time.sleep(0.5)
    if sink.poll() is not None:
        raise SystemExit(f"the sink did not start on port {port}")
    return sink


def _samples(kind: str, sample_file: Path) -> list[bytes]:
    """The messages the sink kept, as the client meant them (the C sink keeps them as sent)."""
    parts = sample_file.read_bytes().split(b"\x00\x00MSG\x00\x00")[:-1]
    if kind == "c":
        parts = [p[:-3].replace(b"\r\n..", b"\r\n.") for p in parts]
    return parts


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (not idle or waiting on I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _cpu_and_rss(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system, all threads, reaped children too) and peak RSS (MB) of a
    process tree, read while it lives."""
    cpu, rss = 0.0, 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        cpu += sum(int(v) for v in fields[11:15]) / TICK
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                rss += int(line.split()[1]) // 1024
    return cpu, rss


class Database:
    """Read-only looks at the scratch database while the workers send."""

    def __init__(self, url: str):
        self.url = url
        if url.startswith("postgres"):
            import psycopg

            self.conn = psycopg.connect(url, autocommit=True)
        else:
            import sqlite3

            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)

    def one(self, sql: str):
        return self.conn.execute(sql).fetchone()

    def close(self) -> None:
        self.conn.close()


def _commits(db: Database) -> int:
    """Transactions committed in the scratch database so far (PostgreSQL; 0 on SQLite)."""
    if not db.url.startswith("postgres"):
        return 0
    return db.one("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")[0]


def _baseline(port: int, messages: list[bytes], lanes: int) -> tuple[float, float]:
    """The raw loop: msg/s and CPU seconds of its processes."""

    def lane(chunk: list[bytes], out: Queue) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        for data in chunk:
            smtp.sendmail("bounces@news.example.com", ["someone@example.com"], data)
        smtp.quit()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out.put(usage.ru_utime + usage.ru_stime)

    out: Queue = Queue()
    procs = [Process(target=lane, args=(messages[i::lanes], out)) for i in range(lanes)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    cpu = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return len(messages) / (time.perf_counter() - started), cpu


def _flush_huey(huey: str) -> None:
    if huey.startswith("redis"):
        import redis

        redis.Redis.from_url(huey).flushdb()
    elif huey.startswith("sqlite"):
        Path(huey.removeprefix("sqlite:///")).unlink(missing_ok=True)


def _send_with_workers(args, env: dict, campaign_id: str, count: int, db: Database) -> dict:
    command = [sys.executable, "-c", WORKER]
    started = time.perf_counter()
    workers = [
        subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)  # noqa: S603
        for _ in range(count)
    ]
    first = None
    try:
        while True:
            for worker in workers:
                if worker.poll() is not None:
                    raise SystemExit(f"a worker died: {worker.stderr.read()[-3000:]}")
            status = db.one(f"SELECT status FROM campaigns_campaign WHERE id = {int(campaign_id)}")[
                0
            ]  # noqa: S608
            if status == "finished":
                break
            if first is None and db.one(
                "SELECT 1 FROM campaigns_recipient WHERE status <> 'pending' LIMIT 1"
            ):
                first = time.perf_counter()
            if time.perf_counter() - started > args.timeout:
                raise SystemExit("timed out")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        usage = [_cpu_and_rss(w.pid) for w in workers]
        if os.environ.get("BENCH_PROFILE") or os.environ.get("BENCH_SAMPLE"):
            time.sleep(5)  # the runners see the campaign finished and write their profiles
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    return {
        "elapsed": elapsed,
        "from_first": elapsed - ((first or started) - started),
        "cpu": [u[0] for u in usage],
        "rss": [u[1] for u in usage],
    }


def _send_with_commands(args, env: dict, campaign_id: str, count: int, db: Database) -> dict:
    command = [
        sys.executable,
        "-c",
        (
            "import resource, sys; from enseigne.cli import main; "
            "main(['enseigne', 'send_campaign', sys.argv[1], '--until-finished']); "
            "usage = resource.getrusage(resource.RUSAGE_SELF); "
            "print('maxrss', usage.ru_maxrss, usage.ru_utime + usage.ru_stime)"
        ),
        campaign_id,
    ]
    started = time.perf_counter()
    workers = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)  # noqa: S603
        for _ in range(count)
    ]
    outputs = [w.communicate()[0] for w in workers]
    elapsed = time.perf_counter() - started
    usage = [
        line.split() for out in outputs for line in out.splitlines() if line.startswith("maxrss")
    ]
    return {
        "elapsed": elapsed,
        "from_first": elapsed,
        "cpu": [float(u[2]) for u in usage],
        "rss": [int(u[1]) // 1024 for u in usage],
    }


def run(args, count: int, data_dir: str) -> dict:
    sample_file = Path(data_dir) / "sample.bin"
    sample_file.unlink(missing_ok=True)
    sink = _start_sink(args.sink, args.port, sample_file, data_dir)
    try:
        recreate_database(args.database)
        env = _env(args.database, args.port, data_dir, "immediate:")
        env["ENSEIGNE_SMTP_CONCURRENCY"] = str(args.concurrency)
        setup_started = time.perf_counter()
        setup = subprocess.run(  # noqa: S603
            [sys.executable, "tests/send_scenario.py", str(args.recipients), str(args.links)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        campaign_id = setup.stdout.strip().splitlines()[-1]
        setup_seconds = time.perf_counter() - setup_started
        db = Database(args.database)
        busy_before = _cpu_busy()
        commits_before = _commits(db)
        if args.mode == "worker":
            _flush_huey(args.huey)
            env["HUEY_URL"] = args.huey
            result = _send_with_workers(args, env, campaign_id, count, db)
        else:
            result = _send_with_commands(args, env, campaign_id, count, db)
        result["busy"] = (_cpu_busy() - busy_before) / result["elapsed"] / (os.cpu_count() or 1)
        time.sleep(1)  # the server publishes its counters within a second
        result["commits"] = _commits(db) - commits_before
        result["statuses"] = dict(
            db.conn.execute(
                "SELECT status, count(*) FROM campaigns_recipient GROUP BY status"
            ).fetchall()
        )
        db.close()
        samples = _samples(args.sink, sample_file)
        baseline_messages = (samples * (args.recipients // max(1, len(samples)) + 1))[
            : min(args.recipients, 50_000)
        ]
        result["raw"], raw_cpu = _baseline(args.port, baseline_messages, count)
        result["raw_cpu_us"] = raw_cpu / len(baseline_messages) * 1e6
    finally:
        sink.terminate()
        received = sink.communicate()[0].split()
    expected = args.recipients + len(baseline_messages)
    result["at_sink"] = (
        f"{int(received[-1]):,} (expected {expected:,})" if args.sink == "c" else "not counted"
    )
    result["setup"] = setup_seconds
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--mode", choices=["worker", "send_campaign"], default="worker")
    parser.add_argument(
        "--huey",
        default="redis://127.0.0.1:6379/11",
        help="the workers' queue: a Redis db (flushed first) or sqlite:///file (deleted first)",
    )
    parser.add_argument(
        "--database", default="postgres://postgres@127.0.0.1:5432/enseigne_bench_send"
    )
    parser.add_argument("--port", type=int, default=0, help="the sink's port (0: a free one)")
    parser.add_argument("--data-dir", default="/tmp/enseigne-bench-send")
    parser.add_argument("--concurrency", type=int, default=4)  # ENSEIGNE_SMTP_CONCURRENCY default
    parser.add_argument("--sink", choices=["c", "python"], default="c")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--links", type=int, default=3, help="web links per message (click-tracked)"
    )
    args = parser.parse_args()

    data_dir = args.data_dir
    os.makedirs(data_dir, exist_ok=True)
    if not args.port:
        args.port = _free_port()
    engine = "PostgreSQL" if args.database.startswith("postgres") else "SQLite"
    results = {}
    for count in args.workers:
        r = results[count] = run(args, count, data_dir)
        ours = args.recipients / r["elapsed"]
        cpu = sum(r["cpu"])
        table(
            f"Campaign sending, end to end: {count} × {args.mode}",
            [
                ("measure", "value"),
                [
                    "engine, processes × SMTP connections, sink",
                    f"{engine}, {count} × {args.concurrency}, {args.sink}",
                ],
                [
                    "recipients (web links per message, click-tracked)",
                    f"{args.recipients:,} ({args.links})",
                ],
                ["setup (migrate, contacts, launch)", f"{r['setup']:.1f} s"],
                [
                    "Enseigne, from the processes' start to finished",
                    f"{ours:,.0f} msg/s ({r['elapsed']:.1f} s)",
                ],
                [
                    "Enseigne, from the first message to finished",
                    f"{args.recipients / r['from_first']:,.0f} msg/s ({r['from_first']:.1f} s)",
                ],
                [
                    f"baseline: raw smtplib, pre-built messages, {count} connection(s)",
                    f"{r['raw']:,.0f} msg/s",
                ],
                ["ratio baseline / Enseigne (from start)", f"{r['raw'] / ours:.2f}×"],
                [
                    "CPU per message: Enseigne workers / raw loop",
                    f"{cpu / args.recipients * 1e6:.0f} µs / {r['raw_cpu_us']:.0f} µs",
                ],
                [
                    "each worker's CPU (share)",
                    ", ".join(f"{c:.1f} s ({c / cpu:.0%})" for c in r["cpu"]) if cpu else "-",
                ],
                [
                    "PostgreSQL transactions per message (all connections)",
                    f"{r['commits'] / args.recipients:.2f}",
                ],
                ["each worker's peak RSS", ", ".join(f"{m} MB" for m in r["rss"])],
                ["ledger at the end", ", ".join(f"{k} {v:,}" for k, v in r["statuses"].items())],
                ["messages at the sink (Enseigne + baseline)", r["at_sink"]],
                ["machine CPU busy during the send (all processes)", f"{r['busy']:.0%}"],
            ],
        )
    if len(results) > 1:
        counts = sorted(results)
        rate = {c: args.recipients / results[c]["elapsed"] for c in counts}
        rows = [("workers", "msg/s", f"× {counts[0]} worker(s)", "raw loop / Enseigne")]
        for c in counts:
            rows.append(
                [
                    str(c),
                    f"{rate[c]:,.0f}",
                    f"{rate[c] / rate[counts[0]]:.2f}×",
                    f"{results[c]['raw'] / rate[c]:.2f}×",
                ]
            )
        table("Scaling", rows)
    print(
        f"\nbench process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
    )


if __name__ == "__main__":
    main()
