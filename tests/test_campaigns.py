"""Campaign lifecycle, audience preview, relays, message standards and the SMS window."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.utils import timezone

from enseigne.brand.services import local_version_save
from enseigne.campaigns import audience, services
from enseigne.campaigns.models import Campaign, PressureRule, Recipient, Relay
from enseigne.campaigns.selectors import approval_inbox, campaigns_for_user, policy_for
from enseigne.contacts.models import ConsentStatus, Suppression
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import Runner, run_campaign
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.sendwindow import SendWindow
from enseigne.lib.signing import sign_id
from enseigne.network.models import OrgNode
from tests.campaign_helpers import contacts, email_template, launched, local_campaign, sms_template

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def test_a_unit_manager_needs_approval_and_a_rejection_needs_a_reason(world):
    contacts(world.unit_a, 3)
    campaign = local_campaign(world)
    services.campaign_submit(actor=world.manager_a, campaign=campaign)
    assert campaign.status == Campaign.Status.SUBMITTED
    assert list(approval_inbox(world.region_manager)) == [campaign]
    assert list(approval_inbox(world.manager_b)) == []
    with pytest.raises(PermissionDenied):
        services.campaign_approve(actor=world.manager_b, campaign=campaign)
    with pytest.raises(ValidationError):
        services.campaign_reject(actor=world.region_manager, campaign=campaign, comment="  ")
    services.campaign_reject(
        actor=world.region_manager, campaign=campaign, comment="Le visuel date de 2024."
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.decision_comment) == ("rejected", "Le visuel date de 2024.")
    services.campaign_submit(actor=world.manager_a, campaign=campaign)
    services.campaign_approve(actor=world.region_manager, campaign=campaign)
    with pytest.raises(ValidationError):  # approving twice: the compare-and-swap refuses
        services.campaign_approve(actor=world.hq_admin, campaign=campaign)
    assert Campaign.objects.get(pk=campaign.pk).status == "approved"


def test_region_managers_skip_approval_and_other_units_never_see_a_local_campaign(world):
    campaign = local_campaign(world)
    services.campaign_submit(actor=world.region_manager, campaign=campaign)
    assert campaign.status == Campaign.Status.APPROVED
    assert campaign in campaigns_for_user(world.manager_a)
    assert campaign not in campaigns_for_user(world.manager_b)


def test_preview_names_every_exclusion_and_launch_freezes_the_same_audience(world):
    contacts(world.unit_a, 6)
    contacts(world.unit_a, 2, email=False, start=10)  # no consent
    suppressed = contacts(world.unit_a, 1, start=20)[0]
    Suppression.objects.create(
        unit_path="",
        channel="email",
        value_hash=identifier_hash("email", suppressed.email),
        reason="hard_bounce",
    )
    unit_unsubscribed = contacts(world.unit_a, 1, start=30)[0]
    Suppression.objects.create(
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        channel="email",
        value_hash=identifier_hash("email", unit_unsubscribed.email),
        reason="unsubscribe",
    )
    contacts(world.unit_a, 1, start=40)[0].__class__.objects.filter(
        email="lyon.40@example.com"
    ).update(email=None, phone="+33612000040")
    contacts(world.unit_b, 4)  # another unit: never counted
    campaign = local_campaign(world)
    preview = audience.preview(campaign)
    assert preview.candidates == 11
    assert preview.recipients == 6
    assert preview.exclusions == {"no_consent": 2, "suppressed": 2, "no_address": 1}
    total = launched(world, campaign)
    assert total == 11
    states = dict(
        Recipient.objects.filter(campaign=campaign).values_list("reason").annotate(n=Count("id"))
    )
    assert states == {"": 6, "no_consent": 2, "suppressed": 2, "no_address": 1}


def test_pressure_names_the_campaign_that_took_the_contacts_national_first(world):
    PressureRule.objects.create(node=world.root, channel="email", max_messages=1, window_days=7)
    contacts(world.unit_a, 5)
    first = local_campaign(world)
    launched(world, first)
    run_campaign(first.pk)
    assert Recipient.objects.filter(campaign=first, status="sent").count() == 5
    contacts(world.unit_a, 3, start=100)
    second = local_campaign(world, template=email_template(world, "Autre"))
    preview = audience.preview(second, timezone.now() + dt.timedelta(days=1))
    assert preview.exclusions == {"pressure": 5}
    assert preview.pressure_sources == [(first.name, 5)]
    assert preview.recipients == 3
    # Eight days later the window has passed.
    assert audience.preview(second, timezone.now() + dt.timedelta(days=8)).exclusions == {}
    # A national campaign planned within the window comes first: the local one loses those contacts.
    national = services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name="Soldes d'hiver",
        template=email_template(world, "National"),
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(days=12)
    )
    later = audience.preview(second, timezone.now() + dt.timedelta(days=10))
    assert later.exclusions == {"pressure": 8}
    assert ("Soldes d'hiver", 8) in later.pressure_sources


def test_pressure_sources_span_several_bit_set_words_and_skip_campaigns_finished_long_ago(
    world, monkeypatch
):
    # Two campaigns per bit-set word, so five ledger campaigns need three words.
    monkeypatch.setattr(audience, "WORD_BITS", 2)
    made = contacts(world.unit_a, 6)
    now = timezone.now()
    old = local_campaign(world, template=email_template(world, "Ancienne"))
    launched(world, old)
    run_campaign(old.pk)
    Recipient.objects.filter(campaign=old).update(sent_at=now - dt.timedelta(days=30))
    Campaign.objects.filter(pk=old.pk).update(finished_at=now - dt.timedelta(days=29))
    senders = []
    for i in range(4):
        campaign = local_campaign(world, template=email_template(world, f"Envoi {i}"))
        launched(world, campaign)
        senders.append(campaign)
    # Campaign i reached contacts i and i + 1 (sent), so contacts 1 to 3 each had two messages.
    for i, campaign in enumerate(senders):
        Recipient.objects.filter(campaign=campaign).exclude(contact__in=made[i : i + 2]).update(
            status="skipped", reason="test"
        )
        Recipient.objects.filter(campaign=campaign, status="pending").update(
            status="sent", sent_at=now
        )
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.FINISHED, finished_at=now
        )
    PressureRule.objects.create(node=world.root, channel="email", max_messages=2, window_days=7)
    target = local_campaign(world, template=email_template(world, "Mesurée"))
    classification = audience.classified(target, audience.candidates(target, [world.unit_a]), now)
    assert classification.ledger == [c.pk for c in senders] and classification.words == 2
    preview = audience.preview(target, now + dt.timedelta(hours=1))
    assert preview.exclusions == {"pressure": 3}
    expected = sorted(
        ((c.name, n) for c, n in zip(senders, (1, 2, 2, 1), strict=True)),
        key=lambda s: (-s[1], s[0]),
    )
    assert preview.pressure_sources == expected


def test_budget_cuts_the_end_of_the_list_unless_approved_over_budget(world):
    from enseigne.campaigns.models import Budget

    policy = policy_for(world.unit_a)
    policy.email_thousand_cost = Decimal("1000")  # 1 € per e-mail, to make the arithmetic visible
    policy.save()
    today = timezone.localdate()
    Budget.objects.create(
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        starts_on=today.replace(day=1),
        ends_on=today + dt.timedelta(days=40),
        amount=Decimal("4"),
    )
    contacts(world.unit_a, 6)
    campaign = local_campaign(world)
    preview = audience.preview(campaign)
    assert (preview.recipients, preview.exclusions) == (4, {"over_budget": 2})
    assert preview.budgets[0]["over"] is True
    launched(world, campaign)
    assert Recipient.objects.filter(campaign=campaign, reason="over_budget").count() == 2
    assert not Recipient.objects.filter(
        campaign=campaign,
        reason="over_budget",
        id__lt=Recipient.objects.filter(campaign=campaign, status="pending")
        .order_by("-id")
        .values("id")[:1],
    ).exists()


def test_national_campaign_relayed_by_lyon_opted_out_by_lille_sent_from_each_identity(
    world, client
):
    from enseigne.network.models import UnitProfile

    UnitProfile.objects.filter(node=world.unit_a).update(email="lyon@maison.example")
    contacts(world.unit_a, 3)
    contacts(world.unit_a2, 2)
    contacts(world.unit_b, 2)
    template = email_template(world)
    national = services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name="Printemps",
        template=template,
        relay_deadline=timezone.now() + dt.timedelta(hours=1),
    )
    services.campaign_submit(actor=world.hq_admin, campaign=national)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=national, send_at=timezone.now() + dt.timedelta(hours=2)
    )
    assert Relay.objects.filter(campaign=national).count() == 3
    assert national in campaigns_for_user(world.manager_b)
    lyon_version = local_version_save(
        actor=world.manager_a,
        unit=world.unit_a,
        template=template,
        values={"headline": "Spécial Lyon"},
    )
    services.relay_decide(
        actor=world.manager_a,
        campaign=national,
        unit=world.unit_a,
        relay=True,
        local_version=lyon_version,
    )
    services.relay_decide(actor=world.manager_b, campaign=national, unit=world.unit_b, relay=False)
    with pytest.raises(PermissionDenied):
        services.relay_decide(
            actor=world.manager_b, campaign=national, unit=world.unit_a, relay=False
        )
    preview = audience.preview(national)
    assert (preview.recipients, preview.units, preview.opted_out_units) == (5, 2, 1)
    services.campaign_launch(actor=world.hq_admin, campaign=national)
    run_campaign(national.pk)
    national.refresh_from_db()
    assert national.status == "finished"
    by_unit = {}
    for message in locmem.outbox:
        head = message.data.split(b"\r\n\r\n", 1)[0]
        sender = re.search(rb"^From: (.*)$", head, re.M).group(1)
        by_unit.setdefault(sender, []).append(message)
    assert sorted(len(v) for v in by_unit.values()) == [2, 3]
    lyon = next(v for k, v in by_unit.items() if b"<lyon@news.example.com>" in k)
    body = lyon[0].data
    assert b"Sp=C3=A9cial Lyon" in body
    assert b"\r\nReply-To: lyon@maison.example\r\n" in body
    assert not any(m.to.startswith("lille") for m in locmem.outbox)


def test_message_headers_are_raw_unfolded_and_deterministic(world, client):
    contacts(world.unit_a, 1)
    campaign = local_campaign(world)
    launched(world, campaign)
    run_campaign(campaign.pk)
    (message,) = locmem.outbox
    row = Recipient.objects.get(campaign=campaign)
    head = message.data.split(b"\r\n\r\n", 1)[0]
    token = sign_id("unsubscribe", row.pk)
    expected = f"\r\nList-Unsubscribe: <http://127.0.0.1:8000/u/{token}/>\r\n".encode()
    assert expected in head
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in head
    assert re.search(rb"\r\nList-Id: Lyon <lyon\.news\.example\.com>\r\n", head)
    assert re.search(
        rb"\r\nMessage-ID: <c%d\.r%d\.[0-9a-f]{12}@news\.example\.com>\r\n" % (campaign.pk, row.pk),
        head,
    )
    assert max(len(line) for line in message.data.split(b"\r\n")) <= 998
    # The unsubscribe link: GET changes nothing, the one-click POST (no cookie) unsubscribes.
    contact = row.contact
    assert client.get(f"/u/{token}/").status_code == 200
    contact.refresh_from_db()
    assert contact.email_consent == ConsentStatus.GRANTED
    response = client.post(
        f"/u/{token}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.email_consent == ConsentStatus.WITHDRAWN
    assert client.post(f"/u/{token[:-2]}xx/").status_code == 404


def test_a_campaign_that_wakes_far_too_late_waits_for_confirmation(world):
    contacts(world.unit_a, 2)
    campaign = local_campaign(world)
    services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    send_at = timezone.now() + dt.timedelta(minutes=5)
    services.campaign_schedule(actor=world.hq_admin, campaign=campaign, send_at=send_at)
    assert services.campaign_wake(campaign=campaign, now=send_at + dt.timedelta(hours=3)) is False
    campaign.refresh_from_db()
    assert (campaign.status, campaign.needs_confirmation) == ("scheduled", True)
    assert services.campaigns_due(send_at + dt.timedelta(hours=3)) == []
    assert not Recipient.objects.filter(campaign=campaign).exists()


def test_retries_then_hard_bounce_suppresses_brand_wide(world):
    from enseigne.delivery.channels.base import Outcome, Result
    from enseigne.delivery.channels.locmem.transport import LocmemTransport

    made = contacts(world.unit_a, 3)
    campaign = local_campaign(world)
    launched(world, campaign)
    answers = {
        made[0].email: [Result(Outcome.RETRY, 451), Result(Outcome.SENT, 250)],
        made[1].email: [Result(Outcome.FAILED, 550, "5.1.1 user unknown", hard_bounce=True)],
    }

    def answer(message):
        queue = answers.get(message.to)
        return queue.pop(0) if queue else Result(Outcome.SENT, 250)

    Runner(campaign.pk, transport=LocmemTransport(answer)).run()
    states = dict(
        Recipient.objects.filter(campaign=campaign).values_list("contact__email", "status")
    )
    assert states == {made[0].email: "sent", made[1].email: "failed", made[2].email: "sent"}
    assert Suppression.objects.filter(
        unit_path="", value_hash=identifier_hash("email", made[1].email), reason="hard_bounce"
    ).exists()
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


def test_a_message_that_cannot_be_built_fails_its_row_and_the_others_go(world, monkeypatch):
    from enseigne.brand.rendering import Personaliser

    made = contacts(world.unit_a, 4)
    campaign = local_campaign(world)
    launched(world, campaign)
    render = Personaliser.render

    def breaks_for_one(self, **data):
        if data["contact"]["email"] == made[2].email:
            raise ValueError("a filter choked on this contact's data")
        return render(self, **data)

    monkeypatch.setattr(Personaliser, "render", breaks_for_one)
    stats = Runner(campaign.pk).run()
    rows = {
        r.contact.email: r
        for r in Recipient.objects.filter(campaign=campaign).select_related("contact")
    }
    assert (stats.sent, stats.failed) == (3, 1)
    assert rows[made[2].email].status == "failed" and rows[made[2].email].reason == "render_error"
    assert "a filter choked" in rows[made[2].email].detail
    assert sorted(m.to for m in locmem.outbox) == sorted(c.email for c in made if c != made[2])
    assert Campaign.objects.get(pk=campaign.pk).status == "finished"


# -- SMS window ----------------------------------------------------------------------------------


def _oracle(moment: dt.datetime) -> bool:
    import holidays

    local = moment.astimezone(PARIS)
    return (
        local.weekday() < 6
        and local.date() not in holidays.country_holidays("FR", years=local.year)
        and dt.time(8) <= local.time() < dt.time(20)
    )


@pytest.mark.slow  # every minute of a year
def test_the_window_over_a_year_with_both_dst_changes_matches_an_independent_reading():
    window = SendWindow()
    moment = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    mismatches, checked = [], 0
    while moment.year == 2026:
        if window.allows(moment, "Europe/Paris") != _oracle(moment):
            mismatches.append(moment)
        following = window.next_allowed(moment, "Europe/Paris")
        assert _oracle(following) and following >= moment
        checked += 1
        moment += dt.timedelta(minutes=20)
    assert checked == 26280 and mismatches == []


def test_a_local_sms_scheduled_on_a_sunday_waits_for_monday_eight_and_easter_monday_is_skipped(
    world,
):
    import time_machine

    contacts(world.unit_a, 4, sms=True)
    saturday_night = dt.datetime(
        2027, 3, 27, 20, 30, tzinfo=PARIS
    )  # DST starts on Sunday 28, Easter Monday 29
    with time_machine.travel(saturday_night, tick=False):
        campaign = local_campaign(world, channel="sms")
        launched(world, campaign)
        assert run_campaign(campaign.pk).sent == 0
    expected = dt.datetime(2027, 3, 30, 8, 0, tzinfo=PARIS)
    rows = Recipient.objects.filter(campaign=campaign)
    assert {r.not_before for r in rows} == {expected}
    sent_at = []
    for moment in (
        dt.datetime(2027, 3, 28, 10, tzinfo=PARIS),
        dt.datetime(2027, 3, 29, 9, tzinfo=PARIS),
        expected - dt.timedelta(seconds=1),
        expected,
    ):
        with time_machine.travel(moment, tick=False):
            stats = run_campaign(campaign.pk)
            sent_at += [moment] * stats.sent
    assert sent_at == [expected] * 4
    assert all(_oracle(m) for m in sent_at)
    assert [m.text.endswith("STOP 36111") for m in locmem.outbox] == [True] * 4


def test_transactional_sms_ignore_the_window(world):
    import time_machine

    contacts(world.unit_a, 2, sms=True)
    with time_machine.travel(dt.datetime(2027, 3, 28, 23, 0, tzinfo=PARIS), tick=False):
        campaign = local_campaign(world, channel="sms")
        Campaign.objects.filter(pk=campaign.pk).update(is_transactional=True)
        campaign.refresh_from_db()
        launched(world, campaign)
        assert run_campaign(campaign.pk).sent == 2


def test_units_without_the_sms_capability_cannot_create_sms_campaigns(world):
    template = sms_template(world)
    segment_unit = OrgNode.objects.get(pk=world.unit_a.pk)
    with pytest.raises(ValidationError):
        services.campaign_create_local(
            actor=world.manager_a, unit=segment_unit, channel="sms", name="x", template=template
        )


# -- Sending rules page -------------------------------------------------------------------------


def _rules_post(client, part, **data):
    return client.post("/campaigns/rules/", {"part": part, **data})


def test_hq_sets_the_sms_window_caps_and_budgets_and_bad_input_changes_nothing(world, client):
    from tests.factories import PASSWORD

    assert client.login(username=world.hq_admin.email, password=PASSWORD)
    policy = {
        "sms_days": ["0", "1", "2", "3", "4"],
        "sms_start": "09:00",
        "sms_end": "19:00",
        "sms_holiday_country": "fr",
        "pressure_priority": "first_scheduled",
        "sms_segment_cost": "0.05",
        "email_thousand_cost": "1000.00",
        "national_cofunding_percent": "60",
        "late_start_minutes": "30",
        "attribution_model": "time_decay",
        "attribution_window_days": "14",
        "sms_stop_scope": "unit",
    }
    assert _rules_post(client, "policy", **policy).status_code == 302
    saved = policy_for(world.root)
    assert (saved.attribution_model, saved.attribution_window_days, saved.sms_stop_scope) == (
        "time_decay",
        14,
        "unit",
    )
    assert (
        saved.sms_days,
        saved.sms_start,
        saved.sms_holiday_country,
        saved.pressure_priority,
    ) == ([0, 1, 2, 3, 4], dt.time(9), "FR", "first_scheduled")
    # Closing before opening, an unknown country: refused with the reason, nothing changed.
    response = _rules_post(
        client, "policy", **{**policy, "sms_end": "08:00", "sms_holiday_country": "XX"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "XX is not a country whose public holidays are known." in page
    assert policy_for(world.root).sms_end == dt.time(19)

    caps = {
        "channel_0": "email",
        "most_0": "2",
        "days_0": "7",
        "channel_1": "sms",
        "most_1": "4",
        "days_1": "30",
    }
    assert _rules_post(client, "pressure", **caps).status_code == 302
    assert sorted(PressureRule.objects.values_list("channel", "max_messages", "window_days")) == [
        ("email", 2, 7),
        ("sms", 4, 30),
    ]
    response = _rules_post(client, "pressure", **{**caps, "channel_2": "email", "most_2": "3"})
    assert response.status_code == 400 and "Cap 3: choose a channel" in response.content.decode()
    assert PressureRule.objects.count() == 2

    today = timezone.localdate()
    budget = {
        "unit": world.unit_a.pk,
        "starts_on": today.replace(day=1).isoformat(),
        "ends_on": (today.replace(day=1) + dt.timedelta(days=40)).replace(day=1).isoformat(),
        "amount": "50",
    }
    assert _rules_post(client, "budget", **budget).status_code == 302
    overlapping = {**budget, "starts_on": (today.replace(day=1) + dt.timedelta(days=2)).isoformat()}
    response = _rules_post(client, "budget", **overlapping)
    assert response.status_code == 400 and "overlaps the budget" in response.content.decode()

    # What was spent shows against the budget: 3 e-mails at 1,000 € per thousand.
    contacts(world.unit_a, 3)
    campaign = local_campaign(world)
    launched(world, campaign)
    run_campaign(campaign.pk)
    page = client.get("/campaigns/rules/").content.decode()
    budgets = page[page.index('id="budgets"') :]
    assert ">50.00 €<" in budgets and ">3.00 €<" in budgets and ">47.00 €<" in budgets, budgets[
        :1500
    ]


def test_units_read_the_rules_and_see_only_their_own_budget(world, client):
    from tests.factories import PASSWORD

    services.pressure_rules_replace(actor=world.hq_admin, node=world.root, rules=[("email", 2, 7)])
    today = timezone.localdate()
    for unit, amount in ((world.unit_a, "120"), (world.unit_b, "80")):
        services.budget_set(
            actor=world.hq_admin,
            unit=unit,
            starts_on=today,
            ends_on=today + dt.timedelta(days=30),
            amount=Decimal(amount),
        )
    assert client.login(username=world.manager_a.email, password=PASSWORD)
    page = client.get("/campaigns/rules/").content.decode()
    assert "at most 2 in 7 days" in page and 'id="policy-form"' not in page
    assert "120.00 €" in page and "80.00 €" not in page
    assert (
        _rules_post(client, "pressure", channel_0="email", most_0="9", days_0="1").status_code
        == 403
    )
    assert list(PressureRule.objects.values_list("max_messages", flat=True)) == [2]
