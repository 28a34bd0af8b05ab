"""Only what was approved leaves (issue 17, items 1 and 2).

A local version used by a live campaign cannot be edited; what is sent is the snapshot
taken at approval (or at a national relay's decision), following HQ's newer versions only
when its values are still valid under them; a rule HQ adds later stops the campaign at
launch, at the scheduler's wake and before the next batch, and it carries on, losing
nothing, once fixed. Offers' and products' links obey the allowed-link-domains rule.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation

from enseigne.brand import checks
from enseigne.brand.asset_services import asset_create, asset_update
from enseigne.brand.models import Asset, Guardrails, LocalVersion
from enseigne.brand.previews import email_preview
from enseigne.brand.services import guardrails_update, local_version_save, template_publish
from enseigne.brand.zones import Zone
from enseigne.campaigns import preparation, services
from enseigne.campaigns.content import (
    ContentProblem,
    approved_content,
    campaign_stop_for_content,
    content_problems,
)
from enseigne.campaigns.models import Campaign, PauseReason, Recipient, Relay
from enseigne.contacts.services import segment_save
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import Runner, run_campaign
from enseigne.network.models import AuditEvent
from tests.campaign_helpers import EMAIL_SOURCE, EVERYONE, contacts, email_template
from tests.factories import PASSWORD

WORD = "Zone “Headline” uses “soldes”, which head office does not allow."
LYON = "Lyon’s version of “Saison”"


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def rules(world, **fields):
    """HQ's guardrails; the test template has no logo or legal footer, so those are off."""
    return guardrails_update(
        actor=world.hq_admin,
        node=world.root,
        require_logo=False,
        require_legal_footer=False,
        **fields,
    )


def store_campaign(world, template, headline="Soldes à Lyon"):
    """Lyon's manager writes a version and a campaign; the region manager approves it."""
    local = local_version_save(
        actor=world.manager_a, unit=world.unit_a, template=template, values={"headline": headline}
    )
    assert local.is_usable
    segment = segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE)
    campaign = services.campaign_create_local(
        actor=world.manager_a,
        unit=world.unit_a,
        channel="email",
        name="Soldes d'hiver",
        template=template,
        local_version=local,
        segment=segment,
    )
    services.campaign_submit(actor=world.manager_a, campaign=campaign)
    assert campaign.status == Campaign.Status.SUBMITTED
    services.campaign_approve(actor=world.region_manager, campaign=campaign)
    return campaign, local


# -- item 1: an edit after approval --------------------------------------------------------------


def test_an_edit_after_approval_is_refused_and_the_approved_values_are_sent(world):
    rules(world, restricted_patterns=["gratuit"])
    contacts(world.unit_a, 2)
    template = email_template(world)
    campaign, local = store_campaign(world, template)
    for values in ({"headline": "Tout est gratuit"}, {"headline": "Autre titre, propre"}):
        with pytest.raises(ValidationError) as refused:
            local_version_save(
                actor=world.manager_a,
                unit=world.unit_a,
                template=template,
                values=values,
                local=local,
            )
        (message,) = refused.value.messages
        assert message.startswith(
            "This version is used by the campaign “Soldes d'hiver” (approved, approved on "
        )
        assert message.endswith("To send something else, write a new version from the template.")
    local.refresh_from_db()
    assert (local.values, local.is_usable) == ({"headline": "Soldes à Lyon"}, True)
    content = approved_content(campaign, world.unit_a)
    assert (content.version, content.values) == (template.current, {"headline": "Soldes à Lyon"})
    assert content_problems(campaign) == []
    services.campaign_launch(actor=world.manager_a, campaign=campaign)
    run_campaign(campaign.pk)
    assert len(locmem.outbox) == 2
    assert all(b"Soldes =C3=A0 Lyon" in m.data for m in locmem.outbox)


