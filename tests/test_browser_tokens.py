"""The profile page in Chromium: a store manager creates an API token, uses it, revokes it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from enseigne.network.models import ApiToken
from tests.factories import build_world
from tests.test_browser import _log_in, browser_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_store_manager_creates_and_revokes_a_token(live_server, transactional_db, browser_page):  # noqa: F811
    world = build_world()
    page = browser_page
    _log_in(page, live_server.url, world.manager_a.email)
    page.get_by_role("link", name=world.manager_a.email).click()
    expect(page.get_by_role("heading", name="Mon profil")).to_be_visible()

    page.get_by_label("Nom").fill("Caisse du magasin")
    page.get_by_label("Conversions (commandes d’une caisse ou d’un site marchand)").check()
    page.get_by_label("Expire après").select_option("30")
    page.get_by_role("button", name="Créer le jeton").click()

    key = page.locator("[data-token-value]").input_value()
    assert key.startswith("ens_")
    token = ApiToken.objects.get(user=world.manager_a)
    assert (token.name, token.scopes) == ("Caisse du magasin", ["conversions"])
    row = page.locator(f"tr[data-token='{token.prefix}']")
    expect(row).to_contain_text("actif")

    api = page.request.get(
        f"{live_server.url}/api/v1/units", headers={"Authorization": f"Bearer {key}"}
    )
    assert api.status == 200

    page.goto(f"{live_server.url}/profile/")  # shown once: a new visit no longer has it
    expect(page.locator("[data-token-value]")).to_have_count(0)
    row.get_by_role("button", name="Révoquer").click()
    expect(row).to_contain_text("révoqué")
    expect(row.get_by_role("button", name="Révoquer")).to_have_count(0)
    api = page.request.get(
        f"{live_server.url}/api/v1/units", headers={"Authorization": f"Bearer {key}"}
    )
    assert api.status == 401
