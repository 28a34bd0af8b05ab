"""Zone variants per persona (issue 21): head office writes, on a zone of its template, what
the customers of a persona receive instead of the usual content; the renderer picks the
variant of each recipient's persona (the record's, or the person's for a campaign that sends
one message a person), reading the personas of a whole chunk in one query; variants are
checked like the zone, are data for Liquid, and a store keeps them under its own wording."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enseigne.brand import services as brand
from enseigne.brand.models import Guardrails
from enseigne.brand.rendering import Compiled, Personaliser, compile_email
from enseigne.campaigns import services as campaigns
from enseigne.contacts.models import ConsentStatus
from enseigne.delivery import compose
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.channels.locmem.transport import LocmemTransport
from enseigne.delivery.pipeline import Runner
from enseigne.identity.models import RecordLink
from enseigne.personas.assignment import assign_network
from enseigne.personas.models import PersonaPerson, PersonaRecord
from enseigne.personas.services import persona_delete, persona_save
from tests.campaign_helpers import contacts, launched, local_campaign
from tests.factories import PASSWORD, ContactFactory
from tests.test_api_and_isolation import bearer

pytestmark = pytest.mark.django_db

SOURCE = (
    "<mjml><mj-body><mj-section><mj-column><mj-text>"
    'Bonjour {{ contact.first_name }}, <ens-zone name="headline" kind="text" max="40" '
    'label="Titre">Nouvelle saison</ens-zone> '
    '<ens-zone name="tone" kind="choice" label="Ton">'
    '<ens-option value="classic" label="Classique">TON-CLASSIQUE</ens-option>'
    '<ens-option value="warm" label="Chaleureux">TON-CHALEUREUX</ens-option></ens-zone>'
    ' — {{ unit.name }}. <a href="{{ links.unsubscribe }}">Se désabonner</a>'
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)


def _rules(field: str, op: str, value=None) -> dict:
    return {"match": "all", "rules": [{"field": field, "op": op, "value": value}]}


@pytest.fixture
def personas(world):
    """Two personas in HQ's order: English speakers first, then customers."""
    english = persona_save(
        actor=world.hq_admin, name="Anglophones", rules=_rules("language", "equals", "en")
    )
    customers = persona_save(
        actor=world.hq_admin, name="Clients", rules=_rules("is_customer", "is_true")
    )
    return english, customers


def _template(world, personas, **extra):
    english, customers = personas
    variants = {
        "headline": [
            {"persona": str(english.public_id), "value": "Hello, new season"},
            {"persona": str(customers.public_id), "value": "Merci, fidèle client"},
        ],
        "tone": [{"persona": str(customers.public_id), "value": "warm"}],
    }
    return brand.template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Saison",
        source=extra.pop("source", SOURCE),
        subject="{{ zones.headline }}",
        variants=extra.pop("variants", variants),
        **extra,
    )


def _html(message) -> str:
    parsed = email.message_from_bytes(message.data, policy=policy.default)
    return parsed.get_body(("html",)).get_content()


def _subject(message) -> str:
    return str(email.message_from_bytes(message.data, policy=policy.default)["Subject"])


def _sent(campaign) -> dict[str, object]:
    """Recipient address → its message, for one run of ``campaign``."""
    locmem.outbox.clear()
    stats = Runner(campaign.pk, transport=LocmemTransport()).run()
    assert stats.sent == len(locmem.outbox)
    return {m.to: m for m in locmem.outbox}


def _people(world):
    unit = world.unit_a
    granted = {"email_consent": ConsentStatus.GRANTED}
    return {
        "english": ContactFactory(unit=unit, email="en@example.com", language="en", **granted),
        "customer": ContactFactory(unit=unit, email="cl@example.com", is_customer=True, **granted),
        "neither": ContactFactory(unit=unit, email="ni@example.com", **granted),
    }


