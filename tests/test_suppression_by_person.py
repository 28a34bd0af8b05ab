"""A brand-wide suppression stops every record of the person, Gmail rules or not (issue 20).

With the network's Gmail rules on, ``c.laire+promo@gmail.com`` (Lyon) and
``claire@gmail.com`` (Lille) are one address and one person. A hard bounce, a complaint or
a brand-wide STOP of the dotted address must stop her Lille record too, and a record that
joins her later: the suppression reaches the person through the records' links. Driven
through the real preview, freeze (``campaign_launch``) and hand-off (``Runner``).
"""

from __future__ import annotations

import pytest

from enseigne.campaigns import audience, services
from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.contacts.models import ConsentStatus, Contact, Suppression
from enseigne.contacts.services import suppress_brand_wide
from enseigne.delivery.channels.locmem.transport import LocmemTransport
from enseigne.delivery.pipeline import Runner
from enseigne.identity import services as identity
from enseigne.identity.models import IdentityPolicy, RecordLink
from tests.campaign_helpers import email_template, launched, local_campaign
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
DOTTED = "c.laire+promo@gmail.com"
PLAIN = "claire@gmail.com"
REASONS = [
    Suppression.Reason.HARD_BOUNCE,
    Suppression.Reason.COMPLAINT,
    Suppression.Reason.UNSUBSCRIBE,  # a brand-wide STOP
]


def _gmail_rules(world, on: bool) -> None:
    IdentityPolicy.objects.update_or_create(
        network=world.root.network, defaults={"gmail_rules": on}
    )


def _record(unit, email: str, phone: str | None = None) -> Contact:
    return ContactFactory(unit=unit, email=email, phone=phone, email_consent=ConsentStatus.GRANTED)


def _person(contact: Contact) -> int:
    return RecordLink.objects.get(contact=contact).person_id


def _national(world, name="Printemps") -> Campaign:
    return services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name=name,
        template=email_template(world, name=f"Modèle {name}"),
    )


def _rows(campaign: Campaign, *records: Contact) -> dict[int, tuple[str, str]]:
    return {
        r.contact_id: (r.status, r.reason)
        for r in Recipient.objects.filter(campaign=campaign, contact__in=records)
    }


def _run(campaign: Campaign):
    return Runner(campaign.pk, transport=LocmemTransport()).run()


@pytest.mark.parametrize("reason", REASONS)
def test_with_gmail_rules_a_dotted_address_suppressed_stops_her_other_store(world, reason):
    _gmail_rules(world, True)
    lyon, lille = _record(world.unit_a, DOTTED), _record(world.unit_b, PLAIN)
    bystander = _record(world.unit_b, "marc.durand@free.fr")
    assert _person(lyon) == _person(lille)
    suppress_brand_wide(channel="email", address=DOTTED, reason=reason)
    campaign = _national(world)
    assert audience.preview(campaign).exclusions == {Reason.SUPPRESSED: 2}
    launched(world, campaign)
    assert _rows(campaign, lyon, lille, bystander) == {
        lyon.pk: ("skipped", Reason.SUPPRESSED),
        lille.pk: ("skipped", Reason.SUPPRESSED),
        bystander.pk: ("pending", ""),
    }
    # Lille's own campaign too: the suppression is the person's, not the national campaign's.
    local = local_campaign(world, unit=world.unit_b)
    launched(world, local)
    assert _rows(local, lille, bystander) == {
        lille.pk: ("skipped", Reason.SUPPRESSED),
        bystander.pk: ("pending", ""),
    }


def test_with_gmail_rules_three_stores_and_the_plain_address_suppressed(world):
    # Whichever of her addresses bounces (the plain one already matched by key), all three stop.
    _gmail_rules(world, True)
    records = [
        _record(world.unit_a, DOTTED),
        _record(world.unit_a2, "claire+boutique@googlemail.com"),
        _record(world.unit_b, PLAIN),
    ]
    assert len({_person(r) for r in records}) == 1
    for address in (PLAIN, DOTTED, "claire+boutique@googlemail.com"):
        Suppression.objects.all().delete()
        suppress_brand_wide(channel="email", address=address, reason="hard_bounce")
        campaign = _national(world, name=address)
        launched(world, campaign)
        assert {reason for _status, reason in _rows(campaign, *records).values()} == {
            Reason.SUPPRESSED
        }


def test_without_gmail_rules_the_addresses_are_two_people_and_one_stays(world):
    _gmail_rules(world, False)
    lyon, lille = _record(world.unit_a, DOTTED), _record(world.unit_b, PLAIN)
    assert _person(lyon) != _person(lille)
    suppress_brand_wide(channel="email", address=DOTTED, reason="hard_bounce")
    campaign = _national(world)
    launched(world, campaign)
    assert _rows(campaign, lyon, lille) == {
        lyon.pk: ("skipped", Reason.SUPPRESSED),
        lille.pk: ("pending", ""),
    }


