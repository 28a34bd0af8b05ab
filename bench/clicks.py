"""Click redirects through the production WSGI server, against a bare Django 302, same server, same run.

    .venv/bin/python bench/clicks.py --seconds 60 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_clicks

Needs ``wrk`` (Debian: ``apt-get install -y wrk``). Builds a scratch database (dropped and
re-created) with a campaign, its three links and click tokens for 50,000 recipients;
starts granian (WSGI, ``--workers``), then:

1. the bare endpoint (Django, same middleware, returns 302) under wrk for ``--seconds``;
2. the click endpoint, every request a different recipient and link, for ``--seconds``;
3. exactness: the server stopped (its writer threads flush on exit), the clicks in the
   events table against the 302s wrk received — a request still in flight when wrk
   stops may have been recorded without wrk counting its answer, so the table may hold
   at most one per connection more; then a fixed run of exactly ``--exact`` clicks from a
   Python client must land exactly.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from _setup import recreate_database, table

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
LUA = """
local paths = {}
local index = 0
local received = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  index = math.random(#paths)
end
request = function()
  index = index % #paths + 1
  return wrk.format("GET", paths[index], {["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"})
end
response = function(status, headers, body)
  if status == 302 then received = received + 1 end
end
"""
DONE = """
done = function(summary, latency, requests)
  io.write(string.format("p50 %f p99 %f max %f\\n", latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _env(database: str, data_dir: str) -> dict:
    env = dict(os.environ)
    # Production settings (no DEBUG, secrets and servers given), as a deployment runs them.
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "_clicks_settings",
            "PYTHONPATH": f"{BENCH}:{ROOT}",
            "DATABASE_URL": database,
            "DATABASE_APP_ROLE": "enseigne_app" if database.startswith("postgres") else "",
            "ENSEIGNE_MODE": "production",
            "SECRET_KEY": "bench-" + "x" * 50,
            "EMAIL_URL": "smtp://127.0.0.1:2525",
            "SMS_URL": "outbox:",
            "ENSEIGNE_DATA_DIR": data_dir,
            "HUEY_URL": "immediate:",
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "ENSEIGNE_BASE_URL": "https://127.0.0.1",
        }
    )
    return env


SETUP = """
import os, sys
os.environ["ENSEIGNE_DB_AS_OWNER"] = "1"
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connections
connections.close_all()
from enseigne.lib.rowsecurity import ALL, db_scope, set_role_switch
set_role_switch(True)
from enseigne.delivery.models import Link
from enseigne.lib.signing import sign_ids
from tests.campaign_helpers import local_campaign
from tests.factories import build_world
with db_scope(ALL):
    world = build_world()
    campaign = local_campaign(world)
    links = [Link.objects.create(campaign=campaign, unit=world.unit_a, unit_path=world.unit_a.path,
                                 url=f"https://www.example.com/page/{i}", url_hash=f"{i:032d}", position=i)
             for i in range(1, 4)]
with open(sys.argv[1], "w") as out:
    for recipient in range(1, int(sys.argv[2]) + 1):
        out.write(f"/c/{sign_ids('click', recipient, links[recipient % 3].pk)}\\n")
"""


def _wrk(url: str, script: Path, paths: Path, seconds: int, connections: int) -> dict:
    output = subprocess.run(  # noqa: S603
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            url,
            "--",
            str(paths),
        ],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", output)[1])
    errors = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|Socket errors:.*?)(\d+)", output)
    )
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    p = re.search(r"p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+)", output)
    return {
        "requests": requests,
        "rate": float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1]),
        "p50": float(p[1]) / 1000,
        "p99": float(p[2]) / 1000,
        "max": float(p[3]) / 1000,
        "errors": (sum(int(x) for x in socket.groups()) if socket else 0)
        + int((re.search(r"Non-2xx or 3xx responses: (\d+)", output) or [0, 0])[1]),
        "raw": output,
        "_unused": errors,
    }