def test_a_submitted_campaign_freezes_its_version_and_a_draft_does_not(world):
    template = email_template(world)
    local = local_version_save(
        actor=world.manager_a, unit=world.unit_a, template=template, values={"headline": "Un"}
    )
    segment = segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE)
    campaign = services.campaign_create_local(
        actor=world.manager_a,
        unit=world.unit_a,
        channel="email",
        name="Brouillon",
        template=template,
        local_version=local,
        segment=segment,
    )
    # A draft follows its version's edits, as before.
    local = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Deux"},
        local=local,
    )
    services.campaign_submit(actor=world.manager_a, campaign=campaign)
    with pytest.raises(ValidationError, match=r"the campaign “Brouillon” \(waiting for approval\)"):
        local_version_save(
            actor=world.manager_a,
            unit=world.unit_a,
            template=template,
            values={"headline": "Trois"},
            local=local,
        )
    services.campaign_approve(actor=world.region_manager, campaign=campaign)
    campaign.refresh_from_db()
    assert (campaign.approved_version, campaign.approved_values) == (
        template.current,
        {"headline": "Deux"},
    )
    services.campaign_cancel(actor=world.manager_a, campaign=campaign)
    edited = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Trois"},
        local=local,
    )
    assert edited.values == {"headline": "Trois"}


def test_frozen_statuses_are_campaign_statuses():
    assert set(Campaign.CONTENT_FROZEN) == {
        "submitted",
        "approved",
        "scheduled",
        "preparing",
        "sending",
        "paused",
    }
    assert set(Campaign.CONTENT_FROZEN) <= set(Campaign.Status.values)


# -- item 1: a guardrail added after approval ----------------------------------------------------


def test_a_word_forbidden_after_approval_stops_launch_and_the_scheduler_and_tells_people(
    world, django_capture_on_commit_callbacks
):
    rules(world, restricted_patterns=["gratuit"])
    contacts(world.unit_a, 3)
    world.manager_a.language = "en"
    world.manager_a.save(update_fields=["language"])
    campaign, _local = store_campaign(world, email_template(world))
    send_at = timezone.now() + dt.timedelta(hours=1)
    services.campaign_schedule(actor=world.manager_a, campaign=campaign, send_at=send_at)
    rules(world, restricted_patterns=["gratuit", "soldes"])

    assert content_problems(campaign) == [ContentProblem(world.unit_a.path, LYON, WORD)]
    with pytest.raises(ValidationError) as refused:
        services.campaign_launch(actor=world.manager_a, campaign=campaign)
    assert refused.value.messages == [
        "This campaign cannot be sent: what was approved no longer passes head office's rules.",
        f"{LYON}: {WORD}",
    ]
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"

    with django_capture_on_commit_callbacks(execute=True):
        woke = services.campaign_wake(
            campaign=Campaign.objects.get(pk=campaign.pk), now=send_at + dt.timedelta(minutes=1)
        )
    assert woke is False
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason, campaign.launched_at) == (
        "paused",
        PauseReason.CONTENT,
        None,
    )
    assert campaign.content_problems == [
        {"unit_path": world.unit_a.path, "subject": LYON, "message": WORD}
    ]
    assert not Recipient.objects.filter(campaign=campaign).exists()
    assert AuditEvent.objects.filter(
        action="campaign.stop_content", target_id=str(campaign.public_id)
    ).exists()
    by_person = {m.to[0]: m for m in mail.outbox}
    assert sorted(by_person) == [world.manager_a.email, world.region_manager.email]
    english = by_person[world.manager_a.email]  # the creator reads English
    assert english.subject == (
        "“Soldes d'hiver” stopped: its content no longer passes head office's rules"
    )
    assert f"- {LYON}: {WORD}" in english.body
    assert f"/campaigns/{campaign.public_id}/" in english.body
    french = by_person[world.region_manager.email]  # the approver, French (the default)
    assert french.subject.startswith("« Soldes d'hiver » arrêtée")
    assert "« soldes »" in french.body and "Lyon" in french.body

    with pytest.raises(ValidationError, match="soldes"):
        services.campaign_resume(actor=world.manager_a, campaign=campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"

    # Head office takes the word back: resuming launches what was stopped before its launch
    # (the worker prepares its audience, then it sends).
    rules(world, restricted_patterns=["gratuit"])
    services.campaign_resume(actor=world.manager_a, campaign=campaign)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason, campaign.content_problems) == (
        "preparing",
        "",
        [],
    )
    assert preparation.campaign_prepare(campaign.pk) == "sending"
    run_campaign(campaign.pk)
    assert len(locmem.outbox) == 3
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_stopped_mid_send_it_resumes_where_it_stopped_without_losing_or_doubling(world):
    contacts(world.unit_a, 5)
    campaign, _local = store_campaign(world, email_template(world))
    services.campaign_launch(actor=world.manager_a, campaign=campaign)
    Runner(campaign.pk, batch_size=2).run(max_batches=1)
    assert len(locmem.outbox) == 2
    rules(world, restricted_patterns=["soldes"])
    problems = content_problems(campaign)
    assert campaign_stop_for_content(campaign=campaign, problems=problems) is True
    assert campaign_stop_for_content(campaign=campaign, problems=problems) is False  # CAS
    run_campaign(campaign.pk)  # a paused campaign's batches are not claimed
    assert len(locmem.outbox) == 2
    rules(world, restricted_patterns=[])
    services.campaign_resume(actor=world.manager_a, campaign=campaign)
    run_campaign(campaign.pk)
    sent_to = [m.to for m in locmem.outbox]
    assert len(sent_to) == len(set(sent_to)) == 5
    assert Recipient.objects.filter(campaign=campaign, status="sent").count() == 5


