"""Send now and Schedule ask to confirm a summary first; the page then shows the real dates.

Issue 17, item 7: one click sent 12,036 e-mails days before the stores' relay deadline, with 5
stores of 8 undecided, and nothing said that they would send head office's version; the page
then showed the scheduled date as the send date.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import time_machine
from django.utils import formats, timezone, translation

from enseigne.brand.services import local_version_save
from enseigne.campaigns import figures, preparation, services
from enseigne.campaigns.confirmation import send_summary
from enseigne.campaigns.figures import figures_compute
from enseigne.campaigns.models import Campaign, Recipient, Relay, SendingPolicy
from enseigne.campaigns.selectors import policy_for
from enseigne.delivery.pipeline import run_campaign
from tests.campaign_helpers import contacts, email_template, local_campaign
from tests.factories import PASSWORD
from tests.test_browser import ARTIFACTS, browser_page  # noqa: F401 (the Chromium fixture)

pytestmark = pytest.mark.django_db


def _shown(moment: dt.datetime, language: str = "en") -> str:
    """A date as the pages print it (``date:"DATETIME_FORMAT"`` in the current time zone)."""
    with translation.override(language):
        return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def _state(campaign: Campaign):
    campaign.refresh_from_db()
    return (
        campaign.status,
        campaign.send_at,
        campaign.launched_at,
        Recipient.objects.filter(campaign=campaign).count(),
    )


def _national(world, *, deadline_in=dt.timedelta(hours=1), schedule=True):
    """Lyon relays with its own version, Lille opts out, Grenoble has not answered.

    Lyon: 3 contacts; Grenoble: 2, and 1 without e-mail consent; Lille: 2. Each e-mail costs
    2 € here, so that the amounts show."""
    SendingPolicy.objects.filter(pk=policy_for(world.root).pk).update(
        email_thousand_cost=Decimal("2000")
    )
    contacts(world.unit_a, 3)
    contacts(world.unit_a2, 2)
    contacts(world.unit_a2, 1, email=False, start=10)
    contacts(world.unit_b, 2)
    template = email_template(world)
    national = services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name="Printemps",
        template=template,
        relay_deadline=timezone.now() + deadline_in,
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    if not schedule:
        figures_compute(national.pk)  # the worker has counted it (pages count nothing)
        return national
    services.campaign_schedule(
        actor=world.hq_admin,
        campaign=national,
        send_at=timezone.now() + deadline_in + dt.timedelta(hours=1),
    )
    lyon = local_version_save(
        actor=world.manager_a, unit=world.unit_a, template=template, values={"headline": "Lyon"}
    )
    lyon.name = "Spécial Lyon"
    lyon.save(update_fields=["name"])
    services.relay_decide(
        actor=world.manager_a, campaign=national, unit=world.unit_a, relay=True, local_version=lyon
    )
    services.relay_decide(actor=world.manager_b, campaign=national, unit=world.unit_b, relay=False)
    figures_compute(national.pk)  # the worker has counted it (pages count nothing)
    return national


def _row(html: str, selector: str, unit_code: str) -> str:
    """The text of the element with ``data-unit=unit_code`` inside the element ``id=selector``."""
    block = re.search(rf'id="{selector}".*?</(?:table|ul)>', html, re.S).group(0)
    found = re.search(rf'<(tr|li) data-unit="{unit_code}">(.*?)</\1>', block, re.S)
    assert found, f"no {unit_code} in #{selector}"
    return re.sub(r"<[^>]+>", "|", found.group(2)).strip("|")


def test_send_now_without_confirmation_shows_the_summary_and_sends_nothing(world, client):
    national = _national(world)
    before = _state(national)
    client.force_login(world.hq_admin)
    response = client.post(f"/campaigns/{national.public_id}/launch/")
    assert response.status_code == 200
    assert _state(national) == before
    assert not Recipient.objects.filter(campaign=national).exists()
    html = response.content.decode()
    assert "Send « Printemps » now?" in html
    # Per unit: who sends which version to how many (Lille opted out: not among them).
    assert _row(html, "per-unit", "lyon") == "Lyon||Spécial Lyon||3"
    assert _row(html, "per-unit", "grenoble") == "Grenoble||Head office's version||2"
    assert 'data-unit="lille"' not in re.search(r'id="per-unit".*?</table>', html, re.S).group(0)
    assert "<strong>5</strong> will receive it" in html
    # The exclusion, and why.
    assert re.search(
        r'data-reason="no_consent"><td>No consent for the channel</td><td[^>]*>1<', html
    )
    # The cost and head office's share (5 e-mails at 2 €, half paid by HQ).
    assert "<strong>10.00 €</strong> (of which head office pays 5.00 €)" in html
    # The units' answers, the undecided said plainly.
    assert "1 unit has not decided yet: it will send head office's version." in html
    assert "(2 recipients)" in html
    assert _row(html, "undecided", "grenoble") == "Grenoble — 2"
    assert _row(html, "relayed", "lyon") == "Lyon — its version « Spécial Lyon » — 3"
    assert _row(html, "opted-out", "lille") == "Lille"
    # Sent before the deadline: the units lose their say, and the page says until when.
    warning = re.search(r'id="deadline-warning".*?</div>', html, re.S).group(0)
    assert f"Units still have until {_shown(national.relay_deadline)} to decide" in warning
    assert "If you send now, they lose that chance." in warning
    assert "Confirm and send now" in html
    assert 'name="confirm" value="yes"' in html


def test_the_confirmed_send_now_launches(world, client):
    national = _national(world)
    client.force_login(world.hq_admin)
    response = client.post(f"/campaigns/{national.public_id}/launch/", {"confirm": "yes"})
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{national.public_id}/"
    national.refresh_from_db()
    # The post answers at once: the worker freezes the audience.
    assert national.status == Campaign.Status.PREPARING
    assert national.launched_at is not None and national.frozen_at is None
    rows = Recipient.objects.filter(campaign=national)
    assert not rows.exists()
    assert preparation.campaign_prepare(national.pk) == Campaign.Status.SENDING
    national.refresh_from_db()
    assert national.status == Campaign.Status.SENDING and national.recipient_total == 6
    assert sorted(rows.values_list("unit__code", "status")) == [
        ("grenoble", "pending"),
        ("grenoble", "pending"),
        ("grenoble", "skipped"),
        ("lyon", "pending"),
        ("lyon", "pending"),
        ("lyon", "pending"),
    ]


def test_a_confirm_field_with_another_value_is_not_a_confirmation(world, client):
    national = _national(world)
    before = _state(national)
    client.force_login(world.hq_admin)
    response = client.post(f"/campaigns/{national.public_id}/launch/", {"confirm": "1"})
    assert response.status_code == 200
    assert _state(national) == before


def test_send_now_of_a_national_campaign_nobody_was_told_of_says_all_units_send_hqs_version(
    world, client
):
    """Approved, never scheduled: no unit was asked, so each sends head office's version."""
    national = _national(world, schedule=False)
    assert not Relay.objects.filter(campaign=national).exists()
    client.force_login(world.hq_admin)
    html = client.post(f"/campaigns/{national.public_id}/launch/").content.decode()
    assert "3 units have not decided yet: they will send head office's version." in html
    assert "(7 recipients)" in html
    assert [_row(html, "undecided", code) for code in ("lyon", "grenoble", "lille")] == [
        "Lyon — 3",
        "Grenoble — 2",
        "Lille — 2",
    ]
    assert not Recipient.objects.filter(campaign=national).exists()


