"""Personas and RFM in Chromium (issue 21): HQ builds a persona with the segment builder
(live count), saves it, moves it first, recomputes, and the counts and their chart show;
a store manager's RFM page draws the migration chart for their store."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from enseigne.commerce.models import Order
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.personas.models import PersonaRecord
from enseigne.personas.services import persona_save
from enseigne.rfm import scoring
from enseigne.rfm.snapshots import month_of, previous_month, snapshot_month
from tests.factories import ContactFactory, build_world
from tests.test_browser import _log_in, browser_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_hq_builds_a_persona_and_a_store_sees_its_rfm(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    world = build_world()
    now = timezone.now()
    with db_scope(ALL):
        for i in range(6):
            record = ContactFactory(
                unit=world.unit_a, email=f"b.{i}@orange.fr", is_customer=i % 2 == 0
            )
            Order.objects.create(
                unit=world.unit_a,
                unit_path=world.unit_a.path,
                external_id=f"B{i}",
                contact=record,
                occurred_at=now - dt.timedelta(days=3 + 40 * i),
                total=Decimal(20 + i),
                channel="in_store",
                source="api",
            )
        scoring.full_run()
        last = dt.datetime.combine(previous_month(month_of(now)), dt.time(12), tzinfo=dt.UTC)
        snapshot_month(world.root.path, as_of=last)
        snapshot_month(world.root.path)
        persona_save(
            actor=world.hq_admin,
            name="Tout le monde",
            rules={"match": "all", "rules": [{"field": "first_name", "op": "is_not_empty"}]},
        )
    page = browser_page
    _log_in(page, live_server.url, world.hq_admin.email)
    page.goto(f"{live_server.url}/hq/personas/new/")
    page.get_by_label("Nom").fill("Clients")
    page.get_by_role("button", name="+ condition").click()
    page.get_by_label("Champ").select_option("is_customer")
    expect(page.locator("#segment-count")).to_have_text("3")
    page.get_by_role("button", name="Enregistrer le persona").click()
    expect(page.locator(".alert-success")).to_contain_text("Le persona a été enregistré")
    page.get_by_role("link", name="Personas").first.click()
    rows = page.locator("#persona-list tbody tr")
    expect(rows).to_have_count(2)
    page.get_by_role("button", name="Monter Clients").click()
    expect(rows.first).to_contain_text("Clients")
    page.get_by_role("button", name="Recalculer maintenant").click()
    expect(page.locator("#persona-chart svg")).to_be_visible()
    expect(page.locator("#persona-counts tbody tr").first).to_contain_text("3")
    with db_scope(ALL):
        assert PersonaRecord.objects.count() == 6
    page.context.clear_cookies()
    _log_in(page, live_server.url, world.manager_a.email)
    page.goto(f"{live_server.url}/rfm/")
    expect(page.locator("#rfm-heat-map td[data-records]")).to_have_count(25)
    expect(page.locator("[data-chart=rfm-moves] svg")).to_be_visible()
    expect(page.locator("#rfm-migration")).to_be_visible()