def test_the_store_fixes_it_back_to_draft_new_approval_and_the_ledger_carries_on(world):
    contacts(world.unit_a, 4)
    template = email_template(world)
    campaign, local = store_campaign(world, template)
    services.campaign_launch(actor=world.manager_a, campaign=campaign)
    Runner(campaign.pk, batch_size=1).run(max_batches=1)
    rules(world, restricted_patterns=["soldes"])
    campaign_stop_for_content(campaign=campaign, problems=content_problems(campaign))
    with pytest.raises(ValidationError, match="Soldes d'hiver"):  # still paused: frozen
        local_version_save(
            actor=world.manager_a,
            unit=world.unit_a,
            template=template,
            values={"headline": "Promos à Lyon"},
            local=local,
        )
    with pytest.raises(PermissionDenied):  # store staff may not change campaigns
        services.campaign_reopen(actor=world.staff_a, campaign=campaign)
    services.campaign_reopen(actor=world.manager_a, campaign=campaign)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.approved_version, campaign.content_problems) == (
        "draft",
        None,
        [],
    )
    local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Promos à Lyon"},
        local=local,
    )
    services.campaign_submit(actor=world.manager_a, campaign=campaign)
    services.campaign_approve(actor=world.region_manager, campaign=campaign)
    assert approved_content(campaign, world.unit_a).values == {"headline": "Promos à Lyon"}
    total = services.campaign_launch(actor=world.manager_a, campaign=campaign)
    assert total == Recipient.objects.filter(campaign=campaign).count() == 4
    run_campaign(campaign.pk)
    assert len({m.to for m in locmem.outbox}) == len(locmem.outbox) == 4
    assert sum(b"Soldes =C3=A0 Lyon" in m.data for m in locmem.outbox) == 1
    assert sum(b"Promos =C3=A0 Lyon" in m.data for m in locmem.outbox) == 3