def test_the_deadline_warning_shows_only_before_the_deadline(world, client):
    national = _national(world)
    client.force_login(world.hq_admin)
    url = f"/campaigns/{national.public_id}/launch/"
    assert 'id="deadline-warning"' in client.post(url).content.decode()
    with time_machine.travel(national.relay_deadline + dt.timedelta(minutes=1)):
        html = client.post(url).content.decode()
    assert 'id="deadline-warning"' not in html
    assert "1 unit has not decided yet" in html  # still said after the deadline
    local = local_campaign(world)
    services.campaign_submit(actor=world.hq_admin, campaign=local)
    html = client.post(f"/campaigns/{local.public_id}/launch/").content.decode()
    assert "Confirm and send now" in html
    assert 'id="deadline-warning"' not in html


def test_the_summary_in_french(world, client):
    national = _national(world)
    client.force_login(world.hq_admin)
    html = client.post(
        f"/campaigns/{national.public_id}/launch/", HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "Envoyer « Printemps » maintenant ?" in html
    assert _row(html, "per-unit", "grenoble") == "Grenoble||Version du siège||2"
    assert "<strong>10,00 €</strong> (dont pris en charge par le siège 5,00 €)" in html
    assert "1 point de vente n'a pas encore répondu : il enverra la version du siège." in html
    assert "(2 destinataires)" in html
    assert _row(html, "relayed", "lyon") == "Lyon — sa version « Spécial Lyon » — 3"
    deadline = _shown(national.relay_deadline, "fr")
    assert f"Les points de vente ont jusqu'au {deadline} pour décider" in html
    assert "Confirmer et envoyer maintenant" in html


def _approved_local(world, unit=None):
    campaign = local_campaign(world, unit=unit)
    campaign = services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    figures_compute(campaign.pk)
    return campaign


def _later(days=3) -> tuple[str, dt.datetime]:
    moment = timezone.localtime(timezone.now() + dt.timedelta(days=days)).replace(
        second=0, microsecond=0
    )
    return moment.strftime("%Y-%m-%dT%H:%M"), moment


def test_schedule_asks_to_confirm_then_schedules(world, client):
    contacts(world.unit_a, 4)
    campaign = _approved_local(world)
    assert campaign.status == Campaign.Status.APPROVED
    before = _state(campaign)
    client.force_login(world.manager_a)
    posted, moment = _later()
    url = f"/campaigns/{campaign.public_id}/schedule/"
    response = client.post(url, {"send_at": posted})
    assert response.status_code == 200
    assert _state(campaign) == before
    html = response.content.decode()
    assert "Schedule « Local lyon »?" in html
    assert f"<strong>{_shown(moment)}</strong>" in html
    assert "(Europe/Paris)" in html
    assert "<strong>4</strong> will receive it" in html
    assert f'<input type="hidden" name="send_at" value="{posted}"' in html
    assert "Confirm the schedule" in html
    assert 'id="per-unit"' not in html  # one unit: no per-unit table to read
    response = client.post(url, {"send_at": posted, "confirm": "yes"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.send_at) == (Campaign.Status.SCHEDULED, moment)
    assert not Recipient.objects.filter(campaign=campaign).exists()
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert re.search(rf"Scheduled for</dt><dd[^>]*>{re.escape(_shown(moment))}</dd>", page), (
        "a scheduled campaign shows the date it is scheduled for"
    )


def test_rescheduling_a_national_campaign_before_the_deadline_warns(world, client):
    national = _national(world)
    client.force_login(world.hq_admin)
    early = timezone.localtime(national.relay_deadline - dt.timedelta(minutes=30))
    html = client.post(
        f"/campaigns/{national.public_id}/schedule/", {"send_at": early.strftime("%Y-%m-%dT%H:%M")}
    ).content.decode()
    assert "This date comes before the units' deadline" in html
    late = timezone.localtime(national.relay_deadline + dt.timedelta(hours=2))
    html = client.post(
        f"/campaigns/{national.public_id}/schedule/", {"send_at": late.strftime("%Y-%m-%dT%H:%M")}
    ).content.decode()
    assert 'id="deadline-warning"' not in html
    assert "1 unit has not decided yet" in html


def test_a_store_manager_confirms_the_send_now_of_their_campaign(world, client):
    contacts(world.unit_a, 2)
    campaign = _approved_local(world)
    client.force_login(world.manager_a)
    url = f"/campaigns/{campaign.public_id}/launch/"
    html = client.post(url).content.decode()
    assert "<strong>2</strong> will receive it" in html
    assert "It leaves now:" in html
    assert not Recipient.objects.filter(campaign=campaign).exists()
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    preparation.campaign_prepare(campaign.pk)  # the worker's part
    assert sorted(Recipient.objects.filter(campaign=campaign).values_list("status", flat=True)) == [
        "pending",
        "pending",
    ]


@pytest.mark.parametrize("persona", ["manager_b", "staff_a"])
@pytest.mark.parametrize("action", ["launch", "schedule"])
@pytest.mark.parametrize("confirm", [None, "yes"])
def test_others_and_read_only_roles_can_neither_see_nor_confirm(
    world, client, persona, action, confirm
):
    """Another unit's campaign answers 404 like a missing one; a role that may only read, 403."""
    contacts(world.unit_a, 2)
    campaign = _approved_local(world)
    before = _state(campaign)
    client.force_login(world.persona(persona))
    data = {"send_at": _later()[0]} if action == "schedule" else {}
    if confirm:
        data["confirm"] = confirm
    response = client.post(f"/campaigns/{campaign.public_id}/{action}/", data)
    assert response.status_code == (404 if persona == "manager_b" else 403)
    assert _state(campaign) == before
    assert b"will receive it" not in response.content


def test_a_campaign_that_cannot_be_sent_shows_no_summary(world, client):
    contacts(world.unit_a, 2)
    campaign = local_campaign(world)  # a draft
    client.force_login(world.manager_a)
    response = client.post(f"/campaigns/{campaign.public_id}/launch/", follow=True)
    assert response.redirect_chain == [(f"/campaigns/{campaign.public_id}/", 302)]
    assert "This campaign is draft; it cannot be sent." in (response.content.decode())
    assert _state(campaign)[0] == Campaign.Status.DRAFT


def test_after_launch_the_page_shows_when_it_left_then_when_it_ended(world, client):
    contacts(world.unit_a, 3)
    contacts(world.unit_a, 1, email=False, start=10)
    campaign = _approved_local(world)
    posted, moment = _later(days=5)
    client.force_login(world.manager_a)
    client.post(f"/campaigns/{campaign.public_id}/schedule/", {"send_at": posted, "confirm": "yes"})
    client.post(f"/campaigns/{campaign.public_id}/launch/", {"confirm": "yes"})
    preparation.campaign_prepare(campaign.pk)  # the worker's part
    campaign.refresh_from_db()
    assert campaign.send_at == moment and campaign.launched_at is not None
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert f"Sent from {_shown(campaign.launched_at)}" in page
    assert _shown(moment) not in page
    assert 'id="final-state"' not in page
    run_campaign(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert (
        f"Sent from {_shown(campaign.launched_at)} · finished at "
        f"{_shown(campaign.finished_at)}" in page
    )
    assert (
        "<strong>Final count:</strong> 3 sent · 0 pending · 0 failed · 1 not sent"
        " · 0 unknown (connection lost)" in page
    )
    assert re.search(r'id="status">Finished<', page)
    assert f"Sending ended on {_shown(campaign.finished_at)}" in page
    assert _shown(moment) not in page
    page = client.get(
        f"/campaigns/{campaign.public_id}/", HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert (
        f"Envoi commencé le {_shown(campaign.launched_at, 'fr')} · terminé le "
        f"{_shown(campaign.finished_at, 'fr')}" in page
    )
    assert "<strong>Bilan final :</strong> 3 envoyés" in page
    assert f"Envoi terminé le {_shown(campaign.finished_at, 'fr')}" in page


def test_the_progress_poll_updates_the_header_when_sending_ends(world, client):
    contacts(world.unit_a, 2)
    campaign = _approved_local(world)
    client.force_login(world.manager_a)
    client.post(f"/campaigns/{campaign.public_id}/launch/", {"confirm": "yes"})
    preparation.campaign_prepare(campaign.pk)  # the worker's part
    url = f"/campaigns/{campaign.public_id}/progress/"
    sending = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-swap-oob" not in sending
    run_campaign(campaign.pk)
    ended = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r'id="state" hx-swap-oob="true">\s*<span[^>]*id="status">Finished<', ended)
    campaign.refresh_from_db()
    assert f"Sending ended on {_shown(campaign.finished_at)}" in ended


def test_a_cancelled_campaign_says_so_in_its_header(world, client):
    campaign = _approved_local(world)
    client.force_login(world.manager_a)
    client.post(f"/campaigns/{campaign.public_id}/cancel/")
    campaign.refresh_from_db()
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert re.search(r'id="status">Cancelled<', page)
    assert f"Cancelled on {_shown(campaign.finished_at)}" in page


def test_the_summary_counts_what_the_preview_counts(world):
    national = _national(world)
    summary = send_summary(national, preview=figures.kept(national).preview)
    assert summary.now and summary.deadline_ahead == national.relay_deadline
    assert summary.preview.recipients == 5
    assert [(line.unit.code, line.recipients) for line in summary.preview.per_unit] == [
        ("lyon", 3),
        ("grenoble", 2),
    ]
    assert [(r.unit.code, r.local_version.name, r.recipients) for r in summary.relayed] == [
        ("lyon", "Spécial Lyon", 3)
    ]
    assert [u.code for u in summary.opted_out] == ["lille"]
    assert [(line.unit.code, line.recipients) for line in summary.undecided] == [("grenoble", 2)]
    later = send_summary(national, national.relay_deadline + dt.timedelta(hours=1), preview=None)
    assert not later.now and later.deadline_ahead is None


@pytest.mark.browser
def test_in_chromium_send_now_shows_the_summary_then_sends_once_confirmed(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    from playwright.sync_api import expect

    from enseigne.lib.rowsecurity import ALL, db_scope
    from tests.factories import build_world

    world = build_world()
    with db_scope(ALL):
        contacts(world.unit_a, 2)
        contacts(world.unit_a, 1, email=False, start=10)
        campaign = _approved_local(world)
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill(world.manager_a.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{live_server.url}/campaigns/{campaign.public_id}/")
    page.get_by_role("button", name="Envoyer maintenant").click()

    # The summary, and nothing sent yet.
    expect(page.get_by_role("heading", level=1)).to_have_text("Envoyer « Local lyon » maintenant ?")
    expect(page.locator("#audience")).to_contain_text("2 le recevront")
    expect(page.locator("#audience [data-reason='no_consent']")).to_contain_text("1")
    expect(page.locator("#leaves")).to_contain_text("Il part maintenant")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "send-confirmation.png"), full_page=True)
    with db_scope(ALL):
        assert not Recipient.objects.filter(campaign=campaign).exists()
        assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.APPROVED

    page.get_by_role("button", name="Confirmer et envoyer maintenant").click()
    expect(page.locator("#send-dates")).to_contain_text("Envoi commencé le")
    expect(page.locator("#counts")).to_contain_text("2 envoyés", timeout=20_000)
    # The in-process queue may finish before the page loads: then the header says so.
    expect(page.locator("#status")).to_have_text(re.compile("^(Envoi|Terminée)$"))
    with db_scope(ALL):
        statuses = sorted(
            Recipient.objects.filter(campaign=campaign).values_list("status", flat=True)
        )
    assert statuses == ["sent", "sent", "skipped"]
    page.screenshot(path=str(ARTIFACTS / "send-confirmed.png"), full_page=True)
