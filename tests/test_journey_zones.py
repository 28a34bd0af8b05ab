"""Journeys (issue 22): a store's own texts in its journey's messages.

The store writes a local version of the step's brand template (the brand editor: the same
zone checks and guardrails) and chooses it for the step on its run's page; approval
follows the campaigns' rule; the step's messages are rendered from the approved snapshot
by the real runner; HQ's later changes re-check it and stop the step with the reason."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from enseigne.brand.models import Guardrails, LocalVersion
from enseigne.brand.services import local_version_save, template_create, template_edit
from enseigne.campaigns.models import Campaign
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from enseigne.journeys import engine, services, texts
from enseigne.journeys.models import JourneyRun, JourneySend, StepTexts
from tests.campaign_helpers import contacts, sms_template
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(hour=9, minute=0, second=0, microsecond=0)
FR = {"HTTP_ACCEPT_LANGUAGE": "fr"}
HTMX = {"HTTP_HX_REQUEST": "true"}


def source(default: str = "", *, max_length: int = 60) -> str:
    return (
        "<mjml><mj-body><mj-section><mj-column><mj-text>"
        f'Bonjour {{{{ contact.first_name }}}}, <ens-zone name="headline" kind="text" '
        f'max="{max_length}" required="true" label="Titre">{default}</ens-zone>'
        ' — {{ unit.name }}. <a href="{{ links.unsubscribe }}">Se désabonner</a>'
        "</mj-text></mj-column></mj-section></mj-body></mjml>"
    )


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def brand_template(world, default: str = ""):
    return template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Bienvenue",
        source=source(default),
        subject="Bienvenue {{ contact.first_name }}",
    )


def journey(world, template):
    """HQ's one-step journey: on consent, the step "hello" sends ``template``'s channel."""
    made = services.journey_template_create(actor=world.hq_admin, owner=world.root, name="Welcome")
    step = {"kind": f"send_{template.channel}", "template": str(template.public_id)}
    services.journey_publish(
        actor=world.hq_admin,
        template=made,
        flow={
            "trigger": {"kind": "consent", "channel": template.channel},
            "start": "hello",
            "steps": {"hello": step},
        },
    )
    return made


def activate(world, made, unit, **extra) -> JourneyRun:
    return services.journey_activate(
        actor=world.hq_admin, template=made, unit=unit, starts_on=timezone.localdate(), **extra
    )


def local(world, template, unit, headline) -> LocalVersion:
    return local_version_save(
        actor=world.hq_admin, unit=unit, template=template, values={"headline": headline}
    )


def shorten_headline(world, template) -> None:
    """HQ publishes the template again with a 20-character headline."""
    template_edit(
        actor=world.hq_admin,
        template=template,
        name=template.name,
        description="",
        source=source("Nouvelle saison", max_length=20),
        subject="Bienvenue",
    )


def sent_to(run: JourneyRun, people) -> dict[str, str]:
    """Enroll ``people``, move them, hand the step's messages off; each address → its HTML."""
    engine.enroll(run, [p.pk for p in people], now=NOW)
    engine.advance_due(now=NOW)
    run.refresh_from_db()
    for send in JourneySend.objects.filter(run=run, step="hello"):  # one per journey version
        run_campaign(send.campaign_id)
    wanted = {p.email for p in people}
    return {m.to: _html(m.data) for m in locmem.outbox if m.to in wanted}


def _html(raw: bytes) -> str:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    part = parsed.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


# --- activation ------------------------------------------------------------------------------


def test_activation_refuses_a_required_zone_left_empty_naming_the_step(world):
    template = brand_template(world)
    made = journey(world, template)
    with pytest.raises(ValidationError) as refused:
        activate(world, made, world.unit_a)
    message = " ".join(refused.value.messages)
    assert "Step “hello”" in message and "Zone “Titre” must be filled in." in message
    # Refused as a whole: no run, no step campaign.
    assert not JourneyRun.objects.exists() and not JourneySend.objects.exists()
    # With the store's texts for the step, it runs.
    run = activate(
        world, made, world.unit_a, texts={"hello": local(world, template, world.unit_a, "Salut")}
    )
    assert StepTexts.objects.get(run=run).status == StepTexts.Status.APPROVED


