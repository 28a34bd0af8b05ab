"""In Chromium, in French: the segment builder and the rich-text toolbar speak French."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from enseigne.brand.services import template_create
from enseigne.contacts.models import Segment
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.factories import PASSWORD, build_world
from tests.test_browser import browser_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
RICH_SOURCE = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>"
    '<ens-zone name="message" kind="rich" label="Mot du magasin">Bonjour</ens-zone>'
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)


def _login(page, url, user):
    page.goto(f"{url}/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def test_the_segment_builder_reads_in_french_and_keeps_the_keys(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    world = build_world()
    page = browser_page
    _login(page, live_server.url, world.manager_a)
    page.goto(f"{live_server.url}/segments/new/")
    page.get_by_role("button", name="+ condition").click()
    field = page.get_by_label("Champ")
    operator = page.get_by_label("Condition", exact=True)
    # The new condition starts as "e-mail consent is given", in words.
    expect(operator.locator("option:checked")).to_have_text(
        "est donné (peut recevoir des messages)"
    )
    field.select_option(label="Date de naissance")
    expect(operator.locator("option")).to_contain_text(["est avant le", "tombe au mois de"])
    operator.select_option(label="tombe au mois de")
    page.get_by_label("Valeur").select_option(label="mars")
    expect(page.locator("#live-count")).to_contain_text("0")
    page.get_by_label("Nom").fill("Anniversaires de mars")
    page.get_by_role("button", name="Enregistrer le segment").click()
    expect(page.get_by_role("heading", name="Anniversaires de mars")).to_be_visible()
    with db_scope(ALL):  # the test's own reads, as the system (row-level security)
        saved = Segment.objects.get(name="Anniversaires de mars")
    assert saved.rules == {
        "match": "all",
        "rules": [{"field": "birthday", "op": "month_is", "value": "3"}],
    }


def test_the_rich_text_toolbar_is_in_french(live_server, transactional_db, browser_page):  # noqa: F811
    world = build_world()
    with db_scope(ALL):
        template = template_create(
            actor=world.hq_admin,
            shared_with=world.root,
            channel="email",
            name="Mot du magasin",
            source=RICH_SOURCE,
        )
    page = browser_page
    _login(page, live_server.url, world.manager_a)
    page.goto(f"{live_server.url}/brand/templates/{template.public_id}/personalise/")
    toolbar = page.locator("trix-toolbar").first
    expect(toolbar.locator("[data-trix-attribute=bold]")).to_have_attribute("title", "Gras")
    expect(toolbar.locator("[data-trix-attribute=italic]")).to_have_attribute("title", "Italique")
    expect(toolbar.locator("[data-trix-action=undo]")).to_have_attribute("title", "Annuler")
    expect(toolbar.locator("input[name=href]")).to_have_attribute(
        "placeholder", "Saisissez une adresse web…"
    )


def test_hq_builds_a_segment_on_what_people_did(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    """ "Personne, tous magasins · A cliqué dans une campagne · cette campagne": the campaign
    is picked from a list, "within the last … days" takes a number; the rules keep keys."""
    from django.utils import timezone

    from enseigne.campaigns.models import Campaign
    from tests.campaign_helpers import local_campaign

    world = build_world()
    with db_scope(ALL):
        campaign = local_campaign(world)
        Campaign.objects.filter(pk=campaign.pk).update(launched_at=timezone.now())
    page = browser_page
    _login(page, live_server.url, world.hq_admin)
    page.goto(f"{live_server.url}/segments/new/")
    page.get_by_role("button", name="+ condition").click()
    page.get_by_label("Champ").select_option(
        label="Personne, tous magasins · A cliqué dans une campagne"
    )
    operator = page.get_by_label("Condition", exact=True)
    operator.select_option(label="cette campagne")
    page.get_by_label("Valeur").select_option(label=f"{campaign.name} ({timezone.now():%Y-%m-%d})")
    expect(page.locator("#live-count")).to_contain_text("0")
    page.get_by_role("button", name="+ condition").click()
    page.get_by_label("Champ").nth(1).select_option(label="A reçu une campagne")
    page.get_by_label("Condition", exact=True).nth(1).select_option(
        label="aucune dans les … derniers jours"
    )
    days = page.get_by_label("Valeur").nth(1)
    expect(days).to_have_attribute("type", "number")
    days.fill("30")
    page.get_by_label("Nom").fill("Cliqueurs")
    page.get_by_role("button", name="Enregistrer le segment").click()
    expect(page.get_by_role("heading", name="Cliqueurs")).to_be_visible()
    with db_scope(ALL):
        saved = Segment.objects.get(name="Cliqueurs")
    assert saved.rules["rules"] == [
        {"field": "person.clicked", "op": "campaign", "value": str(campaign.public_id)},
        {"field": "received", "op": "none_in_last_days", "value": "30"},
    ]
