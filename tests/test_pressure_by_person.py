"""Planned campaigns count against a person's caps once per person (issue 20).

A campaign approved or scheduled but not frozen yet has no ledger: the audience weighs it by
its planned audience. Those planned messages count per person, like the frozen and sent
ones: the woman registered in Lyon and in Lille, with a campaign planned this week from each
store, has two messages planned against her cap of two, not one per record. Measured through
the real preview and the real freeze (``campaign_launch``), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from enseigne.campaigns import audience, services
from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Campaign, PressureRule, Recipient, SendingPolicy
from enseigne.contacts.models import ConsentStatus, Contact
from enseigne.identity import services as identity
from enseigne.identity.models import RecordLink
from tests.campaign_helpers import email_template, launched, local_campaign
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
EMAIL = "claire.martin@orange.fr"
NOW = timezone.now().replace(microsecond=0)


def _record(unit, *, email=EMAIL, consent=ConsentStatus.GRANTED) -> Contact:
    return ContactFactory(unit=unit, email=email, phone=None, email_consent=consent)


def _person(contact: Contact) -> int:
    return RecordLink.objects.get(contact=contact).person_id


def _cap(world, max_messages: int, days: int = 7) -> None:
    PressureRule.objects.create(
        node=world.root, channel="email", max_messages=max_messages, window_days=days
    )


def _scheduled(world, campaign: Campaign, days: float) -> Campaign:
    """Approved and scheduled ``days`` from now: planned, its audience not frozen."""
    services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=campaign, send_at=NOW + dt.timedelta(days=days)
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    return campaign


def _planned_local(world, unit, days: float) -> Campaign:
    return _scheduled(world, local_campaign(world, unit=unit), days)


def _national(world, name: str) -> Campaign:
    return services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name=name,
        template=email_template(world, name=f"Modèle {name}"),
    )


def _outcome(world, campaign: Campaign, *records: Contact, days: float = 3) -> dict[int, str]:
    """The reason of each record in the preview and in the frozen ledger, ``days`` from now
    (after the planned campaigns); both must say the same."""
    when = NOW + dt.timedelta(days=days)
    campaign.send_at = when
    campaign.save(update_fields=["send_at"])
    preview = audience.preview(campaign, when)
    launched(world, campaign, when=when)
    rows = {
        r.contact_id: r.reason
        for r in Recipient.objects.filter(campaign=campaign, contact__in=records)
    }
    excluded = {reason: n for reason, n in preview.exclusions.items() if reason != "over_budget"}
    counted: dict[str, int] = {}
    for reason in rows.values():
        if reason:
            counted[reason] = counted.get(reason, 0) + 1
    assert excluded == counted, (preview.exclusions, rows)
    return rows


def test_two_campaigns_planned_from_two_stores_fill_her_cap_of_two(world):
    lyon, lille = _record(world.unit_a), _record(world.unit_b)
    assert _person(lyon) == _person(lille)
    alone = _record(world.unit_a, email="solene.petit@orange.fr")
    _cap(world, 2)
    _planned_local(world, world.unit_a, 1)
    _planned_local(world, world.unit_b, 2)
    # One planned message per record: she would pass at 1 + 1; per person she has 2 of 2.
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, lille, alone) == {
        lyon.pk: Reason.PRESSURE,
        alone.pk: "",
    }


def test_the_preview_names_both_stores_campaigns_as_the_pressure(world):
    lyon, _lille = _record(world.unit_a), _record(world.unit_b)
    _cap(world, 2)
    lyon_planned = _planned_local(world, world.unit_a, 1)
    lille_planned = _planned_local(world, world.unit_b, 2)
    Campaign.objects.filter(pk=lyon_planned.pk).update(name="Soldes Lyon")
    Campaign.objects.filter(pk=lille_planned.pk).update(name="Soldes Lille")
    measured = local_campaign(world, unit=world.unit_a, send_at=NOW + dt.timedelta(days=3))
    preview = audience.preview(measured)
    assert preview.exclusions == {Reason.PRESSURE: 1}
    assert sorted(preview.pressure_sources) == [("Soldes Lille", 1), ("Soldes Lyon", 1)]
    assert lyon.unit_id == world.unit_a.pk


@pytest.mark.parametrize(("cap", "held"), [(2, True), (3, False)])
def test_three_stores_planned_elsewhere_count_for_the_lyon_record(world, cap, held):
    # Nothing planned in Lyon: Grenoble's and Lille's planned messages are hers all the same.
    lyon, grenoble, lille = (_record(u) for u in (world.unit_a, world.unit_a2, world.unit_b))
    assert _person(lyon) == _person(grenoble) == _person(lille)
    _cap(world, cap)
    _planned_local(world, world.unit_a2, 1)
    _planned_local(world, world.unit_b, 2)
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, grenoble, lille) == {
        lyon.pk: Reason.PRESSURE if held else ""
    }


def test_a_woman_of_one_store_only_counts_her_stores_campaigns(world):
    # Lille's planned campaign does not reach her: one planned message of two.
    lyon_only = _record(world.unit_a)
    other = _record(world.unit_b, email="marc.durand@free.fr")
    assert _person(lyon_only) != _person(other)
    _cap(world, 2)
    _planned_local(world, world.unit_a, 1)
    _planned_local(world, world.unit_b, 2)
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon_only, other) == {lyon_only.pk: ""}


def test_a_planned_national_campaign_counts_once_for_a_person_of_two_records(world):
    # It sends her one message, not one a record: 1 of 2, she still gets Lyon's.
    lyon, lille = _record(world.unit_a), _record(world.unit_b)
    _cap(world, 2)
    _scheduled(world, _national(world, "Printemps"), 1)
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, lille) == {lyon.pk: ""}


def test_a_planned_national_and_a_planned_lille_campaign_hold_back_lyon(world):
    lyon, lille = _record(world.unit_a), _record(world.unit_b)
    _cap(world, 2)
    _scheduled(world, _national(world, "Printemps"), 1)
    _planned_local(world, world.unit_b, 2)
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, lille) == {lyon.pk: Reason.PRESSURE}


def test_a_national_campaign_after_two_planned_local_ones_holds_back_every_record(world):
    SendingPolicy.objects.update_or_create(
        node=world.root,
        defaults={"pressure_priority": SendingPolicy.Priority.FIRST_SCHEDULED},
    )
    lyon, lille = _record(world.unit_a), _record(world.unit_b)
    bystander = _record(world.unit_b, email="marc.durand@free.fr")
    _cap(world, 2)
    _planned_local(world, world.unit_a, 1)
    _planned_local(world, world.unit_b, 2)
    measured = _national(world, "Été")
    assert _outcome(world, measured, lyon, lille, bystander) == {
        lyon.pk: Reason.PRESSURE,
        lille.pk: Reason.PRESSURE,
        bystander.pk: "",
    }


def test_a_person_split_after_the_planning_counts_as_two_people(world):
    lyon, lille = _record(world.unit_a), _record(world.unit_b)
    _cap(world, 2)
    _planned_local(world, world.unit_a, 1)
    _planned_local(world, world.unit_b, 2)
    identity.split(actor=world.hq_admin, records=[lille], reason="Deux personnes")
    assert _person(lyon) != _person(lille)
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, lille) == {lyon.pk: ""}


def test_records_merged_after_the_planning_count_together(world):
    lyon = _record(world.unit_a)
    lille = _record(world.unit_b, email="claire.m@free.fr")
    assert _person(lyon) != _person(lille)
    _cap(world, 2)
    _planned_local(world, world.unit_a, 1)
    _planned_local(world, world.unit_b, 2)
    identity.merge(actor=world.hq_admin, records=[lyon, lille], reason="Même cliente")
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, lille) == {lyon.pk: Reason.PRESSURE}


def test_a_record_the_planned_campaign_cannot_reach_adds_nothing(world):
    # Her Lille record has no consent: Lille's planned campaign does not reach her.
    lyon = _record(world.unit_a)
    lille = _record(world.unit_b, consent=ConsentStatus.NONE)
    assert _person(lyon) == _person(lille)
    _cap(world, 2)
    _planned_local(world, world.unit_a, 1)
    _planned_local(world, world.unit_b, 2)
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, lille) == {lyon.pk: ""}


def test_a_planned_message_and_a_sent_one_add_up_per_person(world):
    lyon, lille = _record(world.unit_a), _record(world.unit_b)
    _cap(world, 2)
    sent = local_campaign(world, unit=world.unit_b)
    launched(world, sent)  # frozen: pending in the ledger, counted per person already
    _planned_local(world, world.unit_b, 2)
    measured = local_campaign(world, unit=world.unit_a)
    assert _outcome(world, measured, lyon, lille) == {lyon.pk: Reason.PRESSURE}


def test_local_campaigns_still_go_to_their_stores_records_only(world):
    lyon, lille = _record(world.unit_a), _record(world.unit_b)
    _cap(world, 3)
    _planned_local(world, world.unit_b, 1)
    for unit, record in ((world.unit_a, lyon), (world.unit_b, lille)):
        measured = local_campaign(world, unit=unit)
        assert _outcome(world, measured, lyon, lille, days=2) == {record.pk: ""}