def test_activation_passes_when_head_office_default_covers_the_zone(world):
    made = journey(world, brand_template(world, "Nouvelle saison"))
    run = activate(world, made, world.unit_a)
    assert run.status == JourneyRun.Status.ACTIVE and not StepTexts.objects.exists()


def test_a_mandatory_run_with_an_empty_required_zone_tells_the_store_what_to_write(world):
    made = journey(world, brand_template(world))
    assert services.journey_make_mandatory(actor=world.hq_admin, template=made, node=world.root)
    run = JourneyRun.objects.get(unit=world.unit_a)
    assert "Step “hello”" in run.problem and "Titre" in run.problem
    # The store manager of a mandatory run writes its texts (its role needs approval).
    template = JourneySend.objects.get(run=run).campaign.template
    chosen = texts.step_texts_choose(
        actor=world.manager_a,
        run=run,
        step_id="hello",
        local_version=local(world, template, world.unit_a, "Bonjour Lyon"),
    )
    assert chosen.status == StepTexts.Status.PENDING
    run.refresh_from_db()
    assert "wait for approval" in run.problem
    texts.step_texts_decide(actor=world.region_manager, run=run, step_id="hello", approve=True)
    run.refresh_from_db()
    assert run.problem == ""


# --- rendering ---------------------------------------------------------------------------------


def test_two_stores_texts_are_rendered_to_their_own_contacts(world):
    template = brand_template(world, "Nouvelle saison")
    made = journey(world, template)
    runs = {}
    for unit, words in ((world.unit_a, "Soldes à Lyon"), (world.unit_b, "Soldes à Paris")):
        runs[unit.pk] = activate(
            world, made, unit, texts={"hello": local(world, template, unit, words)}
        )
    people_a = contacts(world.unit_a, 2)
    people_b = contacts(world.unit_b, 2)
    got_a = sent_to(runs[world.unit_a.pk], people_a)
    got_b = sent_to(runs[world.unit_b.pk], people_b)
    assert set(got_a) == {p.email for p in people_a}
    assert set(got_b) == {p.email for p in people_b}
    assert all("Soldes à Lyon" in html and "Paris" not in html for html in got_a.values())
    assert all("Soldes à Paris" in html and "Lyon" not in html for html in got_b.values())
    # The store's own details are filled in by the renderer, as elsewhere.
    assert all(world.unit_a.name in html for html in got_a.values())


@pytest.mark.parametrize(
    "typed, present, absent",
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", "<script>"),
        (
            "{{ 'ab' | append: 'cd' }} {% if true %}oui{% endif %}",
            "{{ 'ab' | append: 'cd' }} {% if true %}oui{% endif %}",
            "abcd",
        ),
        ('<a href="https://evil.example">x</a>', "&lt;a href=", '<a href="https://evil'),
        ("{{ contact.email }}", "{{ contact.email }}", "@example.com</"),
    ],
)
def test_a_store_text_is_data_escaped_never_evaluated(world, typed, present, absent):
    template = brand_template(world, "Nouvelle saison")
    run = activate(
        world,
        journey(world, template),
        world.unit_a,
        texts={"hello": local(world, template, world.unit_a, typed)},
    )
    (html,) = sent_to(run, contacts(world.unit_a, 1)).values()
    assert present in html.replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"')
    assert absent not in html


def test_nul_bytes_in_a_store_text_are_dropped_before_anything_is_stored(world):
    template = brand_template(world, "Nouvelle saison")
    saved = local(world, template, world.unit_a, "Sol\x00des\x00")
    assert saved.values == {"headline": "Soldes"} and saved.is_usable
    run = activate(world, journey(world, template), world.unit_a, texts={"hello": saved})
    (html,) = sent_to(run, contacts(world.unit_a, 1)).values()
    assert "Soldes" in html and "\x00" not in html


def test_a_too_long_or_empty_text_cannot_be_chosen(world):
    template = brand_template(world, "Nouvelle saison")
    run = activate(world, journey(world, template), world.unit_a)
    for typed, why in (("x" * 61, "61 characters long; the limit is 60"), ("  ", "must be filled")):
        flagged = local(world, template, world.unit_a, typed)
        assert not flagged.is_usable
        with pytest.raises(ValidationError) as refused:
            texts.step_texts_choose(
                actor=world.hq_admin, run=run, step_id="hello", local_version=flagged
            )
        assert why in " ".join(refused.value.messages)
    assert not StepTexts.objects.exists()