def test_reopen_is_refused_while_the_content_passes(world):
    campaign, _local = store_campaign(world, email_template(world))
    with pytest.raises(ValidationError, match="nothing to change"):
        services.campaign_reopen(actor=world.manager_a, campaign=campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == "approved"


def test_the_migration_snapshots_live_campaigns_and_relays(world):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("enseigne.campaigns.migrations.0010_approved_content_snapshot")
    template = email_template(world)
    campaign, _local = store_campaign(world, template)
    draft, _draft_local = store_campaign(world, template, headline="Brouillon")
    services.campaign_cancel(actor=world.manager_a, campaign=draft)
    national = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Printemps", template=template
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(hours=2)
    )
    lille = local_version_save(
        actor=world.manager_b, unit=world.unit_b, template=template, values={"headline": "Lille"}
    )
    services.relay_decide(
        actor=world.manager_b, campaign=national, unit=world.unit_b, relay=True, local_version=lille
    )
    Campaign.objects.update(approved_version=None, approved_values={})  # as before 0010
    Relay.objects.update(approved_version=None, approved_values={})
    migration.snapshot_live_campaigns(apps, None)
    snapshots = {
        c.pk: (c.approved_version_id, c.approved_values)
        for c in Campaign.objects.filter(pk__in=[campaign.pk, draft.pk, national.pk])
    }
    assert snapshots == {
        campaign.pk: (template.current_id, {"headline": "Soldes à Lyon"}),
        national.pk: (template.current_id, {}),
        draft.pk: (None, {}),  # cancelled: it sends nothing
    }
    relay = Relay.objects.get(campaign=national, unit=world.unit_b)
    assert (relay.approved_version_id, relay.approved_values) == (
        template.current_id,
        {"headline": "Lille"},
    )


# -- item 1: HQ publishes a new version ----------------------------------------------------------


def test_a_new_hq_version_is_followed_when_the_values_fit_and_a_problem_when_not(world):
    template = email_template(world)
    campaign, _local = store_campaign(world, template)
    v1 = template.current
    v2 = template_publish(
        actor=world.hq_admin, template=template, source=EMAIL_SOURCE.replace("Bonjour", "Salut")
    )
    content = approved_content(campaign, world.unit_a)
    assert (content.version, content.values) == (v2, {"headline": "Soldes à Lyon"})
    assert content_problems(campaign) == []

    template_publish(
        actor=world.hq_admin,
        template=template,
        source=EMAIL_SOURCE.replace('kind="text"', 'kind="text" max="6"'),
    )
    assert approved_content(campaign, world.unit_a).version == v1  # what was approved
    assert content_problems(campaign) == [
        ContentProblem(
            world.unit_a.path,
            LYON,
            "With head office's version 3 of the template: "
            "Zone “Headline” is 13 characters long; the limit is 6.",
        )
    ]
    template_publish(
        actor=world.hq_admin,
        template=template,
        source=EMAIL_SOURCE.replace(
            '<ens-zone name="headline" kind="text">Nouvelle saison</ens-zone>', "Nouvelle saison"
        ),
    )
    assert [p.message for p in content_problems(campaign)] == [
        "With head office's version 4 of the template: Head office removed the zone "
        "“headline”; what you wrote there is kept but no longer shown."
    ]
    with pytest.raises(ValidationError, match="removed the zone"):
        services.campaign_launch(actor=world.manager_a, campaign=campaign)


def test_an_archived_template_is_a_problem_for_the_whole_campaign(world):
    template = email_template(world)
    campaign, _local = store_campaign(world, template)
    type(template).objects.filter(pk=template.pk).update(archived=True)
    assert content_problems(campaign) == [
        ContentProblem(
            "",
            "template “Saison”",
            "Head office withdrew this template: it can no longer be sent.",
        )
    ]


# -- national campaigns --------------------------------------------------------------------------