def test_each_recipient_gets_its_personas_variant_and_the_others_the_stores_wording(
    world, personas
):
    template = _template(world, personas)
    _people(world)
    assign_network(world.root.path)
    campaign = local_campaign(
        world, template=template, values={"headline": "Soldes à Lyon", "tone": "classic"}
    )
    launched(world, campaign)
    sent = _sent(campaign)
    english, customer, neither = (
        _html(sent["en@example.com"]),
        _html(sent["cl@example.com"]),
        _html(sent["ni@example.com"]),
    )
    assert "Hello, new season" in english and "TON-CLASSIQUE" in english
    assert "Merci, fidèle client" in customer and "TON-CHALEUREUX" in customer
    # No persona: the store's own wording; the persona's variant never leaks to others.
    assert "Soldes à Lyon" in neither and "TON-CLASSIQUE" in neither
    assert "Soldes à Lyon" not in english + customer
    assert "Hello" not in neither + customer and "Merci" not in neither + english
    # The subject prints the zone: the variant too.
    assert _subject(sent["en@example.com"]) == "Hello, new season"
    assert _subject(sent["ni@example.com"]) == "Soldes à Lyon"


def test_a_deleted_persona_or_one_without_a_variant_gets_the_usual_content(world, personas):
    english, customers = personas
    variants = {"headline": [{"persona": str(english.public_id), "value": "Hello, new season"}]}
    template = _template(world, personas, variants=variants)
    people = _people(world)
    assign_network(world.root.path)
    assert PersonaRecord.objects.get(contact=people["customer"]).persona == customers
    persona_delete(actor=world.hq_admin, persona=english)
    campaign = local_campaign(world, template=template, values={"headline": "Soldes à Lyon"})
    launched(world, campaign)
    sent = _sent(campaign)
    for address in ("en@example.com", "cl@example.com", "ni@example.com"):
        assert "Soldes à Lyon" in _html(sent[address]) and "Hello" not in _html(sent[address])
    # The version still names the deleted persona; the next one drops it, not refuses it.
    version = brand.template_publish(
        actor=world.hq_admin, template=template, source=SOURCE.replace("Bonjour", "Salut")
    )
    assert version.variants == {}


def test_an_unknown_persona_is_refused_and_a_renderer_without_persona_uses_the_default(
    world, personas
):
    english, _customers = personas
    with pytest.raises(ValidationError) as refused:
        _template(
            world,
            personas,
            variants={
                "headline": [{"persona": "8b3b4f3e-0000-4000-8000-000000000000", "value": "X"}]
            },
        )
    assert refused.value.messages == [
        "Zone “Titre”: a variant names a persona this network does not have."
    ]
    compiled = compile_email(SOURCE)
    variants = {"headline": [{"persona": str(english.public_id), "value": "Hello"}]}
    personaliser = Personaliser(compiled, {}, variants)
    data = {"contact": {"first_name": "Ana"}, "unit": {}, "brand": {}, "links": {}}
    assert "Hello" in personaliser.html(**data, persona=str(english.public_id))
    for persona in (None, "", "8b3b4f3e-0000-4000-8000-000000000000"):
        html = personaliser.html(**data, persona=persona)
        assert "Nouvelle saison" in html and "Hello" not in html