def test_texts_of_another_store_or_template_are_refused(world):
    template = brand_template(world, "Nouvelle saison")
    run = activate(world, journey(world, template), world.unit_a)
    theirs = local(world, template, world.unit_b, "Paris")
    with pytest.raises(ValidationError):
        texts.step_texts_choose(
            actor=world.hq_admin, run=run, step_id="hello", local_version=theirs
        )
    with pytest.raises(ValidationError):
        texts.step_texts_choose(actor=world.hq_admin, run=run, step_id="nope", local_version=None)
    with pytest.raises(PermissionDenied):
        texts.step_texts_choose(actor=world.staff_a, run=run, step_id="hello", local_version=None)
    assert not StepTexts.objects.exists()


# --- approval ----------------------------------------------------------------------------------


def test_until_approved_the_step_sends_head_office_texts_then_the_store_texts(world):
    template = brand_template(world, "Nouvelle saison")
    run = activate(world, journey(world, template), world.unit_a)
    mine = local(world, template, world.unit_a, "Soldes à Lyon")
    chosen = texts.step_texts_choose(
        actor=world.manager_a, run=run, step_id="hello", local_version=mine
    )
    assert chosen.status == StepTexts.Status.PENDING
    # Waiting for approval, the version is frozen like a submitted campaign's.
    with pytest.raises(ValidationError):
        local_version_save(
            actor=world.manager_a,
            unit=world.unit_a,
            template=template,
            values={"headline": "Autre"},
            local=mine,
        )
    (first,) = sent_to(run, contacts(world.unit_a, 1)).values()
    assert "Nouvelle saison" in first and "Soldes à Lyon" not in first
    with pytest.raises(PermissionDenied):  # a store manager does not approve
        texts.step_texts_decide(actor=world.manager_a, run=run, step_id="hello", approve=True)
    with pytest.raises(ValidationError):  # rejecting says why
        texts.step_texts_decide(actor=world.region_manager, run=run, step_id="hello", approve=False)
    texts.step_texts_decide(actor=world.region_manager, run=run, step_id="hello", approve=True)
    locmem.outbox.clear()
    (second,) = sent_to(run, contacts(world.unit_a, 1, start=5)).values()
    assert "Soldes à Lyon" in second
    with pytest.raises(ValidationError):  # nothing waits any more
        texts.step_texts_decide(actor=world.region_manager, run=run, step_id="hello", approve=True)


def test_a_rejected_choice_keeps_the_approved_texts(world):
    template = brand_template(world, "Nouvelle saison")
    first = local(world, template, world.unit_a, "Premier")
    run = activate(world, journey(world, template), world.unit_a, texts={"hello": first})
    second = local(world, template, world.unit_a, "Second")
    texts.step_texts_choose(actor=world.manager_a, run=run, step_id="hello", local_version=second)
    kept = texts.step_texts_decide(
        actor=world.region_manager, run=run, step_id="hello", approve=False, comment="Trop court"
    )
    assert (kept.status, kept.comment, kept.approved_local_id) == (
        "rejected",
        "Trop court",
        first.pk,
    )
    campaign = JourneySend.objects.get(run=run).campaign
    assert campaign.approved_values == {"headline": "Premier"}
    assert campaign.local_version_id == first.pk  # the rejected one may be edited again
    local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Second, mieux"},
        local=second,
    )


# --- head office changes later -----------------------------------------------------------------


def test_head_office_shortening_the_zone_stops_the_step_and_keeps_the_texts(world):
    template = brand_template(world, "Nouvelle saison")
    words = "Un texte de quarante caractères, ou plus"
    run = activate(
        world,
        journey(world, template),
        world.unit_a,
        texts={"hello": local(world, template, world.unit_a, words)},
    )
    shorten_headline(world, template)
    assert sent_to(run, contacts(world.unit_a, 1)) == {}
    assert "Step “hello”" not in run.problem  # the engine's words: the gate's reason
    assert "Titre" in run.problem and "the limit is 20" in run.problem
    assert StepTexts.objects.get(run=run).approved_values == {"headline": words}


