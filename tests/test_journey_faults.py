"""Journeys (issue 22) through killed workers: birthdays across Paris's change of time,
moved by two worker processes on a shared simulated clock, one SIGKILLed twice and started
again — every birthday gets exactly one message, entered on its local day, none lost.

The workers are separate processes on a scratch database of the test run's engine
(``tests/journey_scenario.py``; ``bench/journeys.py`` runs the same scenario at 1,000)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.faulty_sink import FaultyHandler, FaultySink
from tests.journey_scenario import drive, outcome
from tests.test_send_reliability import ROOT, ScratchDatabase, _env

BIRTHDAYS = 60


@pytest.mark.slow  # worker processes, SIGKILLed (about 30 s)
@pytest.mark.django_db(transaction=False)
def test_birthdays_across_the_change_of_time_survive_two_killed_workers(tmp_path):
    handler = FaultyHandler()
    with ScratchDatabase(tmp_path) as database, FaultySink(handler) as sink:
        env = _env(database, sink.port, tmp_path)
        setup = subprocess.run(  # noqa: S603
            [sys.executable, "tests/journey_scenario.py", "setup", str(BIRTHDAYS)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert setup.returncode == 0, setup.stderr[-3000:]
        run = drive(env, per_hour=0.1, kills=2, timeout=120)
        assert len(run["kills"]) == 2
        with handler.lock:
            kept = dict(handler.kept)
        result = outcome(database.rows, kept)
    assert result["birthdays"] == BIRTHDAYS
    assert result["enrolled"] == BIRTHDAYS
    assert result["entered on the local day"] == BIRTHDAYS
    assert result["ledger rows"] == BIRTHDAYS
    assert result["duplicates"] == 0
    assert result["lost"] == 0
    assert result["birthdays with exactly one message"] == BIRTHDAYS
