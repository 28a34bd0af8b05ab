"""The pricing rule and the time-zone fallback, each written once and read the same way
by the audience preview, the budget check, the budget page and the rollups."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from enseigne.analytics import rollups
from enseigne.campaigns import audience, pricing, services
from enseigne.campaigns.models import Budget, Recipient
from enseigne.campaigns.selectors import policy_for
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.pipeline import run_campaign
from enseigne.network.models import Network, UnitProfile
from enseigne.network.selectors import unit_time_zone
from enseigne.network.services import node_create
from tests.campaign_helpers import (
    contacts,
    email_template,
    launched,
    local_campaign,
    sms_template,
)

PARIS = ZoneInfo("Europe/Paris")
TUESDAY_TEN = dt.datetime(2027, 3, 2, 10, 0, tzinfo=PARIS)
# Over 160 GSM-7 characters with the STOP mention: two segments a message.
LONG_SMS = "Bonjour {{ contact.first_name }}, " + "la nouvelle collection arrive en magasin. " * 3


def _paid(unit, policy) -> tuple[Decimal, list[Decimal]]:
    """What the unit paid since yesterday: on the budget page, and in the rollups."""
    start = timezone.now() - dt.timedelta(days=1)
    spent = audience.spent(unit, start.date(), timezone.localdate(), policy)
    return spent, [c.cost for key, c in rollups.aggregate(start).items() if key[2] == unit.pk]


@pytest.fixture(autouse=True)
def _outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def _national(world, channel):
    template = (
        email_template(world, "National")
        if channel == "email"
        else sms_template(world, "National SMS", source=LONG_SMS, max_segments=3)
    )
    return services.campaign_create_national(
        actor=world.hq_admin, channel=channel, name="Printemps", template=template
    )


@pytest.mark.parametrize(
    ("channel", "segments", "each"),
    [("email", 0, Decimal("0.1")), ("sms", 2, Decimal("0.1"))],
)
def test_preview_budget_check_spent_and_rollups_agree_on_a_cofunded_national_campaign(
    world, channel, segments, each
):
    policy = policy_for(world.root)
    policy.email_thousand_cost = Decimal("100")  # 0.10 € an e-mail
    policy.sms_segment_cost = Decimal("0.05")  # 0.10 € a two-segment SMS
    policy.national_cofunding_percent = 40
    policy.save()
    with time_machine.travel(TUESDAY_TEN, tick=False):
        Budget.objects.create(
            unit=world.unit_a,
            unit_path=world.unit_a.path,
            starts_on=timezone.localdate().replace(day=1),
            ends_on=timezone.localdate() + dt.timedelta(days=20),
            amount=Decimal("0.25"),
        )
        contacts(world.unit_a, 5, sms=channel == "sms")
        campaign = _national(world, channel)
        preview = audience.preview(campaign)
        # The unit pays 60 % of 0.10 € a message: 0.25 € buys 4 of 5 (at full price, 2).
        assert (preview.recipients, preview.exclusions) == (4, {"over_budget": 1})
        assert (preview.cost, preview.hq_cost) == (4 * each, Decimal("0.16"))
        (line,) = preview.budgets
        assert (line["unit"], line["needed"], line["over"]) == (
            world.unit_a,
            Decimal("0.30"),
            True,
        )
        launched(world, campaign)
        assert run_campaign(campaign.pk).sent == 4
        sent = Recipient.objects.filter(campaign=campaign, status="sent")
        assert set(sent.values_list("segments", flat=True)) == {segments}
        unit_part = preview.cost - preview.hq_cost
        assert unit_part == Decimal("0.24")
        spent, costs = _paid(world.unit_a, policy)
        assert (spent, sum(costs)) == (unit_part, Decimal("0.2400"))
        # What is left of the budget pays for nothing more.
        again = audience.preview(_national(world, channel))
        assert again.budgets[0]["remaining"] == Decimal("0.01")
        assert again.exclusions.get("over_budget") == 5


def test_the_rule_itself():
    class Policy:
        email_thousand_cost = Decimal("0.8")
        sms_segment_cost = Decimal("0.045")
        national_cofunding_percent = 50

    policy = Policy()
    assert pricing.cost(policy, channel="email", messages=1000) == Decimal("0.8")
    assert pricing.cost(policy, channel="sms", messages=10, segments=30) == Decimal("1.35")
    assert [pricing.billed_segments(n) for n in (None, 0, 1, 3)] == [1, 1, 1, 3]
    assert pricing.hq_percent(policy, national=True) == 50
    assert pricing.hq_percent(policy, national=False) == 0
    amount = Decimal("1.35")
    assert pricing.hq_share(amount, 50) + pricing.unit_share(amount, 50) == amount
    assert pricing.paid_by_unit(
        policy, channel="sms", messages=10, segments=30, national=True
    ) == Decimal("0.675")
    assert pricing.paid_by_unit(
        policy, channel="email", messages=2000, segments=0, national=False
    ) == Decimal("1.6")


def test_an_sms_row_without_a_segment_count_is_billed_one_everywhere(world):
    policy = policy_for(world.root)
    policy.sms_segment_cost = Decimal("0.05")
    policy.save()
    with time_machine.travel(TUESDAY_TEN, tick=False):
        contacts(world.unit_a, 3, sms=True)
        campaign = local_campaign(world, channel="sms")
        launched(world, campaign)
        assert run_campaign(campaign.pk).sent == 3
        Recipient.objects.filter(campaign=campaign).update(segments=0)
        assert _paid(world.unit_a, policy) == (Decimal("0.15"), [Decimal("0.1500")])


# -- the time zone ---------------------------------------------------------------------------

MARTINIQUE = ZoneInfo("America/Martinique")  # UTC-4 all year


def test_a_unit_without_a_time_zone_lives_in_its_networks(world):
    Network.objects.filter(node=world.root).update(time_zone="America/Martinique")
    UnitProfile.objects.filter(node=world.unit_a).update(time_zone="")
    UnitProfile.objects.filter(node=world.unit_b).update(time_zone="Europe/Paris")
    UnitProfile.objects.filter(node=world.unit_a2).delete()
    unit_a, unit_b, unit_a2 = (
        type(world.unit_a).objects.select_related("profile").get(pk=u.pk)
        for u in (world.unit_a, world.unit_b, world.unit_a2)
    )
    assert unit_time_zone(unit_a) == "America/Martinique"
    assert unit_time_zone(unit_b) == "Europe/Paris"
    assert unit_time_zone(type(unit_a2).objects.get(pk=unit_a2.pk)) == "America/Martinique"
    network = Network.objects.get(node=world.root)
    network.time_zone = "Pacific/Tahiti"
    assert unit_time_zone(unit_a, network=network) == "Pacific/Tahiti"
    Network.objects.filter(node=world.root).update(time_zone="")
    assert unit_time_zone(unit_a) == "Europe/Paris", "the settings' TIME_ZONE, last"
    # A new unit has no zone of its own: it follows its network.
    Network.objects.filter(node=world.root).update(time_zone="America/Martinique")
    created = node_create(
        actor=None, parent=world.region_a, kind="unit", name="Fort-de-France", code="fdf"
    )
    assert created.profile.time_zone == ""
    assert unit_time_zone(created) == "America/Martinique"


@pytest.mark.parametrize(
    ("moment", "until"),
    [
        # 12:00 in Paris, 07:00 in Martinique: the window opens at 08:00 there (12:00 UTC).
        (
            dt.datetime(2027, 3, 2, 11, 0, tzinfo=dt.UTC),
            dt.datetime(2027, 3, 2, 12, 0, tzinfo=dt.UTC),
        ),
        # 22:30 in Paris (closed there), 17:30 in Martinique: nothing waits.
        (dt.datetime(2027, 3, 2, 21, 30, tzinfo=dt.UTC), None),
    ],
)
def test_the_sms_window_of_a_unit_without_a_time_zone_is_its_networks(world, moment, until):
    Network.objects.filter(node=world.root).update(time_zone="America/Martinique")
    UnitProfile.objects.filter(node=world.unit_a).update(time_zone="")
    with time_machine.travel(moment, tick=False):
        contacts(world.unit_a, 4, sms=True)
        campaign = local_campaign(world, channel="sms")
        preview = audience.preview(campaign, moment)
        assert preview.recipients == 4
        expected = [{"unit": world.unit_a, "count": 4, "until": until}] if until else []
        assert preview.deferred == expected
        launched(world, campaign, moment)
        not_before = set(
            Recipient.objects.filter(campaign=campaign).values_list("not_before", flat=True)
        )
        assert not_before == {until}
