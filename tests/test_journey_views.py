"""Journeys' pages (issue 22): HQ's designer draws the flow and publishes checked versions;
a store sees and controls only its own runs."""

from __future__ import annotations

import json
from html import escape

import pytest
from django.utils import timezone

from enseigne.journeys import services
from enseigne.journeys.models import EnrollmentStep, JourneyRun, JourneyTemplate, JourneyVersion
from tests.campaign_helpers import contacts, email_template
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
FR = {"HTTP_ACCEPT_LANGUAGE": "fr"}
CUSTOMERS = {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)


def welcome(hello) -> dict:
    return {
        "trigger": {"kind": "consent", "channel": "email"},
        "start": "hello",
        "steps": {
            "hello": {"kind": "send_email", "template": str(hello.public_id), "next": "pause"},
            "pause": {"kind": "wait", "days": 3, "next": "check"},
            "check": {"kind": "condition", "rules": CUSTOMERS, "yes": "out", "no": "ab"},
            "ab": {
                "kind": "random",
                "branches": [{"share": 50, "next": "out"}, {"share": 50, "next": "again"}],
            },
            "again": {"kind": "send_email", "template": str(hello.public_id)},
            "out": {"kind": "exit"},
        },
    }


@pytest.fixture
def journey(world):
    hello = email_template(world, "Bienvenue")
    template = services.journey_template_create(
        actor=world.hq_admin, owner=world.root, name="Welcome"
    )
    services.journey_publish(actor=world.hq_admin, template=template, flow=welcome(hello))
    runs = {
        unit.code: services.journey_activate(
            actor=world.hq_admin, template=template, unit=unit, starts_on=timezone.localdate()
        )
        for unit in (world.unit_a, world.unit_b)
    }
    return template, hello, runs


def test_hq_sees_the_flow_drawn_in_words_with_its_figures(client, world, journey):
    template, hello, runs = journey
    from enseigne.journeys import engine

    people = contacts(world.unit_a, 3)
    engine.enroll(runs["lyon"], [p.pk for p in people])
    engine.advance_due()
    login(client, world.hq_admin)
    page = client.get(f"/hq/journeys/{template.public_id}/").content.decode()
    for words in (
        "Send e-mail: Bienvenue",
        "Wait 3 days",
        "If: Existing customer (has bought) yes",
        "Random split",
        "→ 50 %",
        "continues at “out”",
        "entered 3 · waiting 3",
    ):
        assert words in page, words
    assert EnrollmentStep.objects.filter(step="hello", outcome="sent").count() == 3
    # The expert's textarea holds the live flow, and a page just opened shows no error.
    assert "&quot;start&quot;: &quot;hello&quot;" in page
    assert "This field is required." not in page
    listing = client.get("/hq/journeys/").content.decode()
    assert "Welcome" in listing and "version 1" in listing


def test_publishing_a_bad_flow_shows_the_step_and_publishes_nothing(client, world, journey):
    template, hello, _runs = journey
    login(client, world.hq_admin)
    bad = welcome(hello)
    bad["steps"]["ab"]["branches"][1]["share"] = 40
    response = client.post(
        f"/hq/journeys/{template.public_id}/", {"action": "publish", "flow": json.dumps(bad)}
    )
    assert response.status_code == 200
    problem = "Step “ab”: the branches' shares must add up to 100 %."
    assert escape(problem) in response.content.decode()
    assert JourneyVersion.objects.filter(template=template).count() == 1
    good = client.post(
        f"/hq/journeys/{template.public_id}/",
        {"action": "publish", "flow": json.dumps(welcome(hello)), "move_people": "on"},
    )
    assert good.status_code == 302
    assert set(JourneyRun.objects.values_list("version__number", flat=True)) == {2}


def test_a_store_manager_cannot_publish_nor_see_hq_pages(client, world, journey):
    template, hello, _runs = journey
    login(client, world.manager_a)
    for url in ("/hq/journeys/", f"/hq/journeys/{template.public_id}/"):
        assert client.get(url).status_code == 404
    response = client.post(
        f"/hq/journeys/{template.public_id}/",
        {"action": "publish", "flow": json.dumps(welcome(hello))},
    )
    assert response.status_code == 404
    assert JourneyVersion.objects.filter(template=template).count() == 1