def test_a_guardrail_added_later_stops_the_step_with_the_reason(world):
    template = brand_template(world, "Nouvelle saison")
    run = activate(
        world,
        journey(world, template),
        world.unit_a,
        texts={"hello": local(world, template, world.unit_a, "Tout est gratuit")},
    )
    Guardrails.objects.create(
        node=world.root,
        restricted_patterns=["gratuit"],
        require_logo=False,
        require_legal_footer=False,
    )
    assert sent_to(run, contacts(world.unit_a, 1)) == {}
    assert "gratuit" in run.problem
    # The run's page says it too, on the step, before anyone else reaches it.
    client = Client()
    login(client, world.manager_a)
    page = client.get(reverse("journey_run_texts", args=[run.public_id]), **HTMX).text
    assert "This step cannot send its message:" in page and "gratuit" in page
    assert (
        Campaign.objects.get(pk=JourneySend.objects.get(run=run).campaign_id).recipient_total == 0
    )


# --- pages -------------------------------------------------------------------------------------


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)


@pytest.fixture
def runs(world):
    template = brand_template(world, "Nouvelle saison")
    made = journey(world, template)
    run_a = activate(world, made, world.unit_a)
    services.journey_make_mandatory(actor=world.hq_admin, template=made, node=world.root)
    return template, run_a, JourneyRun.objects.get(unit=world.unit_b)


def test_the_run_page_section_shows_zones_preview_and_choice(client, world, runs):
    template, run, _other = runs
    mine = local(world, template, world.unit_a, "<b>Soldes</b> à Lyon")
    login(client, world.manager_a)
    url = reverse("journey_run_texts", args=[run.public_id])
    assert f'hx-get="{url}"' in client.get(reverse("journey_run", args=[run.public_id])).text
    page = client.get(url, **HTMX).text
    assert "Titre" in page and "Nouvelle saison" in page and str(mine.public_id) in page
    response = client.post(
        url, {"action": "choose", "step": "hello", "local_version": mine.public_id}
    )
    assert response.status_code == 302 and response["Location"].endswith("#texts")
    assert StepTexts.objects.get(run=run).status == "pending"
    page = client.get(url, **HTMX).text
    assert "Waiting for approval" in page and "&lt;b&gt;Soldes&lt;/b&gt;" not in page
    preview = client.get(url, {"preview": "hello"})
    assert "sandbox" in preview["Content-Security-Policy"]
    assert "Nouvelle saison" in preview.text  # what is sent today
    pending = client.get(url, {"preview": "hello", "pending": "1"}).text
    assert "&lt;b&gt;Soldes&lt;/b&gt; à Lyon" in pending


def test_a_store_manager_personalises_a_mandatory_run(client, world, runs):
    template, _run_a, run_b = runs
    assert run_b.mandatory
    mine = local(world, template, world.unit_b, "Paris")
    login(client, world.manager_b)
    url = reverse("journey_run_texts", args=[run_b.public_id])
    client.post(url, {"action": "choose", "step": "hello", "local_version": mine.public_id})
    assert StepTexts.objects.get(run=run_b).local_version_id == mine.pk


def test_another_store_run_or_version_is_not_found_and_staff_cannot_write(client, world, runs):
    template, run_a, run_b = runs
    theirs = local(world, template, world.unit_b, "Paris")
    login(client, world.manager_a)
    other = reverse("journey_run_texts", args=[run_b.public_id])
    assert client.get(other).status_code == 404
    assert client.get(other, {"preview": "hello"}).status_code == 404
    assert client.post(other, {"action": "choose", "step": "hello"}).status_code == 404
    own = reverse("journey_run_texts", args=[run_a.public_id])
    response = client.post(
        own, {"action": "choose", "step": "hello", "local_version": theirs.public_id}
    )
    assert response.status_code == 404
    client.logout()
    login(client, world.staff_a)
    assert client.get(own).status_code == 200
    assert client.post(own, {"action": "choose", "step": "hello"}).status_code == 403
    assert not StepTexts.objects.exists()


def test_the_section_reads_in_french(client, world, runs):
    _template, run, _other = runs
    login(client, world.manager_a)
    page = client.get(reverse("journey_run_texts", args=[run.public_id]), **FR, **HTMX).text
    assert "Vos textes dans les messages de ce parcours" in page
    assert "Textes du siège" in page