def test_a_national_campaign_sends_each_relay_snapshot_and_hq_defaults_to_the_undecided(world):
    template = email_template(world)
    national = services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name="Printemps",
        template=template,
        relay_deadline=timezone.now() + dt.timedelta(hours=1),
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    national.refresh_from_db()
    assert (national.approved_version, national.approved_values) == (template.current, {})
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(hours=2)
    )
    lyon = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Spécial Lyon"},
    )
    services.relay_decide(
        actor=world.manager_a, campaign=national, unit=world.unit_a, relay=True, local_version=lyon
    )
    relay = Relay.objects.get(campaign=national, unit=world.unit_a)
    assert (relay.approved_version, relay.approved_values) == (
        template.current,
        {"headline": "Spécial Lyon"},
    )
    with pytest.raises(ValidationError, match="the campaign “Printemps” \\(scheduled, approved on"):
        local_version_save(
            actor=world.manager_a,
            unit=world.unit_a,
            template=template,
            values={"headline": "Gratuit à Lyon"},
            local=lyon,
        )
    content = approved_content(national, world.unit_a)
    assert (content.version, content.values) == (template.current, {"headline": "Spécial Lyon"})
    undecided = approved_content(national, world.unit_b)  # Lille never answered
    assert (undecided.version, undecided.values) == (template.current, {})
    assert content_problems(national) == []

    rules(world, restricted_patterns=["spécial"])
    assert content_problems(national) == [
        ContentProblem(
            world.unit_a.path,
            LYON,
            "Zone “Headline” uses “spécial”, which head office does not allow.",
        )
    ]
    with pytest.raises(ValidationError, match="spécial"):
        services.campaign_launch(actor=world.hq_admin, campaign=national)
    # Lyon opts for head office's version instead: nothing of its own is left to check.
    services.relay_decide(actor=world.manager_a, campaign=national, unit=world.unit_a, relay=True)
    assert content_problems(national) == []
    assert approved_content(national, world.unit_a).values == {}


def test_the_content_gate_reads_a_few_queries_whatever_the_number_of_relays(
    world, django_assert_max_num_queries
):
    template = email_template(world)
    national = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Printemps", template=template
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(hours=2)
    )
    for unit, manager in ((world.unit_a, world.manager_a), (world.unit_b, world.manager_b)):
        local = local_version_save(
            actor=manager, unit=unit, template=template, values={"headline": unit.name}
        )
        services.relay_decide(
            actor=manager, campaign=national, unit=unit, relay=True, local_version=local
        )
    rules(world, restricted_patterns=["lille"])
    with django_assert_max_num_queries(4):  # campaign, relays, versions, guardrails
        problems = content_problems(national)
    assert [p.unit_path for p in problems] == [world.unit_b.path]
    with django_assert_max_num_queries(3):  # what one unit sends: campaign, relay, versions
        assert approved_content(national, world.unit_a).values == {"headline": "Lyon"}


# -- the campaign page ---------------------------------------------------------------------------


def test_the_campaign_page_says_why_it_stopped_in_english_and_french(world, client):
    contacts(world.unit_a, 1)  # an empty audience would finish at once, with nothing to stop
    campaign, _local = store_campaign(world, email_template(world))
    services.campaign_launch(actor=world.manager_a, campaign=campaign)
    rules(world, restricted_patterns=["soldes"])
    campaign_stop_for_content(campaign=campaign, problems=content_problems(campaign))
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    url = f"/campaigns/{campaign.public_id}/"
    with translation.override("en"):  # the French request must not leave French active
        english = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        french = client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Sending stopped before its next message" in english
    assert (
        "<strong>Lyon’s version of “Saison”</strong> — Zone “Headline” uses “soldes”, which head "
        "office does not allow.</li>"
    ) in english
    assert "Back to draft, to change its content" in english
    assert "L'envoi s'est arrêté avant son prochain message" in french
    assert (
        "<strong>Version de Lyon du modèle « Saison »</strong> — La zone « Headline » utilise "
        "« soldes », que le siège n&#x27;autorise pas.</li>"
    ) in french
    rules(world, restricted_patterns=[])
    with translation.override("en"):
        fixed = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "These problems are solved: resume sending" in fixed
    assert "Back to draft, to change its content" in fixed  # the store may still change it


