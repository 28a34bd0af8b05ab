"""The best-practice gallery: the network's best local campaigns, copied into drafts or promoted by HQ."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from enseigne.analytics import rollups, selectors
from enseigne.brand.models import LocalVersion, Template
from enseigne.brand.services import local_version_save, template_create
from enseigne.brand.zones import with_defaults
from enseigne.campaigns.models import Campaign
from enseigne.campaigns.services import campaign_create_local
from enseigne.delivery import events
from enseigne.delivery.models import Event
from tests.campaign_helpers import contacts

SOURCE = (
    '<mjml><mj-body><mj-section><mj-column><mj-text><ens-zone name="headline" kind="text" max="80">'
    'Titre</ens-zone></mj-text><mj-text><ens-zone name="details" kind="rich" max="400">Texte</ens-zone>'
    '</mj-text><mj-text><a href="{{ links.unsubscribe }}">Désabonnement</a></mj-text>'
    "</mj-column></mj-section></mj-body></mjml>"
)


def _finished(world, unit, manager, name, values, sent, clickers):
    template = Template.objects.filter(name="Atelier").first() or template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Atelier",
        source=SOURCE,
        subject="S",
    )
    version = local_version_save(
        actor=world.hq_admin, unit=unit, template=template, values=values, name=name
    )
    campaign = campaign_create_local(
        actor=manager,
        unit=unit,
        channel="email",
        name=name,
        template=template,
        local_version=version,
    )
    when = timezone.now() - dt.timedelta(days=3)
    Campaign.objects.filter(pk=campaign.pk).update(
        status=Campaign.Status.FINISHED, launched_at=when
    )
    rows = [
        events.row(
            occurred_at=when,
            kind=Event.Kind.SENT,
            channel="email",
            campaign_id=campaign.pk,
            unit_id=unit.pk,
            unit_path=unit.path,
            recipient_id=i,
        )
        for i in range(sent)
    ]
    rows += [
        events.row(
            occurred_at=when,
            kind=Event.Kind.CLICKED,
            channel="email",
            campaign_id=campaign.pk,
            unit_id=unit.pk,
            unit_path=unit.path,
            recipient_id=i,
        )
        for i in range(clickers)
    ]
    events.write(rows)
    return campaign


@pytest.fixture
def shown(world):
    lille = _finished(
        world,
        world.unit_b,
        world.manager_b,
        "Atelier bougies · Lille",
        {"headline": "Atelier bougies {{ contact.email }}", "details": "<p>Places limitées</p>"},
        sent=1000,
        clickers=150,
    )
    proven = _finished(
        world,
        world.unit_a2,
        world.hq_admin,
        "Brocante · Grenoble",
        {"headline": "Brocante"},
        sent=4000,
        clickers=520,
    )
    lucky = _finished(
        world,
        world.unit_a,
        world.manager_a,
        "Petit envoi · Lyon",
        {"headline": "Petit"},
        sent=150,
        clickers=60,
    )  # 40 %, but under the minimum volume
    rollups.refresh()
    return lille, proven, lucky


def test_the_gallery_ranks_by_the_low_end_of_the_interval_and_keeps_contacts_out(
    world, shown, client
):
    lille, proven, lucky = shown
    secret = contacts(world.unit_b, 3)
    entries = selectors.gallery()
    assert [e["campaign"].pk for e in entries] == [
        lille.pk,
        proven.pk,
    ]  # 15 % of 1,000 beats 13 % of 4,000
    assert lucky.pk not in {e["campaign"].pk for e in entries}
    client.force_login(world.manager_a)
    page = client.get("/gallery/").content.decode()
    preview = client.get(f"/gallery/{lille.public_id}/preview/").content.decode()
    assert "Atelier bougies" in page and "Places limitées" in preview
    for contact in secret:
        for text in (page, preview):
            assert contact.email not in text and contact.last_name not in text


def test_a_unit_copies_a_campaign_into_its_drafts(world, shown, client):
    lille, _proven, _lucky = shown
    client.force_login(world.manager_a)
    answer = client.post(f"/gallery/{lille.public_id}/copy/")
    assert answer.status_code == 302
    draft = Campaign.objects.exclude(pk=lille.pk).get(owner=world.unit_a, name="Atelier bougies")
    assert (
        draft.status == Campaign.Status.DRAFT
        and draft.segment is None
        and answer["Location"].endswith(f"/campaigns/{draft.public_id}/edit/")
    )
    copied = LocalVersion.objects.get(pk=draft.local_version_id)
    assert copied.unit_id == world.unit_a.pk
    assert copied.values["headline"] == "Atelier bougies {{ contact.email }}"
    assert "Lille" in copied.name
    client.force_login(world.staff_a)
    assert client.post(f"/gallery/{lille.public_id}/copy/").status_code == 403
    # A campaign that is not in the gallery (a draft) cannot be copied, whoever owns it.
    client.force_login(world.manager_a)
    assert client.post(f"/gallery/{draft.public_id}/copy/").status_code == 404


@pytest.mark.parametrize(
    "values",
    [
        None,  # sent with head office's defaults: no version of its own
        {},
        {"details": "<p>Programme seulement</p>"},
        {"headline": "   "},
    ],
)
def test_a_starting_point_with_unfinished_words_is_a_draft_to_complete(world, client, values):
    """A required zone the original left empty does not stop the copy: the draft keeps the
    version for the unit to complete, and submitting names what is missing."""
    from enseigne.campaigns.services import campaign_submit
    from enseigne.contacts.services import segment_save
    from tests.campaign_helpers import EVERYONE

    template = template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Invitation",
        source=SOURCE.replace('max="80">', 'max="80" label="Titre" required="true">'),
        subject="S",
    )
    source = campaign_create_local(
        actor=world.hq_admin,
        unit=world.unit_b,
        channel="email",
        name="Soirée · Lille",
        template=template,
        local_version=None
        if values is None
        else local_version_save(
            actor=world.hq_admin, unit=world.unit_b, template=template, values=values
        ),
        unfinished_version=True,
    )
    Campaign.objects.filter(pk=source.pk).update(status=Campaign.Status.FINISHED)
    client.force_login(world.manager_a)
    answer = client.post(f"/gallery/{source.public_id}/copy/")
    draft = Campaign.objects.get(owner=world.unit_a)
    assert answer["Location"] == f"/campaigns/{draft.public_id}/edit/"
    assert not draft.local_version.is_usable
    segment = segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE)
    client.post(
        f"/campaigns/{draft.public_id}/edit/",
        {
            "name": "Soirée",
            "channel": "email",
            "template": template.pk,
            "local_version": draft.local_version_id,
            "segment": segment.pk,
            "send_at": "2099-01-02T10:00",
        },
    )
    draft.refresh_from_db()
    assert (draft.segment_id, draft.send_at.year) == (segment.pk, 2099)
    with pytest.raises(ValidationError, match="Titre"):
        campaign_submit(actor=world.manager_a, campaign=draft)


def test_hq_promotes_a_campaign_into_a_network_template_crediting_the_unit(world, shown, client):
    lille, _proven, _lucky = shown
    client.force_login(world.hq_admin)
    assert client.post(f"/gallery/{lille.public_id}/promote/").status_code == 302
    template = Template.objects.get(name__startswith="Atelier bougies")
    assert world.unit_b.name in template.description and template.shared_path == world.root.path
    source = template.current.source
    # The unit's words are the zones' defaults, and stay words: no Liquid braces survive.
    assert "Atelier bougies &#123;&#123; contact.email &#125;&#125;" in source
    assert "<p>Places limitées</p>" in source
    assert "{{ links.unsubscribe }}" in source  # HQ's own Liquid is untouched
    client.force_login(world.manager_b)
    assert client.post(f"/gallery/{lille.public_id}/promote/").status_code == 403


def test_with_defaults_changes_only_text_and_rich_zones():
    source = (
        '<ens-zone name="a" kind="text">A</ens-zone><ens-zone name="b" kind="image" /> '
        '<ens-zone name="c" kind="rich">C</ens-zone>'
    )
    out = with_defaults(source, {"a": "<b>x</b>", "b": "ignored", "c": "<em>y</em>{% raw %}"})
    assert '<ens-zone name="a" kind="text">&lt;b&gt;x&lt;/b&gt;</ens-zone>' in out
    assert '<ens-zone name="b" kind="image" />' in out
    assert '<ens-zone name="c" kind="rich"><em>y</em>&#123;% raw %&#125;</ens-zone>' in out
    assert with_defaults(
        '<ens-zone name="m" kind="text">M</ens-zone>', {"m": "{x} <y>"}, channel="sms"
    ) == ('<ens-zone name="m" kind="text">(x) ‹y›</ens-zone>')