def test_a_stopped_run_restarted_sends_again_with_texts_chosen_meanwhile(world):
    template = brand_template(world, "Nouvelle saison")
    made = journey(world, template)
    run = activate(world, made, world.unit_a)
    assert len(sent_to(run, contacts(world.unit_a, 1))) == 1
    # Queued, then the store stops the run before the hand-off: never sent.
    late = contacts(world.unit_a, 1, start=2)
    engine.enroll(run, [p.pk for p in late], now=NOW)
    engine.advance_due(now=NOW)
    services.journey_run_stop(actor=world.hq_admin, run=run)
    texts.step_texts_choose(
        actor=world.hq_admin,
        run=run,
        step_id="hello",
        local_version=local(world, template, world.unit_a, "De retour"),
    )
    locmem.outbox.clear()
    run = activate(world, made, world.unit_a)
    got = sent_to(run, contacts(world.unit_a, 1, start=4))
    assert len(got) == 1 and "De retour" in next(iter(got.values()))
    assert late[0].email not in {m.to for m in locmem.outbox}


def test_store_texts_stay_across_a_new_journey_version(world):
    template = brand_template(world, "Nouvelle saison")
    made = journey(world, template)
    run = activate(
        world, made, world.unit_a, texts={"hello": local(world, template, world.unit_a, "Lyon!")}
    )
    services.journey_publish(actor=world.hq_admin, template=made, flow=made.live_version.flow)
    run.refresh_from_db()
    assert run.version.number == 2
    (html,) = sent_to(run, contacts(world.unit_a, 1)).values()
    assert "Lyon!" in html
    assert NOW - dt.timedelta(days=1) < timezone.now()


def test_a_store_sms_text_is_sent_as_typed_within_head_office_segments(world):
    moment = dt.datetime(2027, 3, 30, 10, tzinfo=ZoneInfo("Europe/Paris"))  # a Tuesday
    with time_machine.travel(moment, tick=False):
        template = sms_template(world, max_segments=1)
        made = journey(world, template)
        too_long = local_version_save(
            actor=world.hq_admin,
            unit=world.unit_a,
            template=template,
            values={"message": "é" * 200},
        )
        assert not too_long.is_usable and "segments" in too_long.problems[0]
        typed = "<b>-30%</b> {{ 'ab' | append: 'cd' }}"
        mine = local_version_save(
            actor=world.hq_admin, unit=world.unit_a, template=template, values={"message": typed}
        )
        run = services.journey_activate(
            actor=world.hq_admin,
            template=made,
            unit=world.unit_a,
            starts_on=moment.date(),
            texts={"hello": mine},
        )
        people = contacts(world.unit_a, 1, email=False, sms=True)
        engine.enroll(run, [p.pk for p in people], now=moment)
        engine.advance_due(now=moment)
        run_campaign(JourneySend.objects.get(run=run).campaign_id)
    (message,) = locmem.outbox
    assert typed in message.text and "abcd" not in message.text
    assert message.text.endswith("STOP 36111")


def test_a_step_stopped_at_hand_off_sends_again_once_the_store_fixes_its_texts(world):
    template = brand_template(world, "Nouvelle saison")
    run = activate(
        world,
        journey(world, template),
        world.unit_a,
        texts={"hello": local(world, template, world.unit_a, "Un texte bien trop long ici")},
    )
    people = contacts(world.unit_a, 2)
    engine.enroll(run, [p.pk for p in people], now=NOW)
    engine.advance_due(now=NOW)  # queued with texts that pass today
    shorten_headline(world, template)
    campaign_id = JourneySend.objects.get(run=run).campaign_id
    run_campaign(campaign_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    assert (campaign.status, campaign.pause_reason, locmem.outbox) == ("paused", "content", [])
    texts.step_texts_choose(
        actor=world.hq_admin,
        run=run,
        step_id="hello",
        local_version=local(world, template, world.unit_a, "Court"),
    )
    assert Campaign.objects.get(pk=campaign_id).status == "sending"
    run_campaign(campaign_id)
    assert sorted(m.to for m in locmem.outbox) == sorted(p.email for p in people)
    assert all("Court" in _html(m.data) for m in locmem.outbox)