def test_a_national_campaign_picks_the_persons_persona_a_local_one_the_records(world, personas):
    """Claire is French and not a customer in Lyon (no persona there) and an English-speaking
    record in Paris: her person is an English speaker (the first persona any record has)."""
    granted = {"email_consent": ConsentStatus.GRANTED}
    lyon = ContactFactory(unit=world.unit_a, email="claire@orange.fr", language="fr", **granted)
    paris = ContactFactory(unit=world.unit_b, email="claire@orange.fr", language="en", **granted)
    assert (
        RecordLink.objects.get(contact=lyon).person_id
        == RecordLink.objects.get(contact=paris).person_id
    )
    template = _template(world, personas)
    assign_network(world.root.path)
    assert not PersonaRecord.objects.filter(contact=lyon).exists()
    national = campaigns.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Printemps", template=template
    )
    launched(world, national)
    # Whichever record receives it, it is written for her person, an English speaker.
    (message,) = _sent(national).values()
    assert "Hello, new season" in _html(message)
    assert compose.personas_of(national, [lyon.pk, paris.pk]) == {
        lyon.pk: str(personas[0].public_id),
        paris.pk: str(personas[0].public_id),
    }
    local = local_campaign(world, template=template, values={"headline": "Soldes à Lyon"})
    assert compose.personas_of(local, [lyon.pk, paris.pk]) == {paris.pk: str(personas[0].public_id)}
    # A record not linked to a person is its own person.
    RecordLink.objects.filter(contact=lyon).delete()
    PersonaPerson.objects.create(contact=lyon, persona=personas[1], unit_path=world.root.path)
    assert compose.personas_of(national, [lyon.pk]) == {lyon.pk: str(personas[1].public_id)}


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            {"headline": "Un titre bien trop long pour la limite de la zone"},
            "Zone “Titre, variant for “Anglophones”” is 49 characters long; the limit is 40.",
        ),
        (
            {"tone": "shouting"},
            "Zone “Ton, variant for “Anglophones””: “shouting” is not one of head office’s variants.",
        ),
        (
            {"headline": "Gratuit pour vous"},
            "Zone “Titre, variant for “Anglophones”” uses “gratuit”, which head office does not allow.",
        ),
    ],
)
def test_a_variant_that_breaks_a_zone_rule_is_refused_naming_the_zone_and_the_rule(
    world, personas, variants, message
):
    Guardrails.objects.create(node=world.root, restricted_patterns=["gratuit"])
    template = _template(world, personas, variants={})
    english = str(personas[0].public_id)
    with pytest.raises(ValidationError) as refused:
        brand.template_edit(
            actor=world.hq_admin,
            template=template,
            name=template.name,
            description="",
            source=SOURCE,
            variants={zone: [{"persona": english, "value": v}] for zone, v in variants.items()},
        )
    assert refused.value.messages == [message]
    template.refresh_from_db()
    assert template.current.number == 1 and template.current.variants == {}


def test_hostile_content_in_a_variant_is_printed_as_data(world, personas):
    english = str(personas[0].public_id)
    hostile = "{{ 7*7 }}{% raw %}<script>x()</script>"
    source = SOURCE.replace(
        "</mj-text>",
        ' <ens-zone name="note" kind="rich" label="Note">Texte</ens-zone></mj-text>',
        1,
    )
    template = _template(
        world,
        personas,
        source=source,
        variants={
            "headline": [{"persona": english, "value": hostile[:40]}],
            "note": [
                {
                    "persona": english,
                    "value": '<p onclick="x()">Hi <a href="javascript:alert(1)">x</a>'
                    "<script>alert(2)</script>{{ 6*6 }}</p>",
                }
            ],
        },
    )
    variants = template.current.variants
    assert variants["note"][0]["value"] == '<p>Hi <a rel="noopener noreferrer">x</a>{{ 6*6 }}</p>'
    compiled = Compiled(
        html=template.current.compiled_html,
        text=template.current.compiled_text,
        zones=tuple(brand.zones_of(template.current)),
    )
    html, text = Personaliser(compiled, {}, variants).render(
        contact={}, unit={}, brand={}, links={}, persona=english
    )
    assert "{{ 7*7 }}{% raw %}&lt;script&gt;x()" in html and "49" not in html
    assert "<script>" not in html and "onclick" not in html and "javascript:" not in html
    assert "{{ 6*6 }}" in html and "36" not in html
    assert "{{ 7*7 }}{% raw %}<script>x()" in text


def _queries_for_one_batch(world, template, n: int) -> int:
    unit = world.unit_a2 if n % 2 else world.unit_a
    made = contacts(unit, n, start=1000 * n, language="en")
    assign_network(world.root.path)
    assert PersonaRecord.objects.filter(contact__in=made).count() == n
    campaign = local_campaign(world, unit=unit, template=template, values={"headline": "Soldes"})
    launched(world, campaign)
    runner = Runner(campaign.pk, transport=LocmemTransport(lanes=32), batch_size=64, chunk_size=64)
    rows = runner.claim()
    runner._content(unit.pk)  # prepared once per run, not per batch
    locmem.outbox.clear()
    with CaptureQueriesContext(connection) as queries:
        stats = runner.process(rows)
    assert stats.sent == n
    assert all("Hello, new season" in _html(m) for m in locmem.outbox)
    return len(queries)


