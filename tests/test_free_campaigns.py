"""Free campaigns: a unit's own text in the brand's frame, only where the permission tree allows."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from enseigne.brand.free import free_frame
from enseigne.brand.selectors import templates_for_user
from enseigne.brand.services import can_manage_template, guardrails_update, local_version_save
from enseigne.campaigns import services
from enseigne.campaigns.models import Campaign
from enseigne.contacts.services import segment_save
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from enseigne.network import services as network
from enseigne.network.models import User
from tests.campaign_helpers import EVERYONE, contacts, email_template, launched, sms_template


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def _allow_pilots(world):
    """HQ widens free campaigns to units tagged pilot (Lyon is one, Grenoble is not)."""
    network.capability_rule_add(
        actor=world.hq_admin,
        node=world.root,
        capability="create_free_campaigns",
        effect="allow",
        unit_tag="pilot",
    )
    return User.objects.get(pk=world.manager_a.pk)


def _free_campaign(world, manager, values, *, channel="email"):
    frame = free_frame(actor=manager, unit=world.unit_a, channel=channel)
    text = local_version_save(
        actor=manager, unit=world.unit_a, template=frame, values=values, name="Portes ouvertes"
    )
    segment = segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE)
    return services.campaign_create_local(
        actor=manager,
        unit=world.unit_a,
        channel=channel,
        name="Portes ouvertes",
        template=frame,
        local_version=text,
        segment=segment,
    )


def test_only_units_the_permission_tree_allows_write_free_campaigns(world):
    # A unit manager's role does not include it: no frame, and HQ's frame cannot be borrowed.
    with pytest.raises(PermissionDenied):
        free_frame(actor=world.manager_a, unit=world.unit_a, channel="email")
    manager = _allow_pilots(world)
    frame = free_frame(actor=manager, unit=world.unit_a, channel="email")
    assert frame.is_free and frame.shared_path == world.unit_a.path
    assert (
        free_frame(actor=manager, unit=world.unit_a, channel="email") == frame
    )  # one frame per unit and channel
    grenoble = network.user_create(
        actor=None, email="manager.a2@example.com", password="a-long-password-1"
    )
    network.membership_grant(
        actor=None,
        user=grenoble,
        node=world.unit_a2,
        role=network.builtin_roles_ensure()["unit_manager"],
    )
    with pytest.raises(PermissionDenied):  # Grenoble is not a pilot
        free_frame(actor=grenoble, unit=world.unit_a2, channel="email")
    # Once the rule is removed, the text can no longer be changed nor sent.
    text = local_version_save(
        actor=manager,
        unit=world.unit_a,
        template=frame,
        values={"headline": "Portes ouvertes", "message": "<p>Samedi</p>"},
    )
    network.capability_rule_remove(actor=world.hq_admin, rule=world.root.capability_rules.get())
    manager = User.objects.get(pk=manager.pk)
    with pytest.raises(PermissionDenied):
        local_version_save(
            actor=manager,
            unit=world.unit_a,
            template=frame,
            values={"headline": "Autre"},
            local=text,
        )
    segment = segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE)
    with pytest.raises(PermissionDenied):
        services.campaign_create_local(
            actor=manager,
            unit=world.unit_a,
            channel="email",
            name="X",
            template=frame,
            local_version=text,
            segment=segment,
        )


def test_a_free_frame_is_nobody_elses_template(world):
    manager = _allow_pilots(world)
    frame = free_frame(actor=manager, unit=world.unit_a, channel="email")
    hq_template = email_template(world)
    # Not in the template library (HQ's or the unit's), and HQ cannot edit the frame either.
    assert list(templates_for_user(world.hq_admin)) == [hq_template]
    assert frame not in templates_for_user(manager)
    assert frame in templates_for_user(manager, free=True)
    assert frame not in templates_for_user(world.manager_b, free=True)
    assert not can_manage_template(world.hq_admin, frame)
    segment = segment_save(actor=None, owner=world.unit_b, name="Tous", rules=EVERYONE)
    with pytest.raises(ValidationError, match="not shared with this unit"):
        services.campaign_create_local(
            actor=world.hq_admin,
            unit=world.unit_b,
            channel="email",
            name="X",
            template=frame,
            segment=segment,
        )
    with pytest.raises(ValidationError, match="only by the unit that wrote it"):
        services.campaign_create_national(
            actor=world.hq_admin, channel="email", name="X", template=frame
        )
    with pytest.raises(ValidationError, match="no head office version"):
        services.campaign_create_local(
            actor=manager,
            unit=world.unit_a,
            channel="email",
            name="X",
            template=frame,
            segment=segment_save(actor=None, owner=world.unit_a, name="A", rules=EVERYONE),
        )


def test_a_free_email_is_approved_then_sent_with_the_units_text_as_data(world):
    made = contacts(world.unit_a, 2)
    manager = _allow_pilots(world)
    campaign = _free_campaign(
        world,
        manager,
        {
            "headline": "Portes ouvertes {{ 7*7 }}\r\nBcc: everyone@example.net",
            "message": '<p>Venez <strong>samedi</strong> !</p><script>alert(1)</script><img src=x onerror="alert(2)">',
        },
    )
    services.campaign_submit(actor=manager, campaign=campaign)
    assert campaign.status == Campaign.Status.SUBMITTED  # a unit manager still needs approval
    services.campaign_approve(actor=world.region_manager, campaign=campaign)
    now = timezone.now()
    services.campaign_schedule(
        actor=world.region_manager, campaign=campaign, send_at=now + dt.timedelta(minutes=1)
    )
    services.campaign_launch(actor=world.region_manager, campaign=campaign, now=now)
    run_campaign(campaign.pk)
    assert sorted(m.to for m in locmem.outbox) == sorted(c.email for c in made)
    parsed = email.message_from_bytes(locmem.outbox[0].data, policy=email.policy.default)
    # The title is the subject, on one line, printed as typed; no header was injected.
    assert parsed["Subject"] == "Portes ouvertes {{ 7*7 }} Bcc: everyone@example.net"
    assert parsed["Bcc"] is None
    assert parsed["From"].addresses[0].display_name.startswith("Lyon")
    html = parsed.get_body(("html",)).get_content()
    assert "Venez <strong>samedi</strong> !" in html
    assert "<script" not in html and "onerror" not in html and "alert(1)" not in html
    # (Only the text: the tracking tokens in links and the pixel are digits that may hold "49".)
    text_only = re.sub(r'(?:href|src)="[^"]*"', "", html)
    assert "{{ 7*7 }}" in text_only and "49" not in text_only
    # The frame's locked parts: the unit's footer and the unsubscribe link.
    assert "/u/" in html and "Lyon" in html


def test_the_networks_guardrails_apply_to_free_text(world):
    manager = _allow_pilots(world)
    guardrails_update(actor=world.hq_admin, node=world.root, restricted_patterns=["gratuit"])
    frame = free_frame(actor=manager, unit=world.unit_a, channel="email")
    text = local_version_save(
        actor=manager,
        unit=world.unit_a,
        template=frame,
        values={"headline": "Tout est gratuit", "message": "<p>Samedi</p>"},
    )
    assert not text.is_usable and any("gratuit" in p for p in text.problems)
    segment = segment_save(actor=None, owner=world.unit_a, name="Tous", rules=EVERYONE)
    with pytest.raises(ValidationError, match="needs attention"):
        services.campaign_create_local(
            actor=manager,
            unit=world.unit_a,
            channel="email",
            name="X",
            template=frame,
            local_version=text,
            segment=segment,
        )


def test_a_free_sms_ends_with_head_offices_stop_mention(world):
    network.capability_rule_add(
        actor=world.hq_admin,
        node=world.root,
        capability="send_sms",
        effect="allow",
        unit_tag="pilot",
    )
    manager = _allow_pilots(world)
    with pytest.raises(ValidationError, match="STOP mention"):  # HQ has not declared one yet
        free_frame(actor=manager, unit=world.unit_a, channel="sms")
    sms_template(world)  # HQ's SMS template declares "STOP 36111"
    contacts(world.unit_a, 1, sms=True)
    with time_machine.travel(
        dt.datetime(2027, 3, 2, 12, 0, tzinfo=ZoneInfo("Europe/Paris")), tick=False
    ):  # Tuesday
        campaign = _free_campaign(
            world, manager, {"message": "Portes ouvertes samedi 10h"}, channel="sms"
        )
        assert campaign.template.current.sms_stop == "STOP 36111"
        launched(world, campaign)
        assert run_campaign(campaign.pk).sent == 1
    (message,) = locmem.outbox
    assert message.text.endswith(": Portes ouvertes samedi 10h STOP 36111")


def test_the_free_campaign_pages(world, client):
    manager = _allow_pilots(world)
    client.force_login(manager)
    assert (
        "New free campaign" in client.get("/campaigns/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )
    response = client.post("/campaigns/new/free/", {"unit": world.unit_a.pk, "channel": "email"})
    frame = free_frame(actor=manager, unit=world.unit_a, channel="email")
    assert response.status_code == 302
    assert (
        response["Location"]
        == f"/brand/templates/{frame.public_id}/personalise/?unit={world.unit_a.public_id}"
    )
    page = client.get(response["Location"])
    assert page.status_code == 200 and 'name="zone_headline"' in page.content.decode()
    client.force_login(world.manager_b)  # Lille is not a pilot; its manager has no free campaigns
    assert client.get("/campaigns/new/free/").status_code == 403
    assert client.get(f"/brand/templates/{frame.public_id}/personalise/").status_code == 404
