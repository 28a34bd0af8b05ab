"""SMS replies: STOP withdraws consent within the declared scope, at once, and is confirmed."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
import time_machine

from enseigne.campaigns.models import Recipient, StopScope
from enseigne.campaigns.selectors import policy_for
from enseigne.contacts.models import ConsentStatus, Contact, Suppression
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.models import Event
from enseigne.delivery.pipeline import run_campaign
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.signing import webhook_key
from enseigne.tracking.sms_inbound import is_stop
from tests.campaign_helpers import contacts, launched, local_campaign

URL = f"/hooks/sms/{webhook_key('sms')}/"


@pytest.fixture
def texted(world, settings):
    # Inside the SMS window (a Tuesday, 10:00 in Paris), whatever time the suite runs at.
    with time_machine.travel(dt.datetime(2026, 11, 17, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))):
        yield _texted(world, settings)


def _texted(world, settings):
    settings.SMS_URL = "locmem:"
    locmem.outbox.clear()
    lyon = contacts(world.unit_a, 2, sms=True)
    # The same person is also a contact of Lille (one number, two stores).
    lille = contacts(world.unit_b, 1, sms=True)
    Contact.objects.filter(pk=lille[0].pk).update(phone=lyon[0].phone)
    campaign = local_campaign(world, channel="sms")
    launched(world, campaign)
    run_campaign(campaign.pk)
    return lyon, lille[0], campaign


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        ("STOP", True),
        ("stop", True),
        ("Arrêt", True),
        ("ARRET SVP", True),
        (" Stop.", True),
        ("STOP SMS", True),
        ("désabonner", True),
        ("Unsubscribe", True),
        ("OK merci", False),
        ("Ne pas stop", False),
        ("", False),
    ],
)
def test_stop_keywords(text, stop):
    assert is_stop(text) is stop


def test_a_stop_in_brand_scope_suppresses_the_number_everywhere_and_confirms(
    world, client, texted, django_capture_on_commit_callbacks
):
    lyon, lille, campaign = texted
    assert policy_for(world.root).sms_stop_scope == StopScope.BRAND  # the safe default
    phone = lyon[0].phone
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            URL, {"from": phone.replace("+33", "0"), "text": "Arrêt", "id": "in-1"}
        )
    assert answer.status_code == 200 and answer.json() == {
        "stop": True,
        "scope": "brand",
        "withdrawn": 2,
    }
    assert set(Contact.objects.filter(phone=phone).values_list("sms_consent", flat=True)) == {
        ConsentStatus.WITHDRAWN
    }
    assert Suppression.objects.filter(
        unit_path="", channel="sms", value_hash=identifier_hash("phone", phone)
    ).exists()
    row = Recipient.objects.get(campaign=campaign, contact=lyon[0])
    (event,) = Event.objects.filter(kind=Event.Kind.UNSUBSCRIBED)
    assert (event.recipient_id, event.channel, event.unit_id) == (row.pk, "sms", world.unit_a.pk)
    confirmation = locmem.outbox[-1]
    assert confirmation.to == phone and "Maison Test" in confirmation.text
    # The same reply delivered twice changes nothing more.
    again = client.post(URL, {"from": phone, "text": "STOP", "id": "in-1"})
    assert (
        again.json()["withdrawn"] == 0
        and Event.objects.filter(kind=Event.Kind.UNSUBSCRIBED).count() == 1
    )
    assert (
        Contact.objects.get(pk=lyon[1].pk).sms_consent == ConsentStatus.GRANTED
    )  # another number: untouched


def test_a_stop_in_unit_scope_stays_in_the_unit_that_wrote(
    world, client, texted, django_capture_on_commit_callbacks
):
    lyon, lille, _campaign = texted
    policy = policy_for(world.root)
    policy.sms_stop_scope = StopScope.UNIT
    policy.save()
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(
            URL,
            data=json.dumps({"msisdn": lyon[0].phone, "message": "STOP"}),
            content_type="application/json",
        )
    assert answer.json() == {"stop": True, "scope": "unit", "withdrawn": 1}
    assert Contact.objects.get(pk=lyon[0].pk).sms_consent == ConsentStatus.WITHDRAWN
    assert Contact.objects.get(pk=lille.pk).sms_consent == ConsentStatus.GRANTED
    assert "Lyon" in locmem.outbox[-1].text


def test_other_replies_and_bad_calls_change_nothing(world, client, texted):
    lyon, _lille, _campaign = texted
    assert client.post(URL, {"from": lyon[0].phone, "text": "Merci !"}).json() == {"stop": False}
    assert client.post(URL, {"text": "STOP"}).status_code == 400
    assert client.post(URL, data="[1]", content_type="application/json").status_code == 400
    assert (
        client.post("/hooks/sms/wrong-key/", {"from": lyon[0].phone, "text": "STOP"}).status_code
        == 404
    )
    assert client.get(URL).status_code == 405
    assert Contact.objects.get(pk=lyon[0].pk).sms_consent == ConsentStatus.GRANTED
