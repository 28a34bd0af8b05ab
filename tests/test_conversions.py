"""Sales (conversions): one per order id, credited to the buyer's clicks, through the API."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from enseigne.analytics import rollups
from enseigne.analytics.attribution import credit, weights
from enseigne.analytics.models import DailyStat
from enseigne.campaigns.models import AttributionModel, Recipient
from enseigne.delivery import events
from enseigne.delivery.models import Event
from enseigne.tracking.conversions import Touch, conversion_record
from enseigne.tracking.models import Conversion
from tests.campaign_helpers import contacts, email_template, launched, local_campaign
from tests.test_api_and_isolation import bearer

M = AttributionModel


def _clicked(world, contact, campaign, when):
    """A ledger row for ``contact`` in ``campaign`` and a counted click on it at ``when``."""
    recipient = Recipient.objects.get(campaign=campaign, contact=contact)
    events.write(
        [
            events.row(
                occurred_at=when,
                kind=Event.Kind.CLICKED,
                channel="email",
                campaign_id=campaign.pk,
                unit_id=recipient.unit_id,
                unit_path=recipient.unit_path,
                recipient_id=recipient.pk,
            )
        ]
    )


@pytest.fixture
def two_campaigns(world):
    buyers = contacts(world.unit_a, 2)
    first = local_campaign(world, template=email_template(world, "Premier"))
    launched(world, first)
    second = local_campaign(world, template=email_template(world, "Second"))
    launched(world, second)
    return buyers, first, second


def _post(client, user, **payload):
    return client.post(
        "/api/v1/conversions",
        data=json.dumps(payload),
        content_type="application/json",
        **bearer(user),
    )


def test_api_records_an_order_once_and_credits_the_last_click(world, client, two_campaigns):
    buyers, first, second = two_campaigns
    now = timezone.now()
    _clicked(world, buyers[0], first, now - dt.timedelta(days=3))
    _clicked(world, buyers[0], second, now - dt.timedelta(days=1))
    _clicked(world, buyers[0], first, now - dt.timedelta(days=40))  # outside the 30-day window
    payload = {
        "order_id": "T-1001",
        "unit": str(world.unit_a.public_id),
        "amount": "89.90",
        "email": buyers[0].email.upper(),
        "occurred_at": now.isoformat(),
    }
    answer = _post(client, world.manager_a, **payload)
    assert answer.status_code == 201, answer.content
    assert answer.json()["attributed"] is True and answer.json()["duplicate"] is False
    conversion = Conversion.objects.get(order_id="T-1001")
    assert (conversion.campaign_id, conversion.contact_id, conversion.amount) == (
        second.pk,
        buyers[0].pk,
        Decimal("89.90"),
    )
    # A retry (or the same order from the CSV) is recognised: 200, still one order and one event.
    again = _post(client, world.manager_a, **{**payload, "amount": "1000"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["amount"] == "89.90"
    assert Conversion.objects.count() == 1
    assert Event.objects.filter(kind=Event.Kind.CONVERTED).count() == 1


def test_api_rejects_bad_input_by_field_and_other_units(world, client):
    key = world.manager_a
    bad = _post(client, key, order_id="T-1", unit=str(world.unit_a.public_id), amount="-5")
    assert bad.status_code == 422
    assert "amount" in json.dumps(bad.json())
    future = _post(
        client,
        key,
        order_id="T-2",
        unit=str(world.unit_a.public_id),
        amount="5",
        occurred_at=(timezone.now() + dt.timedelta(days=2)).isoformat(),
    )
    assert future.status_code == 422 and "occurred_at" in json.dumps(future.json())
    other = _post(client, key, order_id="T-3", unit=str(world.unit_b.public_id), amount="5")
    assert other.status_code == 404
    staff = _post(
        client, world.staff_a, order_id="T-4", unit=str(world.unit_a.public_id), amount="5"
    )
    assert staff.status_code == 403
    assert Conversion.objects.count() == 0
    # An order with no known buyer still counts for the unit, credited to no campaign.
    anonymous = _post(
        client,
        key,
        order_id="T-5",
        unit=str(world.unit_a.public_id),
        amount="12.5",
        email="stranger@example.com",
    )
    assert anonymous.status_code == 201 and anonymous.json()["attributed"] is False


def test_attribution_models_share_a_sale_between_clicks():
    sale = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    clicks = [
        Touch(sale - dt.timedelta(days=14), 1, "email", 1),
        Touch(sale - dt.timedelta(days=7), 2, "email", 2),
        Touch(sale, 3, "sms", 3),
    ]
    assert weights(M.LAST_CLICK, clicks, sale) == [0, 0, 1]
    assert weights(M.FIRST_CLICK, clicks, sale) == [1, 0, 0]
    assert sum(weights(M.LINEAR, clicks, sale)) == pytest.approx(1)
    decay = weights(M.TIME_DECAY, clicks, sale)
    # Weights halve every seven days: 1/4, 1/2, 1 (normalised by 7/4).
    assert [round(float(w), 6) for w in decay] == [round(x / 1.75, 6) for x in (0.25, 0.5, 1)]
    assert weights(M.LINEAR, [], sale) == []


def test_credit_under_each_model(world, two_campaigns):
    buyers, first, second = two_campaigns
    now = timezone.now()
    _clicked(world, buyers[1], first, now - dt.timedelta(days=10))
    _clicked(world, buyers[1], second, now - dt.timedelta(days=2))
    sale = Conversion.objects.create(
        order_id="X",
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        contact=buyers[1],
        amount=Decimal("100.00"),
        occurred_at=now,
        source="api",
    )
    last = credit([sale], M.LAST_CLICK, 30)
    assert {k: v.revenue for k, v in last.items()} == {
        (second.pk, world.unit_a.pk): Decimal("100.00")
    }
    first_click = credit([sale], M.FIRST_CLICK, 30)
    assert {k: v.revenue for k, v in first_click.items()} == {
        (first.pk, world.unit_a.pk): Decimal("100.00")
    }
    linear = credit([sale], M.LINEAR, 30)
    assert [v.revenue for v in linear.values()] == [Decimal("50.00"), Decimal("50.00")]
    assert credit([sale], M.LINEAR, 5) == {
        (second.pk, world.unit_a.pk): linear[(second.pk, world.unit_a.pk)]
    } or {k: v.revenue for k, v in credit([sale], M.LINEAR, 5).items()} == {
        (second.pk, world.unit_a.pk): Decimal(100)
    }


def test_a_sale_reported_late_reaches_the_rollups(world, two_campaigns):
    buyers, first, _second = two_campaigns
    now = timezone.now()
    _clicked(world, buyers[0], first, now - dt.timedelta(days=12))
    rollups.refresh()
    week_ago = now - dt.timedelta(days=6)
    conversion_record(
        actor=world.manager_a,
        unit=world.unit_a,
        order_id="L-1",
        amount="30",
        occurred_at=week_ago,
        email=buyers[0].email,
    )
    rollups.refresh()
    row = DailyStat.objects.get(conversions=1)
    assert (row.day, row.campaign_id, row.revenue) == (
        timezone.localtime(week_ago).date(),
        first.pk,
        Decimal("30"),
    )