def test_a_store_sees_a_national_stop_without_another_stores_problem(world, client):
    template = email_template(world)
    national = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Printemps", template=template
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(hours=2)
    )
    lille = local_version_save(
        actor=world.manager_b, unit=world.unit_b, template=template, values={"headline": "Lille"}
    )
    services.relay_decide(
        actor=world.manager_b, campaign=national, unit=world.unit_b, relay=True, local_version=lille
    )
    rules(world, restricted_patterns=["lille"])
    assert campaign_stop_for_content(campaign=national, problems=content_problems(national))
    url = f"/campaigns/{national.public_id}/"
    pages = {}
    for person in (world.manager_a, world.hq_admin):
        client.force_login(person)
        with translation.override("en"):
            html = client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
        pages[person.email] = html[html.index('id="content-stop"') : html.index('class="row g-4"')]
    lyon, hq = pages[world.manager_a.email], pages[world.hq_admin.email]
    assert "Sending stopped before its next message" in lyon
    assert "Lille" not in lyon and "solved" not in lyon, lyon
    assert "<strong>Lille’s version of “Saison”</strong> — Zone “Headline” uses “lille”" in hq


# -- item 2: offers' and products' links ---------------------------------------------------------

OFFER_SOURCE = EMAIL_SOURCE.replace(
    "</mj-text></mj-column>",
    '</mj-text><ens-zone name="deal" kind="offer" label="Offre" />'
    '<ens-zone name="item" kind="product" label="Produit" /></mj-column>',
)


@pytest.fixture
def offer_template(world):
    from enseigne.brand.services import template_create

    return template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Offres",
        source=OFFER_SOURCE,
        subject="Offres",
    )


def own(world, kind, url, **data):
    fields = {"title": "Promo"} if kind == "offer" else {"sku": "A1", "name": "Lampe"}
    return asset_create(
        actor=world.manager_a,
        node=world.unit_a,
        own=True,
        kind=kind,
        name=f"{kind} {url}",
        data={**fields, "url": url, **data},
    )


def test_an_offer_or_product_link_to_another_domain_makes_the_version_unusable(
    world, offer_template
):
    rules(world, allowed_link_domains=["maison-lumiere.fr"])
    offer = own(world, Asset.Kind.OFFER, "https://evil.example/promo")
    product = own(world, Asset.Kind.PRODUCT, "https://maison-lumiere.fr@evil.example/lampe")
    local = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=offer_template,
        values={"deal": {"asset": str(offer.public_id)}, "item": {"asset": str(product.public_id)}},
    )
    assert not local.is_usable
    assert local.problems == [
        "Zone “Offre” links to https://evil.example/promo; links may only go to maison-lumiere.fr.",
        "Zone “Produit” links to https://maison-lumiere.fr@evil.example/lampe; links may only go "
        "to maison-lumiere.fr.",
    ]
    good_offer = own(world, Asset.Kind.OFFER, "https://shop.maison-lumiere.fr/promo")
    good_product = own(world, Asset.Kind.PRODUCT, "https://MAISON-LUMIERE.FR./lampe")
    fixed = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=offer_template,
        values={
            "deal": {"asset": str(good_offer.public_id)},
            "item": {"asset": str(good_product.public_id)},
        },
        local=local,
    )
    assert (fixed.is_usable, fixed.problems) == (True, [])


