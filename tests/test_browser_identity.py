"""HQ's customer base in Chromium: find a person, open the card, merge from the review
queue, undo from the history (issue 20)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from enseigne.identity.models import MatchCandidate, RecordLink
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.factories import ContactFactory, build_world
from tests.test_browser import _log_in, browser_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def persons(*records) -> set[int]:
    with db_scope(ALL):
        return {RecordLink.objects.get(contact=r).person_id for r in records}


def test_hq_searches_merges_and_undoes(live_server, transactional_db, browser_page):  # noqa: F811
    world = build_world()
    with db_scope(ALL):
        lyon = ContactFactory(
            unit=world.unit_a, email="anne.morel@orange.fr", first_name="Anne", last_name="Morel"
        )
        annecy = ContactFactory(
            unit=world.unit_a2,
            email=None,
            phone="+33698765432",
            first_name="Anne",
            last_name="Morel",
        )
        ContactFactory(
            unit=world.unit_b,
            email="anne.morel@orange.fr",
            phone="+33698765432",
            first_name="Anne",
            last_name="Morèl",
        )
        assert MatchCandidate.objects.filter(status="open").count() == 1
    assert len(persons(lyon, annecy)) == 2
    page = browser_page
    _log_in(page, live_server.url, world.hq_admin.email)

    page.locator("[data-menu=audience] > a").click()
    page.get_by_role("link", name="Base clients").click()
    page.get_by_placeholder("Nom, e-mail ou téléphone").fill("MOREL")
    page.get_by_role("button", name="Rechercher").click()
    rows = page.locator("#people tbody tr")
    expect(rows).to_have_count(2)
    rows.filter(has_text="anne.morel@orange.fr").get_by_role("link").click()
    expect(page.locator("#golden")).to_contain_text("valeur la plus fréquente")
    expect(page.locator("#records")).to_contain_text("Même adresse e-mail")

    page.get_by_role("link", name="À vérifier").click()
    candidate = page.locator(".candidate")
    expect(candidate).to_have_count(1)
    expect(candidate).to_contain_text("+33698765432")
    candidate.get_by_role("button", name="Même personne : fusionner").click()
    expect(page.locator("#review-empty")).to_be_visible()
    assert len(persons(lyon, annecy)) == 1

    page.get_by_role("link", name="Historique").click()
    page.locator("#history").get_by_role("button", name="Annuler").first.click()
    expect(page.locator("#history")).to_contain_text("annulée")
    assert len(persons(lyon, annecy)) == 2
    page.get_by_role("link", name="À vérifier").click()
    expect(page.locator(".candidate")).to_have_count(1)
