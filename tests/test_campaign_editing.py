"""A marketer works on campaigns: a draft is edited until it is submitted, any campaign is
duplicated into a new draft of its owner, the national form chooses its audience."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from enseigne.brand.services import local_version_save
from enseigne.campaigns import services
from enseigne.campaigns.models import Campaign
from enseigne.contacts.services import segment_save
from tests.campaign_helpers import EVERYONE, email_template, local_campaign, sms_template
from tests.factories import PASSWORD

S = Campaign.Status
LATER = "2099-03-14T09:30"


def _login(client, user):
    assert client.login(username=user.email, password=PASSWORD)


def _state(campaign):
    campaign.refresh_from_db()
    return (
        campaign.name,
        campaign.status,
        campaign.send_at,
        campaign.segment_id,
        campaign.local_version_id,
        campaign.channel,
        campaign.template_id,
    )


def _messages(response):
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def draft(world):
    campaign = local_campaign(world)
    return campaign


def test_a_store_edits_its_draft_name_audience_version_and_date(client, world, draft):
    newer = segment_save(actor=None, owner=world.unit_a, name="Fidèles", rules=EVERYONE)
    version = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=draft.template,
        values={"headline": "Nocturne"},
        name="Nocturne",
    )
    _login(client, world.manager_a)
    page = client.get(reverse("campaign_edit", args=[draft.public_id]))
    assert page.status_code == 200
    assert page.context["form"].initial["segment"] == draft.segment_id
    response = client.post(
        reverse("campaign_edit", args=[draft.public_id]),
        {
            "name": "  Nocturne de mars ",
            "channel": "email",
            "template": draft.template_id,
            "local_version": version.pk,
            "segment": newer.pk,
            "send_at": LATER,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("campaign_detail", args=[draft.public_id])
    name, status, send_at, segment, local, channel, _template = _state(draft)
    assert (name, status, segment, local, channel) == (
        "Nocturne de mars",
        S.DRAFT,
        newer.pk,
        version.pk,
        "email",
    )
    assert timezone.localtime(send_at).strftime("%Y-%m-%dT%H:%M") == LATER


def test_a_draft_changes_channel_with_a_template_of_that_channel(client, world, draft):
    sms = sms_template(world)
    _login(client, world.hq_admin)  # the test network lets only head office send SMS
    url = reverse("campaign_edit", args=[draft.public_id])
    data = {"name": "Flash", "channel": "sms", "template": sms.pk, "segment": draft.segment_id}
    # An e-mail template on the SMS channel is refused, naming the template field.
    wrong = client.post(url, {**data, "template": draft.template_id})
    assert wrong.status_code == 400
    assert "template" in wrong.context["form"].errors
    assert _state(draft)[5] == "email"
    assert client.post(url, data).status_code == 302
    assert _state(draft)[5:] == ("sms", sms.pk)


@pytest.mark.parametrize(
    "bad",
    [
        {"send_at": "demain"},
        {"send_at": "2099-02-30T10:00"},
        {"segment": "999999"},
        {"template": "999999"},
        {"channel": "fax"},
        {"name": "x" * 201},
        {"local_version": "not-a-number"},
    ],
)
def test_a_messy_edit_is_refused_field_by_field_and_changes_nothing(client, world, draft, bad):
    _login(client, world.manager_a)
    before = _state(draft)
    data = {
        "name": "N",
        "channel": "email",
        "template": draft.template_id,
        "segment": draft.segment_id,
        **bad,
    }
    response = client.post(reverse("campaign_edit", args=[draft.public_id]), data)
    assert response.status_code == 400
    assert set(bad) <= set(response.context["form"].errors)
    assert _state(draft) == before


def test_another_units_segment_or_version_cannot_be_slipped_into_a_draft(client, world, draft):
    theirs = segment_save(actor=None, owner=world.unit_b, name="B", rules=EVERYONE)
    their_version = local_version_save(
        actor=world.manager_b, unit=world.unit_b, template=draft.template, values={}
    )
    _login(client, world.manager_a)
    before = _state(draft)
    url = reverse("campaign_edit", args=[draft.public_id])
    base = {"name": "N", "channel": "email", "template": draft.template_id}
    for extra in ({"segment": theirs.pk}, {"local_version": their_version.pk}):
        response = client.post(url, {**base, **extra})
        assert response.status_code == 400, extra
        assert _state(draft) == before
    # Even through the service, whoever calls it.
    with pytest.raises(services.ValidationError):
        services.campaign_update(actor=world.hq_admin, campaign=draft, segment=theirs)


@pytest.mark.parametrize("status", [S.SUBMITTED, S.APPROVED, S.SCHEDULED, S.SENDING, S.FINISHED])
def test_editing_a_campaign_past_draft_is_refused_with_the_reason(client, world, draft, status):
    Campaign.objects.filter(pk=draft.pk).update(status=status)
    _login(client, world.manager_a)
    before = _state(draft)
    url = reverse("campaign_edit", args=[draft.public_id])
    for response in (
        client.get(url, follow=True),
        client.post(url, {"name": "Changé", "channel": "email"}, follow=True),
    ):
        assert response.redirect_chain[-1][0] == reverse("campaign_detail", args=[draft.public_id])
        label = Campaign.Status(status).label.lower()
        assert any(label in m and "uplicate" in m for m in _messages(response)), _messages(response)
    assert _state(draft) == before
    with pytest.raises(services.ValidationError, match=label):
        services.campaign_update(actor=world.manager_a, campaign=draft, name="Changé")


def test_an_edit_racing_a_submission_is_refused(world, draft):
    """The in-memory campaign still says draft; the row was submitted meanwhile."""
    stale = Campaign.objects.get(pk=draft.pk)
    services.campaign_submit(actor=world.manager_a, campaign=draft)
    with pytest.raises(services.ValidationError, match="waiting for approval"):
        services.campaign_update(actor=world.manager_a, campaign=stale, name="Trop tard")
    assert Campaign.objects.get(pk=draft.pk).name == "Local lyon"


def test_a_rejected_campaign_is_edited_back_to_draft(world, draft):
    services.campaign_submit(actor=world.manager_a, campaign=draft)
    services.campaign_reject(actor=world.region_manager, campaign=draft, comment="Trop tôt")
    services.campaign_update(actor=world.manager_a, campaign=draft, name="Plus tard")
    draft.refresh_from_db()
    assert (draft.status, draft.name, draft.decision_comment) == (S.DRAFT, "Plus tard", "")


def test_the_date_is_set_before_approval_and_kept_through_it(world, draft):
    when = timezone.now() + dt.timedelta(days=3)
    services.campaign_update(actor=world.manager_a, campaign=draft, send_at=when)
    services.campaign_submit(actor=world.manager_a, campaign=draft)
    services.campaign_approve(actor=world.region_manager, campaign=draft)
    draft.refresh_from_db()
    assert (draft.status, draft.send_at) == (S.APPROVED, when)


def test_another_units_draft_is_404_to_edit_or_duplicate_and_staff_get_403(client, world, draft):
    before = (_state(draft), Campaign.objects.count())
    _login(client, world.manager_b)
    for name, method in (
        ("campaign_edit", client.get),
        ("campaign_edit", client.post),
        ("campaign_duplicate", client.post),
    ):
        assert method(reverse(name, args=[draft.public_id])).status_code == 404
    client.logout()
    _login(client, world.staff_a)
    assert client.get(reverse("campaign_edit", args=[draft.public_id])).status_code == 403
    assert client.post(reverse("campaign_duplicate", args=[draft.public_id])).status_code == 403
    assert (_state(draft), Campaign.objects.count()) == before


@pytest.mark.parametrize("status", [S.DRAFT, S.SUBMITTED, S.FINISHED, S.CANCELLED])
def test_duplicate_copies_any_campaign_into_a_new_draft_of_the_same_unit(
    client, world, draft, status
):
    when = timezone.now() + dt.timedelta(days=2)
    Campaign.objects.filter(pk=draft.pk).update(status=status, send_at=when)
    _login(client, world.manager_a)
    response = client.post(reverse("campaign_duplicate", args=[draft.public_id]))
    copy = Campaign.objects.exclude(pk=draft.pk).get()
    assert response["Location"] == reverse("campaign_edit", args=[copy.public_id])
    assert (copy.status, copy.owner_id, copy.kind, copy.send_at, copy.launched_at) == (
        S.DRAFT,
        world.unit_a.pk,
        "local",
        None,
        None,
    )
    assert (copy.template_id, copy.segment_id, copy.local_version_id, copy.channel) == (
        draft.template_id,
        draft.segment_id,
        draft.local_version_id,
        draft.channel,
    )
    assert copy.name == "Local lyon (copy)"
    assert Campaign.objects.get(pk=draft.pk).status == status  # the original is untouched


def test_hqs_national_campaign_is_duplicated_into_an_hq_draft_not_by_a_store(client, world):
    world_rules = {"match": "all", "rules": [{"field": "tag", "op": "has", "value": "vip"}]}
    national = services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name="Fêtes",
        template=email_template(world),
        target_node=world.region_a,
        audience_rules=world_rules,
        allow_opt_out=False,
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(days=5)
    )
    # The store sees the national campaign, but it is head office's to copy.
    _login(client, world.manager_a)
    assert client.get(reverse("campaign_detail", args=[national.public_id])).status_code == 200
    assert client.post(reverse("campaign_duplicate", args=[national.public_id])).status_code == 403
    assert Campaign.objects.count() == 1
    client.logout()
    _login(client, world.hq_admin)
    client.post(reverse("campaign_duplicate", args=[national.public_id]))
    copy = Campaign.objects.exclude(pk=national.pk).get()
    assert (copy.kind, copy.owner_id, copy.status, copy.target_node_id) == (
        "national",
        world.root.pk,
        S.DRAFT,
        world.region_a.pk,
    )
    assert (copy.audience_rules, copy.allow_opt_out, copy.relay_deadline) == (
        world_rules,
        False,
        None,
    )
    assert not copy.relays.exists()


def test_the_national_form_chooses_hq_segment_rules_region_and_tag(client, world):
    rules = {"match": "all", "rules": [{"field": "tag", "op": "has", "value": "vip"}]}
    hq_segment = segment_save(actor=None, owner=world.root, name="Clients VIP", rules=rules)
    segment_save(actor=None, owner=world.unit_a, name="Lyon only", rules=EVERYONE)
    template = email_template(world)
    _login(client, world.hq_admin)
    page = client.get(reverse("campaign_new") + "?kind=national")
    choices = dict(page.context["form"].fields["audience_segment"].choices)
    assert choices == {
        "": "Every contact who consented to the channel",
        str(hq_segment.public_id): "Clients VIP",
    }
    response = client.post(
        reverse("campaign_new") + "?kind=national",
        {
            "channel": "email",
            "template": template.pk,
            "name": "VIP",
            "target_node": world.region_a.pk,
            "audience_segment": str(hq_segment.public_id),
            "allow_opt_out": "on",
        },
    )
    assert response.status_code == 302
    national = Campaign.objects.get()
    assert (national.audience_rules, national.target_node_id) == (rules, world.region_a.pk)
    # Its edit page shows the chosen segment and can widen it back to everyone.
    edit = client.get(reverse("campaign_edit", args=[national.public_id]))
    assert edit.context["form"].fields["audience_segment"].initial == str(hq_segment.public_id)
    client.post(
        reverse("campaign_edit", args=[national.public_id]),
        {"channel": "email", "template": template.pk, "name": "VIP", "audience_segment": ""},
    )
    national.refresh_from_db()
    assert (national.audience_rules, national.target_node_id) == ({}, None)
    # A unit's segment is no choice for the network, even typed by hand.
    unit_segment = segment_save(actor=None, owner=world.unit_b, name="B", rules=EVERYONE)
    bad = client.post(
        reverse("campaign_edit", args=[national.public_id]),
        {
            "channel": "email",
            "template": template.pk,
            "name": "VIP",
            "audience_segment": str(unit_segment.public_id),
        },
    )
    assert bad.status_code == 400 and "audience_segment" in bad.context["form"].errors


def test_rules_set_through_the_api_are_kept_by_an_edit_that_does_not_touch_them(client, world):
    rules = {"match": "all", "rules": [{"field": "tag", "op": "has", "value": "api"}]}
    template = email_template(world)
    national = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="API", template=template, audience_rules=rules
    )
    _login(client, world.hq_admin)
    form = client.get(reverse("campaign_edit", args=[national.public_id])).context["form"]
    assert form.fields["audience_segment"].initial == "keep"
    client.post(
        reverse("campaign_edit", args=[national.public_id]),
        {"channel": "email", "template": template.pk, "name": "API 2", "audience_segment": "keep"},
    )
    national.refresh_from_db()
    assert (national.name, national.audience_rules) == ("API 2", rules)


def _relayed_national(world):
    from decimal import Decimal

    from enseigne.campaigns.models import Budget, SendingPolicy
    from enseigne.campaigns.selectors import policy_for
    from tests.campaign_helpers import contacts

    SendingPolicy.objects.filter(pk=policy_for(world.root).pk).update(
        email_thousand_cost=Decimal("2000")
    )
    for unit in (world.unit_a, world.unit_a2, world.unit_b):
        contacts(unit, 2)
        Budget.objects.create(
            unit=unit,
            unit_path=unit.path,
            starts_on=timezone.localdate() - dt.timedelta(days=40),
            ends_on=timezone.localdate() + dt.timedelta(days=40),
            amount=Decimal("100.00"),
        )
    template = email_template(world)
    national = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Printemps", template=template
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(days=2)
    )
    for unit, manager, words in (
        (world.unit_a, world.manager_a, "Spécial Lyon"),
        (world.unit_b, world.manager_b, "Braderie de Lille"),
    ):
        version = local_version_save(
            actor=manager, unit=unit, template=template, values={"headline": words}
        )
        services.relay_decide(
            actor=manager, campaign=national, unit=unit, relay=True, local_version=version
        )
    return national


def test_each_store_previews_the_national_campaign_with_its_own_footer_and_version(client, world):
    national = _relayed_national(world)
    url = reverse("campaign_message", args=[national.public_id])
    _login(client, world.manager_b)
    lille = client.get(url).content.decode()
    assert "Braderie de Lille" in lille and "— Lille." in lille
    assert "Spécial Lyon" not in lille and "— Lyon." not in lille
    client.logout()
    _login(client, world.manager_a)
    lyon = client.get(url).content.decode()
    assert "Spécial Lyon" in lyon and "— Lyon." in lyon and "Lille" not in lyon


def test_a_store_sees_its_own_budget_only_in_the_national_audience(client, world):
    national = _relayed_national(world)
    url = reverse("campaign_preview", args=[national.public_id])
    _login(client, world.manager_b)
    lines = client.get(url).context["preview"].budgets
    assert [b["unit"].code for b in lines] == ["lille"]
    client.logout()
    _login(client, world.region_manager)  # a region sees its own units' budgets
    assert [b["unit"].code for b in client.get(url).context["preview"].budgets] == [
        "lyon",
        "grenoble",
    ]
    client.logout()
    _login(client, world.hq_admin)
    codes = [b["unit"].code for b in client.get(url).context["preview"].budgets]
    assert sorted(codes) == ["grenoble", "lille", "lyon"]
