"""The store dashboard's customers section in Chromium (issue 21): a store manager opens
their dashboard and reads their RFM groups, personas and top categories beside the
network's median store, in French."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from enseigne.analytics import customers
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.factories import build_world
from tests.test_browser import ARTIFACTS, _log_in, browser_page  # noqa: F401 (the fixture)
from tests.test_store_customers import seed_shop

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_store_manager_reads_their_customers_beside_the_median_store(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setattr(customers, "MIN_PEOPLE", 5)
    monkeypatch.setattr(customers, "MIN_CATEGORY_BUYERS", 3)
    world = build_world()
    with db_scope(ALL):
        shop = seed_shop(world)
    page = browser_page
    _log_in(page, live_server.url, world.manager_a.email)
    page.goto(f"{live_server.url}/results/units/{world.unit_a.public_id}/")
    section = page.locator("#customers")
    expect(section.get_by_role("heading", level=2)).to_have_text(
        "Vos clients et le magasin médian du réseau"
    )
    expect(page.locator("#customers-rfm tbody tr")).to_have_count(11)
    expect(page.locator("#customers-rfm caption")).to_contain_text("Médiane de 3 magasins")
    clients = page.locator(f'#customers-personas tr[data-persona="{shop["clients"].public_id}"]')
    expect(clients.locator("td").nth(0)).to_have_text("8")
    expect(clients).to_contain_text("au-dessus du magasin médian")
    expect(page.locator("#customers-categories tbody tr")).to_have_count(3)
    expect(page.locator("#customers-categories caption")).to_contain_text("douze derniers mois")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#customers").screenshot(path=str(ARTIFACTS / "store-customers.png"))
