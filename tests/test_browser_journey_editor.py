"""The journey flow editor in Chromium (issue 22): HQ builds a welcome journey (consent →
e-mail → wait 3 days → condition → SMS or exit) with plain forms and the segment builder,
never typing JSON, publishes it and sees it drawn; axe finds no serious violation."""

from __future__ import annotations

import pytest
from django.templatetags.static import static
from playwright.sync_api import expect

from enseigne.journeys import services
from enseigne.journeys.models import JourneyVersion
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.campaign_helpers import email_template, sms_template
from tests.factories import build_world
from tests.test_browser import ARTIFACTS, _log_in, browser_page  # noqa: F401 (the fixture)
from tests.test_browser_accessibility import BLOCKING, RUN_AXE

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_hq_builds_and_publishes_a_welcome_journey_without_json(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    world = build_world()
    with db_scope(ALL):
        hello = email_template(world, "Bienvenue")
        reminder = sms_template(world, "Relance")
        template = services.journey_template_create(
            actor=world.hq_admin, owner=world.root, name="Bienvenue"
        )
    page = browser_page
    _log_in(page, live_server.url, world.hq_admin.email)
    page.goto(f"{live_server.url}/hq/journeys/{template.public_id}/")

    def add(kind: str) -> None:
        page.get_by_label("Nouvelle étape").select_option(kind)
        page.get_by_role("button", name="Ajouter l’étape").click()

    def step(name: str):
        return page.locator(f'fieldset[data-step="{name}"]')

    expect(page.get_by_label("Commence quand")).to_have_value("consent")
    page.get_by_label("Consentement à").select_option("email")
    add("send_email")
    step("email-1").get_by_label("Modèle d’e-mail").select_option(label="Bienvenue")
    add("wait")
    # What was chosen before the page came back is still there.
    expect(step("email-1").get_by_label("Modèle d’e-mail")).to_have_value(str(hello.public_id))
    expect(step("email-1").get_by_label("Ensuite")).to_have_value("wait-1")
    step("wait-1").get_by_label("Jours").fill("3")
    # Enter in a field redraws the page (its default button), never a step's command.
    step("wait-1").get_by_label("Jours").press("Enter")
    expect(step("wait-1").get_by_label("Jours")).to_have_value("3")
    expect(page.locator("fieldset[data-step]")).to_have_count(2)
    # A step's kind changed: htmx redraws that step with the fields of its new kind.
    add("wait")
    step("wait-2").get_by_label("Type").select_option("condition")
    expect(step("wait-2").get_by_role("button", name="+ condition")).to_be_visible()
    expect(step("wait-2").get_by_label("Jours")).to_have_count(0)
    step("wait-2").get_by_label("Nom de l’étape").fill("check-1")  # renamed: followed
    add("send_sms")
    step("sms-1").get_by_label("Modèle de SMS").select_option(label="Relance")
    # Only the fields of the step's kind show: an SMS step asks for no e-mail template.
    expect(step("sms-1").get_by_label("Modèle d’e-mail")).to_be_hidden()
    add("exit")
    expect(step("sms-1").get_by_label("Ensuite")).to_have_value("end-1")
    check = step("check-1")
    check.get_by_role("button", name="+ condition").click()
    check.get_by_label("Champ").select_option("is_customer")
    check.get_by_label("Si oui, aller à").select_option("end-1")
    check.get_by_label("Si non, aller à").select_option("sms-1")
    # The keyboard reaches the publish button and presses it.
    publish = page.get_by_role("button", name="Publier ce parcours")
    publish.focus()
    page.keyboard.press("Enter")
    expect(page.locator(".alert-success")).to_be_visible()
    with db_scope(ALL):
        flow = JourneyVersion.objects.get(template=template).flow
    assert flow == {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "email-1",
        "steps": {
            "email-1": {"kind": "send_email", "template": str(hello.public_id), "next": "wait-1"},
            "wait-1": {"kind": "wait", "days": 3, "next": "check-1"},
            "check-1": {
                "kind": "condition",
                "rules": {
                    "match": "all",
                    "rules": [{"field": "is_customer", "op": "is_true", "value": ""}],
                },
                "yes": "end-1",
                "no": "sms-1",
            },
            "sms-1": {"kind": "send_sms", "template": str(reminder.public_id), "next": "end-1"},
            "end-1": {"kind": "exit"},
        },
    }
    chart = page.locator("#flow-chart")
    expect(chart.locator(".flow-box")).to_have_count(6)  # the trigger and 5 steps
    expect(chart).to_contain_text("Attendre 3 jours")
    expect(chart.locator(".flow-branch")).to_have_count(2)
    expect(chart.locator(".flow-goto")).to_contain_text("end-1")
    # The branches are side by side: a laptop reads the split at a glance.
    yes, no = chart.locator(".flow-branch").all()
    assert yes.bounding_box()["y"] == no.bounding_box()["y"]  # type: ignore[index]
    ARTIFACTS.mkdir(exist_ok=True)
    chart.screenshot(path=ARTIFACTS / "journey-chart.png")
    page.locator("#flow-editor-box > summary").click()
    page.screenshot(path=ARTIFACTS / "journey-editor.png", full_page=True)
    page.add_script_tag(url=live_server.url + static("vendor/axe-core/axe.min.js"))
    blocking = [v for v in page.evaluate(RUN_AXE) if v["impact"] in BLOCKING]
    assert not blocking, blocking