def test_the_personas_of_a_chunk_are_read_in_one_query_whatever_its_size(world, personas):
    plain = brand.template_create(
        actor=world.hq_admin, shared_with=world.root, channel="email", name="Sans", source=SOURCE
    )
    varied = _template(world, personas)
    few, many = _queries_for_one_batch(world, varied, 5), _queries_for_one_batch(world, varied, 40)
    assert few == many
    # Exactly one more than the same hand-off of a template without variants.
    unit = world.unit_b
    contacts(unit, 5, start=9000, language="en")
    assign_network(world.root.path)
    campaign = local_campaign(world, unit=unit, template=plain, values={"headline": "Soldes"})
    launched(world, campaign)
    runner = Runner(campaign.pk, transport=LocmemTransport(lanes=32), batch_size=64, chunk_size=64)
    rows = runner.claim()
    runner._content(unit.pk)
    with CaptureQueriesContext(connection) as queries:
        runner.process(rows)
    assert many == len(queries) + 1


def test_hq_writes_variants_in_the_editor_and_a_store_sees_them_but_cannot_change_them(
    world, personas, client
):
    english, customers = personas
    template = _template(world, personas, variants={})
    client.login(username=world.hq_admin.email, password=PASSWORD)
    url = f"/brand/templates/{template.public_id}/"
    page = client.get(url).content.decode()
    key = f"variant__headline__{english.public_id}"
    assert f'name="{key}"' in page and "Anglophones" in page
    form = {
        "name": template.name,
        "description": "",
        "subject": "{{ zones.headline }}",
        "source": SOURCE,
        key: "Hello, new season",
        f"variant__headline__{customers.public_id}": "",
        f"variant__tone__{customers.public_id}": "warm",
    }
    empty = {k: "" if k.startswith("variant__") else v for k, v in form.items()}
    assert client.post(url, empty).status_code == 302
    template.refresh_from_db()
    assert template.current.number == 1, "empty variant fields are no change"
    assert client.post(url, form).status_code == 302
    template.refresh_from_db()
    assert template.current.number == 2
    assert template.current.variants == {
        "headline": [{"persona": str(english.public_id), "value": "Hello, new season"}],
        "tone": [{"persona": str(customers.public_id), "value": "warm"}],
    }
    # The same form again: nothing changed, no new version.
    assert client.post(url, form).status_code == 302
    template.refresh_from_db()
    assert template.current.number == 2
    # A variant over the zone's limit: not published, the message names the zone and rule.
    response = client.post(url, {**form, key: "x" * 41})
    assert response.status_code == 200
    assert "is 41 characters long; the limit is 40." in response.content.decode()
    template.refresh_from_db()
    assert template.current.number == 2
    # HQ's preview as a persona shows the unsaved variant.
    preview = client.post(
        "/brand/templates/preview/",
        {**form, "channel": "email", key: "Howdy", "preview_persona": str(english.public_id)},
    ).content.decode()
    assert "Howdy" in preview and "Nouvelle saison" not in preview
    # The store's form says who gets head office's text; its preview shows each variant.
    client.logout()
    client.login(username=world.manager_a.email, password=PASSWORD)
    page = client.get(f"/brand/templates/{template.public_id}/personalise/").content.decode()
    assert "Head office wrote its own version of this zone for these personas: Anglophones." in (
        page
    )
    assert f'<option value="{english.public_id}">Anglophones</option>' in page
    preview_url = f"/brand/templates/{template.public_id}/preview/"
    posted = {"unit": str(world.unit_a.public_id), "zone_headline": "Soldes à Lyon"}
    as_english = client.post(
        preview_url, {**posted, "preview_persona": str(english.public_id)}
    ).content.decode()
    as_others = client.post(preview_url, posted).content.decode()
    assert "Hello, new season" in as_english and "Soldes à Lyon" not in as_english
    assert "Soldes à Lyon" in as_others and "Hello" not in as_others
    # The store's saved version keeps head office's variants (they are the version's).
    client.post(f"/brand/templates/{template.public_id}/personalise/", posted)
    local = template.local_versions.get()
    assert local.version.variants["headline"][0]["value"] == "Hello, new season"
    assert local.values["headline"] == "Soldes à Lyon"


