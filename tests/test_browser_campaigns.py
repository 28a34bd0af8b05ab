"""A marketer's campaigns in Debian's Chromium: edit a draft, duplicate a campaign, start from
the gallery with an audience and a date, and watch sending reach its final state."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect

from enseigne.campaigns.models import Campaign
from enseigne.contacts.services import segment_save
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.campaign_helpers import EVERYONE, contacts, launched, local_campaign
from tests.factories import PASSWORD, build_world
from tests.test_browser import browser_page  # noqa: F401 — the shared Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _login(page, live_server, user):
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("button", name="Se connecter")).to_have_count(0)


def test_a_store_edits_its_draft_then_duplicates_it(live_server, transactional_db, browser_page):  # noqa: F811
    world = build_world()
    with db_scope(ALL):
        draft = local_campaign(world)
        fideles = segment_save(actor=None, owner=world.unit_a, name="Fidèles", rules=EVERYONE)
    page = browser_page
    _login(page, live_server, world.manager_a)
    page.goto(f"{live_server.url}/campaigns/{draft.public_id}/")
    page.locator("#edit-link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Modifier le brouillon « Local lyon »"
    )
    page.locator("[name=name]").fill("Nocturne de mars")
    page.locator("[name=segment]").select_option(label="Fidèles")
    page.locator("[name=send_at]").fill("2099-03-14T18:30")
    page.locator("#campaign-form button").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nocturne de mars")
    expect(page.locator("#segment")).to_have_text("Fidèles")
    expect(page.locator("#send-date")).to_contain_text("2099")
    with db_scope(ALL):
        draft.refresh_from_db()
        assert (draft.name, draft.segment_id, draft.status) == (
            "Nocturne de mars",
            fideles.pk,
            "draft",
        )

    page.locator("#duplicate").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Modifier le brouillon « Nocturne de mars (copie) »"
    )
    expect(page.locator(".alert-success, .alert")).to_contain_text("nouveau brouillon")
    with db_scope(ALL):
        copy = Campaign.objects.exclude(pk=draft.pk).get(owner=world.unit_a)
        assert (copy.status, copy.segment_id, copy.send_at) == ("draft", fideles.pk, None)

    # Once submitted, editing is refused with the reason, in French.
    page.goto(f"{live_server.url}/campaigns/{draft.public_id}/")
    page.get_by_role("button", name="Soumettre").click()
    expect(page.locator("#edit-link")).to_have_count(0)
    page.goto(f"{live_server.url}/campaigns/{draft.public_id}/edit/")
    expect(page.get_by_text("ne peut plus être modifiée")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nocturne de mars")


def test_lyon_starts_from_a_gallery_campaign_and_gives_it_an_audience_and_a_date(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    from enseigne.analytics import rollups
    from tests.test_gallery import _finished

    world = build_world()
    with db_scope(ALL):
        lille = _finished(
            world,
            world.unit_b,
            world.manager_b,
            "Atelier bougies · Lille",
            {"headline": "Atelier bougies parfumées"},
            sent=400,
            clickers=60,
        )
        rollups.refresh()
        segment_save(actor=None, owner=world.unit_a, name="Clients Lyon", rules=EVERYONE)
    page = browser_page
    _login(page, live_server, world.manager_a)
    page.goto(f"{live_server.url}/gallery/")
    page.locator(f"[data-campaign='{lille.public_id}']").get_by_role(
        "button", name="Partir de cette campagne"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Modifier le brouillon « Atelier bougies »"
    )
    page.locator("[name=segment]").select_option(label="Clients Lyon")
    page.locator("[name=send_at]").fill("2099-06-06T10:00")
    page.locator("#campaign-form button").click()
    expect(page.locator("#segment")).to_have_text("Clients Lyon")
    with db_scope(ALL):
        draft = Campaign.objects.get(owner=world.unit_a, name="Atelier bougies")
        assert draft.status == "draft" and timezone.localtime(draft.send_at).hour == 10


def test_the_campaign_page_reaches_its_final_state_by_itself(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    from enseigne.delivery.pipeline import run_campaign

    world = build_world()
    with db_scope(ALL):
        contacts(world.unit_a, 6)
        campaign = local_campaign(world)
        launched(world, campaign, timezone.now() - dt.timedelta(seconds=5))
    page = browser_page
    _login(page, live_server, world.manager_a)
    page.goto(f"{live_server.url}/campaigns/{campaign.public_id}/")
    expect(page.locator("#status")).to_have_text("Envoi")
    expect(page.locator("#progress-summary")).to_contain_text("0 % envoyés")
    expect(page.get_by_role("button", name="Mettre en pause")).to_be_visible()

    def send():  # the worker, in a thread of its own with its own connection
        try:
            with db_scope(ALL):
                run_campaign(campaign.pk)
        finally:
            connections.close_all()

    worker = threading.Thread(target=send)
    worker.start()
    worker.join(timeout=60)
    # No reload by the test: the page polls, sees the end and shows the final state.
    expect(page.locator("#status")).to_have_text("Terminée", timeout=15_000)
    expect(page.locator("#counts")).to_contain_text("Bilan final")
    expect(page.locator("#counts")).to_contain_text("6 envoyés")
    expect(page.locator("#progress-summary")).to_contain_text("100 % envoyés")
    expect(page.get_by_role("button", name="Mettre en pause")).to_have_count(0)
    expect(page.locator("#report-link")).to_be_visible()


def test_the_calendar_shows_and_moves_the_apps_times_whatever_the_browsers_zone(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    """A marketer whose laptop is set to New York sees a Paris 10:00 campaign at 10 h, and
    dragging it one day later keeps 10:00 Paris (the calendar used the browser's zone)."""
    world = build_world()
    paris = timezone.get_current_timezone()
    tomorrow = (timezone.localtime() + dt.timedelta(days=1)).date()
    ten = dt.datetime.combine(tomorrow, dt.time(10, 0), tzinfo=paris)
    with db_scope(ALL):
        draft = local_campaign(world, send_at=ten)
    context = browser_page.context.browser.new_context(
        locale="fr-FR", timezone_id="America/New_York", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    _login(page, live_server, world.manager_a)
    page.goto(f"{live_server.url}/campaigns/calendar/")
    event = page.locator(".fc-event", has_text="Local lyon")
    expect(event).to_contain_text("10")
    assert "4" not in event.locator(".fc-event-time").inner_text()  # not New York's 04:00
    target = page.locator(
        f'td[data-date="{tomorrow + dt.timedelta(days=1)}"] .fc-daygrid-day-frame'
    )
    event.drag_to(target)
    expect(page.locator("#pressure-impact")).to_be_visible()
    with db_scope(ALL):
        draft.refresh_from_db()
    assert timezone.localtime(draft.send_at, paris) == ten + dt.timedelta(days=1)
    context.close()


def test_send_now_shows_the_preparation_then_the_progress_then_the_end(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    """*Envoyer maintenant* answers at once: the page says the audience is being prepared,
    then shows the sending progress once the worker froze it, then the final state, with no
    reload by the test."""
    from unittest import mock

    from enseigne.campaigns import preparation, services
    from enseigne.campaigns.figures import figures_compute
    from enseigne.delivery.pipeline import run_campaign

    world = build_world()
    with db_scope(ALL):
        contacts(world.unit_a, 5)
        campaign = local_campaign(world)
        services.campaign_submit(actor=world.hq_admin, campaign=campaign)
        figures_compute(campaign.pk)
    page = browser_page
    _login(page, live_server, world.manager_a)
    page.goto(f"{live_server.url}/campaigns/{campaign.public_id}/")

    def in_thread(work):  # the worker, in a thread of its own with its own connection
        def run():
            try:
                with db_scope(ALL):
                    work()
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=60)

    # The queue would run the worker's part inside the request here (tests run it at once):
    # held back, so that the page is seen between the launch and the freeze.
    with mock.patch("enseigne.delivery.services.prepare") as queued:
        page.get_by_role("button", name="Envoyer maintenant").click()
        page.locator("#confirm-send").click()
        expect(page.locator("#preparing")).to_have_text("Préparation de l’audience…")
        expect(page.locator("#status")).to_have_text("Préparation")
        expect(page.get_by_role("button", name="Mettre en pause")).to_be_visible()
    assert [c.args for c in queued.call_args_list] == [(campaign.pk,)]

    in_thread(lambda: preparation.campaign_prepare(campaign.pk))
    expect(page.locator("#progress-summary")).to_contain_text("0 % envoyés", timeout=15_000)
    expect(page.locator("#status")).to_have_text("Envoi")
    expect(page.locator("#preparing")).to_have_count(0)

    in_thread(lambda: run_campaign(campaign.pk))
    expect(page.locator("#status")).to_have_text("Terminée", timeout=15_000)
    expect(page.locator("#counts")).to_contain_text("5 envoyés")
    expect(page.get_by_role("button", name="Mettre en pause")).to_have_count(0)
