"""The preferred channel, e-mail or SMS, from engagement (issue 21): for the record and, for
HQ, for the person (its records added up). Every count is checked against a reference
computed here from the raw ledger and event rows, for HQ, a region manager and a store
(under row-level security on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Contact
from enseigne.contacts.segments import field_catalogue, segment_contacts
from enseigne.delivery.models import Event
from enseigne.identity.models import RecordLink
from enseigne.lib.rowsecurity import db_scope
from enseigne.network.access import access_for
from tests.campaign_helpers import local_campaign
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

K = Event.Kind


@pytest.fixture
def history(world):
    """Forty-five people over Lyon, Grenoble and Lille (every third also in a second store,
    same e-mail), e-mail and SMS messages over four months, human and machine clicks,
    attributed purchases, failed messages that were clicked anyway (never counted)."""
    rng = random.Random(2112)
    now = timezone.now()
    units = [world.unit_a, world.unit_a2, world.unit_b]
    records: list[Contact] = []
    for i in range(45):
        records.append(ContactFactory(unit=units[i % 3], email=f"jeanne.{i}@orange.fr"))
        if i % 3 == 0:
            records.append(ContactFactory(unit=units[(i + 1) % 3], email=f"jeanne.{i}@orange.fr"))
    campaigns = {
        (unit.pk, channel): local_campaign(world, unit=unit, channel=channel)
        for unit in units
        for channel in ("email", "sms")
    }
    events = []
    for record in records:
        for channel in ("email", "sms"):
            campaign = campaigns[(record.unit_id, channel)]
            where = {"unit_id": record.unit_id, "unit_path": record.unit_path}
            for _message in range(rng.randint(0, 3)):
                sent_at = now - dt.timedelta(days=rng.randint(0, 120), hours=1)
                status = "sent" if rng.random() < 0.9 else "failed"
                row = Recipient.objects.create(
                    campaign=campaign,
                    contact=record,
                    unit=record.unit,
                    unit_path=record.unit_path,
                    channel=channel,
                    status=status,
                    sent_at=sent_at,
                )
                # The ledger is unique per (campaign, contact, channel): the next message
                # of the same record needs another campaign.
                campaign = local_campaign(world, unit=record.unit, channel=channel)
                on_row = {
                    "channel": channel,
                    "campaign_id": row.campaign_id,
                    "recipient_id": row.pk,
                }
                for kind in (K.CLICKED, K.CLICKED, K.CONVERTED, K.OPENED):
                    if rng.random() < 0.45:
                        at = sent_at + dt.timedelta(days=rng.randint(0, 20))
                        machine = kind == K.CLICKED and rng.random() < 0.2
                        events.append(
                            Event(occurred_at=at, kind=kind, machine=machine, **on_row, **where)
                        )
    Event.objects.bulk_create(events)
    return {"records": records, "now": now}


def scores(days: int) -> dict[int, Counter]:
    """The reference, from the raw rows: each contact's engaged messages per channel."""
    since = timezone.now() - dt.timedelta(days=days)
    engaged = {
        e.recipient_id
        for e in Event.objects.all()
        if e.kind in (K.CLICKED, K.CONVERTED)
        and not e.machine
        and e.recipient_id is not None
        and e.occurred_at >= since
    }
    found: dict[int, Counter] = defaultdict(Counter)
    for row in Recipient.objects.all():
        if row.status == "sent" and row.contact_id and row.pk in engaged:
            found[row.contact_id][row.channel] += 1
    return found


def preference(counts: Counter) -> str | None:
    if counts["email"] > counts["sms"]:
        return "email"
    if counts["sms"] > counts["email"]:
        return "sms"
    return None


def person_scores(by_record: dict[int, Counter], everyone: set[int]) -> dict[int, Counter]:
    """Each record → its person's engaged messages (a record not linked is its own person)."""
    person = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    summed: dict[int, Counter] = defaultdict(Counter)
    for contact, counts in by_record.items():
        summed[person.get(contact, -contact)] += counts
    return {c: summed[person.get(c, -c)] for c in everyone}


def selected(user, tree) -> set[int]:
    """As a request runs it: inside the user's row-level scope (PostgreSQL)."""
    with db_scope(access_for(user).paths):
        return set(segment_contacts(user, tree).values_list("pk", flat=True))


def rule(field, op, value, days):
    return {"match": "all", "rules": [{"field": field, "op": op, "value": value, "days": days}]}


@pytest.mark.parametrize("days", [30, 365])
def test_record_and_person_preferences_count_the_raw_rows(world, history, days):
    everyone = {r.pk for r in history["records"]}
    by_record = scores(days)
    prefers = {c: preference(by_record.get(c, Counter())) for c in everyone}
    assert {"email", "sms", None} <= set(prefers.values()), "the case must have every answer"
    for user, scope in (
        (world.hq_admin, world.root.path),
        (world.region_manager, world.region_a.path),
        (world.manager_a, world.unit_a.path),
    ):
        mine = {r.pk for r in history["records"] if r.unit_path.startswith(scope)}
        for value in ("email", "sms", ["email", "sms"]):
            wanted = {value} if isinstance(value, str) else set(value)
            inside = {c for c in mine if prefers[c] in wanted}
            assert inside and mine - inside
            tree = rule("preferred_channel", "equals", value, days)
            assert selected(user, tree) == inside, (user, value)
            tree = rule("preferred_channel", "not_equals", value, days)
            assert selected(user, tree) == mine - inside, (user, value)
    by_person = person_scores(by_record, everyone)
    of_person = {c: preference(counts) for c, counts in by_person.items()}
    assert of_person != prefers, "a person's records added up must differ from one record's"
    for value in ("email", "sms"):
        inside = {c for c in everyone if of_person[c] == value}
        tree = rule("person_preferred_channel", "equals", value, days)
        assert selected(world.hq_admin, tree) == inside
        tree = rule("person_preferred_channel", "not_equals", value, days)
        assert selected(world.hq_admin, tree) == everyone - inside


def test_a_record_not_linked_yet_is_its_own_person(world, history):
    by_record = scores(365)
    lone = next(c for c, counts in by_record.items() if preference(counts) == "sms")
    RecordLink.objects.filter(contact_id=lone).delete()
    tree = rule("person_preferred_channel", "equals", "sms", 365)
    assert lone in selected(world.hq_admin, tree)


def test_person_preference_is_hqs_only_and_the_catalogue_explains_the_rule(world, history):
    hq = {f["field"]: f for f in field_catalogue(world.hq_admin)}
    store = {f["field"]: f for f in field_catalogue(world.manager_a)}
    assert "person_preferred_channel" in hq and "person_preferred_channel" not in store
    # "Any record of the person prefers…" would not be the person's preference: no twin.
    assert "person.preferred_channel" not in hq
    field = store["preferred_channel"]
    assert field["inputs"] == {"equals": "choice+days", "not_equals": "choice+days"}
    assert field["choices"] == [["email", "Email"], ["sms", "SMS"]]
    assert "clicked in it or a purchase was attributed to it" in field["help"]
    with pytest.raises(ValidationError, match="rule 1: choose e-mail or SMS."):
        selected(world.manager_a, rule("preferred_channel", "equals", "fax", 30))
    with pytest.raises(ValidationError, match="rule 1: give a number of days"):
        selected(world.manager_a, rule("preferred_channel", "equals", "email", 0))
    with pytest.raises(ValidationError):
        selected(world.manager_a, rule("person_preferred_channel", "equals", "email", 30))