def test_the_api_publishes_variants_refuses_a_broken_one_and_previews_as_a_persona(
    world, personas, client
):
    english = str(personas[0].public_id)
    template = _template(world, personas, variants={})
    url = f"/api/v1/templates/{template.public_id}"
    hq = bearer(world.hq_admin)
    body = {"source": SOURCE, "variants": {"headline": [{"persona": english, "value": "Hi"}]}}
    response = client.post(f"{url}/versions", body, content_type="application/json", **hq)
    assert response.status_code == 201, response.content
    assert response.json()["variants"] == {"headline": [{"persona": english, "value": "Hi"}]}
    body["variants"]["headline"][0]["value"] = "y" * 41
    response = client.post(f"{url}/versions", body, content_type="application/json", **hq)
    assert response.status_code == 422
    assert "is 41 characters long; the limit is 40." in response.content.decode()
    store = bearer(world.manager_a)
    preview = {"unit": str(world.unit_a.public_id), "persona": english}
    html = client.post(f"{url}/preview", preview, content_type="application/json", **store).json()[
        "html"
    ]
    assert "Hi" in html and "Nouvelle saison" not in html


def test_an_sms_variant_over_the_segment_limit_is_refused_naming_the_persona(world, personas):
    english = str(personas[0].public_id)
    source = 'Bonjour <ens-zone name="message" kind="text" label="Message">-20%</ens-zone>'
    common = {
        "actor": world.hq_admin,
        "shared_with": world.root,
        "channel": "sms",
        "name": "Flash",
        "source": source,
        "sms_stop": "STOP 36111",
        "max_segments": 1,
    }
    with pytest.raises(ValidationError) as refused:
        brand.template_create(
            **common, variants={"message": [{"persona": english, "value": "long " * 40}]}
        )
    assert refused.value.messages == [
        "With head office's variant for the persona “Anglophones”, this SMS takes 2 segments; "
        "head office allows 1."
    ]
    template = brand.template_create(
        **common, variants={"message": [{"persona": english, "value": "-30% pour vous"}]}
    )
    assert template.current.variants["message"][0]["value"] == "-30% pour vous"
    contact = ContactFactory(
        unit=world.unit_a,
        phone="+33611223344",
        language="en",
        sms_consent=ConsentStatus.GRANTED,
    )
    assign_network(world.root.path)
    campaign = local_campaign(world, channel="sms", template=template, values={"message": "-20%"})
    # Inside the SMS window (a Tuesday, 10:00 in Paris), whatever time the suite runs at.
    with time_machine.travel(dt.datetime(2026, 11, 17, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))):
        launched(world, campaign)
        (message,) = _sent(campaign).values()
    assert message.to == contact.phone and "-30% pour vous" in message.text


def test_the_campaign_page_previews_the_message_as_each_persona(world, personas, client):
    english, customers = personas
    template = _template(world, personas)
    campaign = local_campaign(world, template=template, values={"headline": "Soldes à Lyon"})
    client.login(username=world.manager_a.email, password=PASSWORD)
    page = client.get(f"/campaigns/{campaign.public_id}/").content.decode()
    assert f'<option value="{english.public_id}">Anglophones</option>' in page
    url = f"/campaigns/{campaign.public_id}/message/"
    assert (
        "Hello, new season" in client.get(url, {"persona": str(english.public_id)}).content.decode()
    )
    assert (
        "Merci, fidèle client"
        in client.get(url, {"persona": str(customers.public_id)}).content.decode()
    )
    for unknown in ({}, {"persona": "nope"}, {"persona": "8b3b4f3e-0000-4000-8000-000000000000"}):
        html = client.get(url, unknown).content.decode()
        assert "Soldes à Lyon" in html and "Hello" not in html and "Merci" not in html