def _server(env: dict, port: int, workers: int) -> subprocess.Popen:
    granian = Path(sys.executable).parent / "granian"
    server = subprocess.Popen(
        [
            str(granian),
            "--interface",
            "wsgi",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",  # noqa: S603
            "--port",
            str(port),
            "--no-access-log",
            "--backlog",
            "2048",
            "config.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for _ in range(100):
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/bare/")
            connection.getresponse().read()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"granian did not start: {server.stderr.read()}")


def _stop(server: subprocess.Popen) -> None:
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def _count(env: dict) -> int:
    code = (
        "import django; django.setup(); from enseigne.lib.rowsecurity import ALL, db_scope; "
        "from enseigne.delivery.models import Event\nwith db_scope(ALL): print(Event.objects.filter(kind=4).count())"
    )
    return int(
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,  # noqa: S603
            check=True,
        ).stdout.split()[-1]
    )


def _exact(port: int, paths: list[str], total: int, threads: int = 8) -> int:
    """Send exactly ``total`` clicks over keep-alive connections; returns the 302s received."""
    received = [0] * threads

    def lane(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for n in range(index, total, threads):
            connection.request(
                "GET", paths[n % len(paths)], headers={"User-Agent": "Mozilla/5.0 Chrome/120.0"}
            )
            response = connection.getresponse()
            response.read()
            received[index] += response.status == 302

    lanes = [threading.Thread(target=lane, args=(i,)) for i in range(threads)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    return sum(received)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--exact", type=int, default=20_000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--database", default="postgres://postgres@127.0.0.1:5432/enseigne_bench_clicks"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    data_dir = "/tmp/enseigne-bench-clicks"
    os.makedirs(data_dir, exist_ok=True)
    paths_file = Path(data_dir) / "paths.txt"
    recreate_database(args.database)
    env = _env(args.database, data_dir)
    subprocess.run(
        [sys.executable, "-c", SETUP, str(paths_file), str(args.recipients)],
        cwd=ROOT,
        env=env,  # noqa: S603
        check=True,
    )
    click_script = Path(data_dir) / "clicks.lua"
    click_script.write_text(LUA + DONE)
    bare_paths = Path(data_dir) / "bare.txt"
    bare_paths.write_text("/bare/\n")
    url = f"http://127.0.0.1:{args.port}"
    server = _server(env, args.port, args.workers)
    try:
        _wrk(url, click_script, bare_paths, 3, args.connections)  # warm both workers up
        bare = _wrk(url, click_script, bare_paths, args.seconds, args.connections)
        clicks = _wrk(url, click_script, paths_file, args.seconds, args.connections)
    finally:
        _stop(server)
    recorded = _count(env)
    server = _server(env, args.port, args.workers)
    try:
        sent_paths = paths_file.read_text().split()
        exact_received = _exact(args.port, sent_paths, args.exact)
    finally:
        _stop(server)
    after_exact = _count(env) - recorded
    table(
        f"Click redirects, granian WSGI × {args.workers} workers, wrk 2 threads × {args.connections} connections,"
        f" {args.seconds} s each",
        [
            ("endpoint", "requests/s", "p50", "p99", "max", "errors", "requests"),
            (
                "bare Django 302 (same middleware)",
                f"{bare['rate']:,.0f}",
                f"{bare['p50']:.1f} ms",
                f"{bare['p99']:.1f} ms",
                f"{bare['max']:.0f} ms",
                bare["errors"],
                f"{bare['requests']:,}",
            ),
            (
                "click redirect (token, link, event)",
                f"{clicks['rate']:,.0f}",
                f"{clicks['p50']:.1f} ms",
                f"{clicks['p99']:.1f} ms",
                f"{clicks['max']:.0f} ms",
                clicks["errors"],
                f"{clicks['requests']:,}",
            ),
        ],
    )
    table(
        "Every click in the events table",
        [
            ("run", "302s received by the client", "clicks in the table", "difference"),
            (
                f"wrk, {args.seconds} s",
                f"{clicks['requests']:,}",
                f"{recorded:,}",
                f"{recorded - clicks['requests']:+,} (≤ {args.connections} in flight at the stop)",
            ),
            (
                f"exactly {args.exact:,} requests, 8 keep-alive clients",
                f"{exact_received:,}",
                f"{after_exact:,}",
                f"{after_exact - exact_received:+,}",
            ),
        ],
    )


if __name__ == "__main__":
    main()
