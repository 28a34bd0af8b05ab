"""End-to-end campaign sending (claim → render → SMTP → mark) against a raw smtplib loop.

    .venv/bin/python bench/send.py --recipients 100000 --workers 2 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_send
    .venv/bin/python bench/send.py --recipients 20000 --workers 1 --database sqlite:////tmp/bench_send.sqlite3

Builds a scratch database (dropped and re-created), a network and N consenting contacts,
launches a personalised local e-mail campaign and runs ``enseigne send_campaign`` in
``--workers`` processes until it is finished, into a minimal sink in its own process
(PIPELINING, answers 250 and counts, keeps nothing): ``bench/sink.c``, compiled here with
gcc, or ``--sink python`` for ``bench/_sink.py`` (one asyncio loop, which tops out near
2,000 msg/s on this machine and then is the bottleneck). The baseline, same
run, same sink: one process sending the same number of pre-built messages (the bytes
Enseigne produced for the first recipients) with ``smtplib.SMTP.sendmail`` over one
connection per worker. Reports the rates, the ratio and each worker's peak RSS.
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


def _env(database: str, port: int, data_dir: str) -> dict:
    env = dict(os.environ)
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


def _start_sink(kind: str, port: int, sample_file: Path, data_dir: str) -> subprocess.Popen:
    if kind == "c":
        binary = Path(data_dir) / "sink"
        subprocess.run(
            ["gcc", "-O2", "-o", str(binary), str(ROOT / "bench" / "sink.c")], check=True
        )  # noqa: S603, S607
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
    return sink


def _samples(kind: str, sample_file: Path) -> list[bytes]:
    """The messages the sink kept, as the client meant them (the C sink keeps them as sent)."""
    parts = sample_file.read_bytes().split(b"\x00\x00MSG\x00\x00")[:-1]
    if kind == "c":
        parts = [p[:-3].replace(b"\r\n..", b"\r\n.") for p in parts]
    return parts


def _cpu_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (not idle or waiting on I/O)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _baseline(port: int, messages: list[bytes], lanes: int) -> float:
    def lane(chunk: list[bytes], out: Queue) -> None:
        smtp = smtplib.SMTP("127.0.0.1", port)
        started = time.perf_counter()
        for data in chunk:
            smtp.sendmail("bounces@news.example.com", ["someone@example.com"], data)
        out.put(time.perf_counter() - started)
        smtp.quit()

    out: Queue = Queue()
    procs = [Process(target=lane, args=(messages[i::lanes], out)) for i in range(lanes)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return len(messages) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--database", default="postgres://postgres@127.0.0.1:5432/enseigne_bench_send"
    )
    parser.add_argument("--port", type=int, default=2599)
    parser.add_argument("--concurrency", type=int, default=4)  # ENSEIGNE_SMTP_CONCURRENCY default
    parser.add_argument("--sink", choices=["c", "python"], default="c")
    parser.add_argument(
        "--links", type=int, default=3, help="web links per message (click-tracked)"
    )
    args = parser.parse_args()

    data_dir = "/tmp/enseigne-bench-send"
    os.makedirs(data_dir, exist_ok=True)
    sample_file = Path(data_dir) / "sample.bin"
    sample_file.unlink(missing_ok=True)
    sink = _start_sink(args.sink, args.port, sample_file, data_dir)
    try:
        recreate_database(args.database)
        env = _env(args.database, args.port, data_dir)
        env["ENSEIGNE_SMTP_CONCURRENCY"] = str(args.concurrency)
        setup_started = time.perf_counter()
        setup = subprocess.run(
            [sys.executable, "tests/send_scenario.py", str(args.recipients), str(args.links)],
            cwd=ROOT,
            env=env,  # noqa: S603
            capture_output=True,
            text=True,
            check=True,
        )
        campaign_id = setup.stdout.strip().splitlines()[-1]
        setup_seconds = time.perf_counter() - setup_started
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
        busy_before = _cpu_busy()
        started = time.perf_counter()
        workers = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)  # noqa: S603
            for _ in range(args.workers)
        ]
        outputs = [w.communicate()[0] for w in workers]
        elapsed = time.perf_counter() - started
        busy = (_cpu_busy() - busy_before) / elapsed / (os.cpu_count() or 1)
        usage = [
            line.split()
            for out in outputs
            for line in out.splitlines()
            if line.startswith("maxrss")
        ]
        rss = [int(u[1]) // 1024 for u in usage]
        worker_cpu = sum(float(u[2]) for u in usage)
        ours = args.recipients / elapsed
        samples = _samples(args.sink, sample_file)
        baseline_messages = (samples * (args.recipients // max(1, len(samples)) + 1))[
            : min(args.recipients, 50_000)
        ]
        raw = _baseline(args.port, baseline_messages, args.workers)
    finally:
        sink.terminate()
        received = sink.communicate()[0].split()
    expected = args.recipients + len(baseline_messages)
    at_sink = (
        f"{int(received[-1]):,} (expected {expected:,})" if args.sink == "c" else "not counted"
    )
    engine = "PostgreSQL" if args.database.startswith("postgres") else "SQLite"
    table(
        "Campaign sending, end to end",
        [
            ("measure", "value"),
            [
                "engine, workers × SMTP connections, sink",
                f"{engine}, {args.workers} × {args.concurrency}, {args.sink}",
            ],
            [
                "recipients (web links per message, click-tracked)",
                f"{args.recipients:,} ({args.links})",
            ],
            ["setup (migrate, contacts, launch)", f"{setup_seconds:.1f} s"],
            [
                "Enseigne end to end (claim → render → SMTP → mark)",
                f"{ours:,.0f} msg/s ({elapsed:.1f} s)",
            ],
            ["baseline: raw smtplib, pre-built messages, same sink", f"{raw:,.0f} msg/s"],
            ["ratio baseline / Enseigne", f"{raw / ours:.2f}×"],
            ["messages at the sink (Enseigne + baseline)", at_sink],
            ["machine CPU busy during the send (all processes)", f"{busy:.0%}"],
            [
                "worker CPU per message (all workers)",
                f"{worker_cpu / args.recipients * 1e6:.0f} µs",
            ],
            ["worker peak RSS", ", ".join(f"{r} MB" for r in rss)],
            [
                "bench process peak RSS",
                f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB",
            ],
        ],
    )


if __name__ == "__main__":
    main()
