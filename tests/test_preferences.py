"""The preference centre behind the unsubscribe link: per channel, this shop or the whole brand."""

from __future__ import annotations

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import ConsentStatus, Contact, Suppression
from enseigne.delivery.models import Event
from enseigne.delivery.pipeline import run_campaign
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.signing import sign_id
from tests.campaign_helpers import contacts, launched, local_campaign


def _link(world):
    lyon = contacts(world.unit_a, 1, sms=True)[0]
    # The same person in Lille, by e-mail and phone.
    lille = contacts(world.unit_b, 1, sms=True)[0]
    Contact.objects.filter(pk=lille.pk).update(email=lyon.email, phone=lyon.phone)
    campaign = local_campaign(world)
    launched(world, campaign)
    run_campaign(campaign.pk)
    row = Recipient.objects.get(campaign=campaign, contact=lyon)
    return f"/u/{sign_id('unsubscribe', row.pk)}/", lyon, lille, row


def test_the_page_lists_the_channels_and_a_get_changes_nothing(world, client):
    url, lyon, _lille, _row = _link(world)
    page = client.get(url).content.decode()
    assert 'id="keep_email"' in page and 'id="keep_sms"' in page and 'value="brand"' in page
    lyon.refresh_from_db()
    assert (lyon.email_consent, lyon.sms_consent) == (ConsentStatus.GRANTED, ConsentStatus.GRANTED)


def test_stopping_sms_for_this_shop_only(world, client):
    url, lyon, lille, _row = _link(world)
    answer = client.post(url, {"preferences": "1", "keep_email": "1", "scope": "unit"})
    assert answer.status_code == 200 and 'id="preferences-saved"' in answer.content.decode()
    lyon.refresh_from_db()
    lille.refresh_from_db()
    assert (lyon.email_consent, lyon.sms_consent) == (
        ConsentStatus.GRANTED,
        ConsentStatus.WITHDRAWN,
    )
    assert lille.sms_consent == ConsentStatus.GRANTED
    # The campaign was an e-mail: an SMS preference is not one of its unsubscribes.
    assert not Event.objects.filter(kind=Event.Kind.UNSUBSCRIBED).exists()


def test_stopping_e_mails_from_the_whole_brand(world, client):
    url, lyon, lille, row = _link(world)
    client.post(url, {"preferences": "1", "keep_sms": "1", "scope": "brand"})
    for person in (lyon, lille):
        person.refresh_from_db()
        assert (person.email_consent, person.sms_consent) == (
            ConsentStatus.WITHDRAWN,
            ConsentStatus.GRANTED,
        )
    assert Suppression.objects.filter(
        unit_path="", channel="email", value_hash=identifier_hash("email", lyon.email)
    ).exists()
    (event,) = Event.objects.filter(kind=Event.Kind.UNSUBSCRIBED)
    assert event.recipient_id == row.pk
    # Saving again changes nothing more, and the page no longer offers e-mails as subscribed.
    again = client.post(
        url, {"preferences": "1", "keep_sms": "1", "keep_email": "1", "scope": "brand"}
    )
    assert (
        "Nothing to change" in again.content.decode() or "Rien à changer" in again.content.decode()
    )
    assert Event.objects.filter(kind=Event.Kind.UNSUBSCRIBED).count() == 1


def test_accepting_per_person_opens_puts_the_row_in_the_next_pixel(world, client):
    import email
    import re
    from email import policy

    from enseigne.contacts.models import ConsentEvent
    from enseigne.delivery.channels.locmem import transport as locmem
    from enseigne.tracking import services
    from tests.test_tracking import _get

    url, lyon, _lille, _row = _link(world)
    page = client.get(url).content.decode()
    assert (
        'id="open_tracking"' in page and "checked" not in page.split('id="open_tracking"')[1][:20]
    )
    client.post(
        url,
        {
            "preferences": "1",
            "keep_email": "1",
            "keep_sms": "1",
            "scope": "unit",
            "open_tracking": "1",
        },
    )
    lyon.refresh_from_db()
    assert lyon.open_tracking is True
    proof = ConsentEvent.objects.get(contact=lyon, purpose="open_tracking")
    assert (proof.status, proof.source) == (ConsentStatus.GRANTED, "form")
    locmem.outbox.clear()
    services.forget_links()
    campaign = local_campaign(world)
    launched(world, campaign)
    run_campaign(campaign.pk)
    html = (
        email.message_from_bytes(locmem.outbox[0].data, policy=policy.default)
        .get_body(("html",))
        .get_content()
    )
    (pixel,) = re.findall(r'src="http://127\.0\.0\.1:8000(/o/[^"]+\.gif)"', html)
    _get(pixel)
    row = Recipient.objects.get(campaign=campaign, contact=lyon)
    assert Event.objects.get(kind=Event.Kind.OPENED).recipient_id == row.pk
    # Refusing again is recorded too, and the box comes back unticked.
    client.post(url, {"preferences": "1", "keep_email": "1", "keep_sms": "1", "scope": "unit"})
    lyon.refresh_from_db()
    assert lyon.open_tracking is False
    assert ConsentEvent.objects.filter(contact=lyon, purpose="open_tracking").count() == 2