def test_an_offer_edited_after_approval_keeps_the_approved_link(world, offer_template, client):
    rules(world, allowed_link_domains=["maison-lumiere.fr"])
    offer = own(world, Asset.Kind.OFFER, "https://maison-lumiere.fr/promo")
    local = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=offer_template,
        values={"deal": {"asset": str(offer.public_id)}},
    )
    segment = segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE)
    campaign = services.campaign_create_local(
        actor=world.manager_a,
        unit=world.unit_a,
        channel="email",
        name="Offre",
        template=offer_template,
        local_version=local,
        segment=segment,
    )
    services.campaign_submit(actor=world.manager_a, campaign=campaign)
    services.campaign_approve(actor=world.region_manager, campaign=campaign)
    # The store edits its own offer in the library: its local version shows the new link...
    asset_update(
        actor=world.manager_a,
        asset=offer,
        data={"title": "Promo", "url": "https://evil.example/promo"},
    )
    assert not LocalVersion.objects.get(pk=local.pk).is_usable
    # ...but what was approved, and is sent, is the link approved.
    assert approved_content(campaign, world.unit_a).values["deal"]["url"] == (
        "https://maison-lumiere.fr/promo"
    )
    assert content_problems(campaign) == []
    client.force_login(world.manager_a)  # the campaign page's preview shows what is sent
    preview = client.get(f"/campaigns/{campaign.public_id}/message/").content.decode()
    assert "https://maison-lumiere.fr/promo" in preview and "evil.example" not in preview
    # Head office narrowing the domains afterwards stops it.
    rules(world, allowed_link_domains=["boutique.maison-lumiere.fr"])
    assert [p.message for p in content_problems(campaign)] == [
        "Zone “Offre” links to https://maison-lumiere.fr/promo; links may only go to "
        "boutique.maison-lumiere.fr."
    ]


ALLOWED = ["maison-lumiere.fr", "café.fr"]
ZONES = [
    Zone(name="deal", kind="offer", label="Offre"),
    Zone(name="body", kind="rich", label="Message"),
]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://maison-lumiere.fr/promo", True),
        ("http://maison-lumiere.fr", True),
        ("https://shop.maison-lumiere.fr/x", True),  # a subdomain
        ("HTTPS://MAISON-LUMIERE.FR/X", True),  # an uppercase host
        ("https://Shop.Maison-Lumiere.Fr:8443/x", True),  # a port
        ("https://maison-lumiere.fr./x", True),  # the trailing dot of a fully qualified name
        ("https://user@maison-lumiere.fr/x", True),
        ("https://xn--caf-dma.fr/", True),  # IDN, punycode
        ("https://CAFÉ.fr/menu", True),  # IDN, Unicode and uppercase
        ("https://ｍaison-lumiere.fr/", True),  # fullwidth letter: browsers read it as "m"
        ("https://maison-lumiere.fr@evil.example/x", False),  # userinfo trick
        ("https://maison-lumiere.fr:443@evil.example/", False),
        ("https://evil.example\\@maison-lumiere.fr/", False),  # browsers read \ as /
        ("https://evil.example#@maison-lumiere.fr", False),
        ("https://evil.example?@maison-lumiere.fr", False),
        ("https://maison-lumiere.fr.evil.example/", False),
        ("https://evilmaison-lumiere.fr/", False),
        ("https://evil.example./", False),
        ("https://maison-lumi\u0435re.fr/", False),  # a Cyrillic "е": another domain (IDN)
        ("https://stra\u00dfe.maison-lumiere.fr/", False),  # ß: read differently by browsers
        ("https://maison%2dlumiere.fr/", False),  # percent-encoded host
        ("https://maison-lumiere.fr\t.evil.example/", False),  # a tab browsers drop
        ("javascript:alert(1)", False),
        ("JavaScript://maison-lumiere.fr/%0aalert(1)", False),
        ("//evil.example/x", False),  # protocol-relative: no base URL in an e-mail
        ("//maison-lumiere.fr/x", False),
        ("https:evil.example", False),
        ("/relative/path", False),
        ("ftp://maison-lumiere.fr/x", False),
        ("http://[::1]/", False),
    ],
)
def test_link_shapes_in_offers_and_rich_zones(url, allowed):
    guardrails = Guardrails(
        allowed_link_domains=ALLOWED, require_logo=False, require_legal_footer=False
    )
    for values in ({"deal": {"asset": "", "url": url}}, {"body": f'<a href="{url}">x</a>'}):
        problems = checks.check(ZONES, values, source="", guardrails=guardrails, assets={})
        expected = [] if allowed else [f"links to {url};"]
        assert [p[p.index("links to ") : p.index(";") + 1] for p in problems] == expected, values