@pytest.mark.parametrize("gmail_rules", [False, True])
def test_a_person_linked_by_phone_is_stopped_with_or_without_gmail_rules(world, gmail_rules):
    _gmail_rules(world, gmail_rules)
    phone = "+33612345678"
    lyon = _record(world.unit_a, DOTTED, phone=phone)
    lille = _record(world.unit_b, "claire.m@free.fr", phone=phone)
    assert _person(lyon) == _person(lille)
    suppress_brand_wide(channel="email", address=DOTTED, reason="complaint")
    campaign = _national(world)
    launched(world, campaign)
    assert _rows(campaign, lyon, lille) == {
        lyon.pk: ("skipped", Reason.SUPPRESSED),
        lille.pk: ("skipped", Reason.SUPPRESSED),
    }


def test_a_record_joining_her_after_the_suppression_is_stopped_too(world):
    _gmail_rules(world, True)
    lyon = _record(world.unit_a, DOTTED)
    suppress_brand_wide(channel="email", address=DOTTED, reason="hard_bounce")
    lille = _record(world.unit_b, PLAIN)  # registered later in Lille: joins her person
    assert _person(lyon) == _person(lille)
    local = local_campaign(world, unit=world.unit_b)
    launched(world, local)
    assert _rows(local, lille) == {lille.pk: ("skipped", Reason.SUPPRESSED)}


def test_a_suppression_after_the_freeze_stops_her_other_record_at_the_hand_off(world):
    _gmail_rules(world, True)
    _lyon, lille = _record(world.unit_a, DOTTED), _record(world.unit_b, PLAIN)
    others = [_record(world.unit_b, f"client{i}.lille@orange.fr") for i in range(3)]
    local = local_campaign(world, unit=world.unit_b)
    launched(world, local)
    assert _rows(local, lille) == {lille.pk: ("pending", "")}
    suppress_brand_wide(channel="email", address=DOTTED, reason="hard_bounce")
    stats = _run(local)
    assert (stats.sent, stats.skipped) == (3, 1)
    assert _rows(local, lille, *others)[lille.pk] == ("skipped", Reason.SUPPRESSED)


def test_a_record_merged_into_her_after_the_freeze_is_stopped_at_the_hand_off(world):
    _gmail_rules(world, True)
    lyon = _record(world.unit_a, DOTTED)
    lille = _record(world.unit_b, "claire.m@free.fr")
    assert _person(lyon) != _person(lille)
    suppress_brand_wide(channel="email", address=DOTTED, reason="hard_bounce")
    local = local_campaign(world, unit=world.unit_b)
    launched(world, local)
    assert _rows(local, lille) == {lille.pk: ("pending", "")}
    identity.merge(actor=world.hq_admin, records=[lyon, lille], reason="Même cliente")
    assert _run(local).skipped == 1
    assert _rows(local, lille) == {lille.pk: ("skipped", Reason.SUPPRESSED)}


def test_a_split_record_is_no_longer_stopped_by_her_suppression(world):
    _gmail_rules(world, True)
    lyon, lille = _record(world.unit_a, DOTTED), _record(world.unit_b, PLAIN)
    suppress_brand_wide(channel="email", address=DOTTED, reason="hard_bounce")
    identity.split(actor=world.hq_admin, records=[lille], reason="Deux personnes")
    campaign = _national(world)
    launched(world, campaign)
    assert _rows(campaign, lyon, lille) == {
        lyon.pk: ("skipped", Reason.SUPPRESSED),
        lille.pk: ("pending", ""),
    }


def test_a_store_unsubscribe_of_the_dotted_address_stays_the_stores(world):
    _gmail_rules(world, True)
    lyon, lille = _record(world.unit_a, DOTTED), _record(world.unit_b, PLAIN)
    Suppression.objects.create(
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        channel="email",
        value_hash=lyon.email_hash,
        reason=Suppression.Reason.UNSUBSCRIBE,
    )
    campaign = _national(world)
    launched(world, campaign)
    assert _rows(campaign, lyon, lille) == {
        lyon.pk: ("skipped", Reason.SUPPRESSED),
        lille.pk: ("pending", ""),
    }


def test_another_network_is_not_stopped_by_her_suppression(world):
    from enseigne.identity.sending import brand_wide_suppressed_records

    _gmail_rules(world, True)
    lyon, lille = _record(world.unit_a, DOTTED), _record(world.unit_b, PLAIN)
    suppress_brand_wide(channel="email", address=DOTTED, reason="hard_bounce")
    root = world.root.path
    assert set(brand_wide_suppressed_records("email", root).values_list("contact", flat=True)) == {
        lyon.pk,
        lille.pk,
    }
    assert not brand_wide_suppressed_records("email", "9999").exists()
    assert set(
        brand_wide_suppressed_records("email", root, among=[lille.pk]).values_list(
            "contact", flat=True
        )
    ) == {lyon.pk, lille.pk}
    assert not brand_wide_suppressed_records("sms", root).exists()