def test_another_stores_run_is_not_found(client, world, journey):
    _template, _hello, runs = journey
    login(client, world.manager_a)
    assert client.get(f"/journeys/runs/{runs['lille'].public_id}/").status_code == 404
    response = client.post(f"/journeys/runs/{runs['lille'].public_id}/", {"action": "stop"})
    assert response.status_code == 404
    runs["lille"].refresh_from_db()
    assert runs["lille"].status == "active"
    listing = client.get("/journeys/", **FR).content.decode()
    # The start date offered is today, written as a date input reads it (in French too).
    assert f'value="{timezone.localdate().isoformat()}"' in listing
    assert f"/journeys/runs/{runs['lyon'].public_id}/" in listing
    assert f"/journeys/runs/{runs['lille'].public_id}/" not in listing


def test_a_store_pauses_its_run_but_not_a_mandatory_one(client, world, journey):
    template, _hello, runs = journey
    login(client, world.manager_a)
    url = f"/journeys/runs/{runs['lyon'].public_id}/"
    assert client.post(url, {"action": "pause"}).status_code == 302
    runs["lyon"].refresh_from_db()
    assert runs["lyon"].status == "paused"
    client.post(url, {"action": "resume"})
    services.journey_make_mandatory(actor=world.hq_admin, template=template, node=world.region_a)
    assert client.post(url, {"action": "stop"}).status_code == 403
    runs["lyon"].refresh_from_db()
    assert (runs["lyon"].status, runs["lyon"].mandatory) == ("active", True)


def test_a_store_activates_a_journey_from_its_page(client, world, journey):
    template, _hello, _runs = journey
    login(client, world.manager_a)
    JourneyRun.objects.filter(unit=world.unit_a).delete()
    response = client.post(
        "/journeys/",
        {
            "template": str(template.public_id),
            "unit": str(world.unit_a.public_id),
            "starts_on": timezone.localdate().isoformat(),
        },
    )
    assert response.status_code == 302
    run = JourneyRun.objects.get(unit=world.unit_a)
    assert (run.template, run.status, run.mandatory) == (template, "active", False)


def test_the_pages_read_in_french(client, world, journey):
    template, _hello, runs = journey
    login(client, world.hq_admin)
    detail = client.get(f"/hq/journeys/{template.public_id}/", **FR).content.decode()
    assert "Envoyer un e-mail : Bienvenue" in detail
    assert "Attendre 3 jours" in detail
    assert "Publier une nouvelle version" in detail
    login(client, world.manager_a)
    page = client.get(f"/journeys/runs/{runs['lyon'].public_id}/", **FR).content.decode()
    assert "Mettre en pause" in page


def test_a_store_allowed_to_designs_its_own_journey(client, world):
    from enseigne.network.models import CapabilityRule

    login(client, world.manager_a)
    own = {"action": "design", "own-name": "Mien", "own-reentry": "never"}
    own |= {"own-holdout_percent": "0", "own-unit": str(world.unit_a.public_id)}
    assert client.post("/journeys/", own).status_code == 403
    CapabilityRule.objects.create(
        node=world.unit_a, capability="create_free_campaigns", effect=CapabilityRule.Effect.ALLOW
    )
    response = client.post("/journeys/", own)
    assert response.status_code == 302
    template = JourneyTemplate.objects.get(name="Mien")
    assert template.owner == world.unit_a
    hello = email_template(world, "Bienvenue")
    detail = f"/hq/journeys/{template.public_id}/"
    client.post(detail, {"action": "publish", "flow": json.dumps(welcome(hello))})
    assert JourneyVersion.objects.filter(template=template).count() == 1
    assert "Mien" in client.get("/journeys/").content.decode()
    # Lille's manager cannot open it.
    login(client, world.manager_b)
    assert client.get(detail).status_code == 404


def test_per_step_figures_take_five_queries_and_count_each_outcome(
    world, journey, django_assert_num_queries
):
    from enseigne.journeys import engine, selectors

    template, _hello, runs = journey
    people = contacts(world.unit_a, 4)
    engine.enroll(runs["lyon"], [p.pk for p in people])
    engine.advance_due()
    # The history (two), who waits, the ledger, the clicks (tests/test_journey_report.py).
    with django_assert_num_queries(5):
        figures = selectors.step_figures(JourneyRun.objects.filter(template=template))
    hello, pause = figures["hello"], figures["pause"]
    # Queued in the ledger, not handed off yet: not "sent".
    assert (hello.entered, hello.queued, hello.sent, hello.to_send) == (4, 4, 0, 4)
    assert (hello.held_out, hello.waiting) == (0, 0)
    assert (pause.entered, pause.waiting, pause.exited) == (4, 4, 0)
    assert set(figures) == {"hello", "pause"}
