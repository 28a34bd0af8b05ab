"""The results charts in Chromium speak the page's language: a French store manager reads
"1 200" and "07/09/2026" on the axes of their dashboard, not "1,200" and "2026-09-07"."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from enseigne.analytics.models import UnitDay
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.factories import build_world
from tests.test_browser import ARTIFACTS, _log_in, browser_page  # noqa: F401 (the fixture)
from tests.test_results_honest import _orders

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_dashboards_axes_read_numbers_and_days_in_french(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    world = build_world()
    today = dt.date.today()
    days = [today - dt.timedelta(days=n) for n in range(10, -1, -1)]
    with db_scope(ALL):
        UnitDay.objects.bulk_create(
            UnitDay(
                day=day,
                unit_id=world.unit_a.pk,
                unit_path=world.unit_a.path,
                contacts=1000 + 50 * n,
                email_ok=900,
                sms_ok=500,
            )
            for n, day in enumerate(days)
        )
        _orders(world.unit_a, ["35.50"] * 1200 + ["-20.00"] * 3)
    page = browser_page
    _log_in(page, live_server.url, world.manager_a.email)
    page.goto(f"{live_server.url}/results/units/{world.unit_a.public_id}/")
    chart = page.locator("#base-chart svg")
    expect(chart).to_be_visible()
    text = " ".join(chart.locator("text").all_text_contents())
    # Thousands grouped with a (narrow) no-break space, days as the French short date.
    assert re.search(r"1[\u202f\u00a0 ]\d00", text), text
    assert days[0].strftime("%d/%m/%Y") in text or days[1].strftime("%d/%m/%Y") in text, text
    assert not re.search(r"\d,\d00\b", text), text
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text), text
    expect(page.locator("#store-orders")).to_have_text("1\u00a0200")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "results-unit-honest.png"), full_page=True)


def test_a_region_manager_reads_their_regions_results(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    world = build_world()
    with db_scope(ALL):
        _orders(world.unit_a, ["35.50"] * 1200 + ["-20.00"])
        _orders(world.unit_a2, ["12.00"] * 30)
        _orders(world.unit_b, ["99.00"] * 5)
    page = browser_page
    _log_in(page, live_server.url, world.region_manager.email)
    page.goto(f"{live_server.url}/results/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Résultats · Sud-Est")
    expect(page.locator("#scope-value")).to_contain_text("Sud-Est\u00a0:")
    expect(page.locator("#network-value")).to_contain_text("Tout le réseau\u00a0:")
    expect(page.locator("#scope-orders")).to_have_text("1\u00a0230")
    expect(page.locator("#ranking tbody tr")).to_have_count(2)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "results-region-honest.png"), full_page=True)
