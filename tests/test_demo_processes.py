"""`enseigne demo` leaves nothing running behind it, however it is stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts and signals real processes

ROOT = Path(__file__).resolve().parent.parent

# The demo command's process loop, with each child a plain `sleep` whose pid is written
# down: what is checked is how the loop stops them, not the servers themselves.
SCRIPT = """
import subprocess, sys
import django
django.setup()
from enseigne.demo.management.commands import demo

class Sleeper(subprocess.Popen):
    def __init__(self, args, env=None):
        super().__init__(["sleep", "300"])
        with open(sys.argv[1], "a") as pids:
            pids.write(f"{self.pid}\\n")

demo.subprocess.Popen = Sleeper
demo.Command()._run_processes(port=0)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but was not yet reaped by anyone counts as gone.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "zombie" in status.read_text())


def _start(tmp_path) -> tuple[subprocess.Popen, list[int]]:
    """The loop in a fresh session (so SIGINT is not inherited as ignored, as it is for a
    background job), once its three children run."""
    pids_file = tmp_path / "pids"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(  # noqa: S603 — this interpreter, this file's script
        [sys.executable, "-c", SCRIPT, str(pids_file)],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        not pids_file.exists() or len(pids_file.read_text().split()) < 3
    ):
        time.sleep(0.1)
    children = [int(p) for p in pids_file.read_text().split()]
    assert len(children) == 3 and all(_alive(p) for p in children)
    time.sleep(0.5)  # the signal handlers are set once the three children run
    return parent, children


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stopping_the_demo_stops_its_web_worker_and_sink(tmp_path, signum):
    parent, children = _start(tmp_path)
    parent.send_signal(signum)
    parent.communicate(timeout=20)
    assert [pid for pid in children if _alive(pid)] == []


def test_a_child_that_dies_stops_the_others_and_says_which(tmp_path):
    parent, (sink, worker, web) = _start(tmp_path)
    os.kill(worker, signal.SIGKILL)
    _, stderr = parent.communicate(timeout=20)
    assert "The worker stopped (exit code -9); stopping the others." in stderr
    assert not _alive(sink) and not _alive(web)