@pytest.mark.parametrize(
    ("kind", "data", "word"),
    [
        (Asset.Kind.OFFER, {"title": "Tout est GRATUIT"}, "gratuit"),
        (Asset.Kind.OFFER, {"title": "Promo", "text": "Livraison gratuit !"}, "gratuit"),
        (Asset.Kind.OFFER, {"title": "Promo", "legal": "Essai gratuit."}, "gratuit"),
        (Asset.Kind.OFFER, {"title": "Promo", "cta": "C'est gratuit"}, "gratuit"),
        (Asset.Kind.OFFER, {"title": "Promo", "price": "0 € (gratuit)"}, "gratuit"),
        (Asset.Kind.PRODUCT, {"sku": "A1", "name": "Lampe (gratuit)"}, "gratuit"),
        (Asset.Kind.PRODUCT, {"sku": "A1", "name": "Lampe", "cta": "Gratuit !"}, "gratuit"),
        (Asset.Kind.OFFER, {"title": "Jusqu'à -70 %"}, "re:-[5-9]\\d ?%"),
    ],
)
def test_a_restricted_word_in_an_offer_or_product_makes_the_version_unusable(
    world, offer_template, kind, data, word
):
    """A store's own offer or product prints its title, text, legal lines and button: head
    office's restricted words are refused there as in a text zone."""
    rules(world, restricted_patterns=[word])
    item = own(world, kind, "https://maison-lumiere.fr/x", **data)
    zone = "deal" if kind == Asset.Kind.OFFER else "item"
    local = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=offer_template,
        values={zone: {"asset": str(item.public_id)}},
    )
    label = "Offre" if zone == "deal" else "Produit"
    shown = word[3:] if word.startswith("re:") else word
    assert not local.is_usable
    assert local.problems == [f"Zone “{label}” uses “{shown}”, which head office does not allow."]


def test_a_restricted_word_in_an_address_or_an_id_is_not_a_word(world, offer_template):
    rules(world, restricted_patterns=["gratuit"])
    item = own(world, Asset.Kind.OFFER, "https://maison-lumiere.fr/gratuit", title="Promo")
    local = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=offer_template,
        values={"deal": {"asset": str(item.public_id)}},
    )
    assert (local.is_usable, local.problems) == (True, [])


# -- head office's version sent as it stands ---------------------------------------------------

REQUIRED_OFFER_SOURCE = EMAIL_SOURCE.replace(
    "</mj-column>",
    '</mj-column><mj-column><ens-zone name="offer" kind="offer" label="Offre" required="true" />'
    "</mj-column>",
    1,
)


def test_head_offices_version_with_an_empty_required_zone_is_not_sent(world):
    """Units that did not relay send head office's version with its defaults: a required
    library zone it leaves empty stops the launch (it used to leave as an empty block)."""
    template = email_template(world)
    template_publish(actor=world.hq_admin, template=template, source=REQUIRED_OFFER_SOURCE)
    contacts(world.unit_a, 2)
    national = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Fêtes", template=template
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(hours=2)
    )
    problems = content_problems(national)
    assert [(p.unit_path, p.subject, p.message) for p in problems] == [
        ("", "head office’s version of “Saison”", "Zone “Offre” needs an item from the library.")
    ]
    with pytest.raises(ValidationError, match="needs an item from the library"):
        services.campaign_launch(actor=world.hq_admin, campaign=national)
    assert not Recipient.objects.filter(campaign=national).exists()


def test_head_offices_version_without_required_zones_passes_and_prints_no_empty_block(world):
    template = email_template(world)
    template_publish(
        actor=world.hq_admin,
        template=template,
        source=REQUIRED_OFFER_SOURCE.replace(' required="true"', ""),
    )
    national = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Fêtes", template=template
    )
    assert content_problems(national) == []
    template.refresh_from_db()
    html, _text = email_preview(template.current, {}, world.unit_a)
    assert "ens-offer" in html and "<h3" not in html  # the empty offer prints nothing
