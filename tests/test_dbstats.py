"""Bulk loads leave the planner statistics behind them (the demo seed, the benches' networks)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from enseigne.demo import seed
from enseigne.demo.management.commands import demo as demo_command
from enseigne.lib.dbstats import analyze
from enseigne.lib.rowsecurity import role_switch_enabled
from tests.factories import ContactFactory


def _analyses_of_contacts() -> int:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'contacts_contact'"
            )
            return cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'contacts_contact'")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_analyze_refreshes_the_statistics_as_the_owner(world):
    ContactFactory.create_batch(3, unit=world.unit_a)
    before = _analyses_of_contacts()
    switch = role_switch_enabled()
    analyze()
    assert _analyses_of_contacts() > before
    assert role_switch_enabled() == switch  # the app role is back for what follows


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("exists, analysed", [(False, 1), (True, 0)])
def test_demo_analyzes_after_seeding_only(monkeypatch, exists, analysed):
    calls = []
    monkeypatch.setattr(seed, "demo_exists", lambda: exists)
    monkeypatch.setattr(seed, "seed", lambda contacts_total: {"units": 0, "contacts": 0})
    monkeypatch.setattr(demo_command, "analyze", lambda: calls.append(1))
    call_command("demo", "--no-serve")
    assert len(calls) == analysed
