"""Segments on what customers did (issue 21): received, opened, clicked — for the record and,
for HQ, for the person. Every count is checked against a reference computed here from the
raw ledger and event rows, for HQ, a region manager and a store (under row-level security on
PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from enseigne.campaigns.models import Campaign, Recipient
from enseigne.contacts.models import Contact
from enseigne.contacts.segments import field_catalogue, segment_contacts
from enseigne.delivery.models import Event
from enseigne.identity.models import RecordLink
from enseigne.lib.rowsecurity import db_scope
from enseigne.network.access import access_for
from tests.campaign_helpers import local_campaign
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

KINDS = {"opened": Event.Kind.OPENED, "clicked": Event.Kind.CLICKED}


@pytest.fixture
def history(world):
    """Forty people over Lyon, Grenoble and Lille (a third of them in two stores, same
    e-mail), three campaigns sent over four months, opens and clicks — some by machines,
    some opens with no ledger row (open tracking refused)."""
    rng = random.Random(21)
    now = timezone.now()
    units = [world.unit_a, world.unit_a2, world.unit_b]
    records: list[Contact] = []
    for i in range(40):
        home = units[i % 3]
        records.append(ContactFactory(unit=home, email=f"marie.{i}.martin@orange.fr"))
        if i % 3 == 0:
            other = units[(i + 1) % 3]
            records.append(ContactFactory(unit=other, email=f"marie.{i}.martin@orange.fr"))
            assert len(person_closure({records[-1].pk})) == 2
    campaigns = {unit.pk: local_campaign(world, unit=unit) for unit in units}
    Campaign.objects.filter(pk__in=[c.pk for c in campaigns.values()]).update(launched_at=now)
    rows, events = [], []
    for index, record in enumerate(records):
        # The first woman was reached, opened and clicked in Lyon yesterday, never in her
        # second store: only the person conditions find that second record.
        first = index == 0
        if index == 1 or (not first and rng.random() < 0.2):
            continue  # never received anything
        campaign = campaigns[record.unit_id]
        sent_at = now - dt.timedelta(days=1 if first else rng.randint(0, 120))
        status = "sent" if first or rng.random() < 0.9 else "failed"
        row = Recipient.objects.create(
            campaign=campaign,
            contact=record,
            unit=record.unit,
            unit_path=record.unit_path,
            channel="email",
            status=status,
            sent_at=sent_at if status == "sent" else None,
        )
        rows.append(row)
        if status != "sent":
            continue
        for kind in (Event.Kind.OPENED, Event.Kind.CLICKED):
            if first or rng.random() < 0.5:
                events.append(
                    Event(
                        occurred_at=sent_at
                        + dt.timedelta(hours=1 if first else rng.randint(1, 24 * 40)),
                        kind=kind,
                        channel="email",
                        campaign_id=campaign.pk,
                        unit_id=record.unit_id,
                        unit_path=record.unit_path,
                        recipient_id=row.pk if first or rng.random() < 0.9 else None,
                        machine=not first and rng.random() < 0.15,
                    )
                )
    Event.objects.bulk_create(events)
    return {"records": records, "campaigns": campaigns, "rows": rows, "events": events}


def did(history, field: str, *, campaign=None, since=None) -> set[int]:
    """The reference: contact ids whose own ledger rows show ``field``."""
    by_row = {row.pk: row for row in history["rows"]}
    found = set()
    if field == "received":
        for row in history["rows"]:
            if (
                row.status == "sent"
                and (campaign is None or row.campaign_id == campaign.pk)
                and (since is None or row.sent_at >= since)
            ):
                found.add(row.contact_id)
        return found
    for event in history["events"]:
        if event.kind != KINDS[field] or event.machine or event.recipient_id is None:
            continue
        row = by_row[event.recipient_id]
        if campaign is not None and row.campaign_id != campaign.pk:
            continue
        if since is not None and event.occurred_at < since:
            continue
        found.add(row.contact_id)
    return found


def visible(user_scope: list[str], history) -> set[int]:
    return {r.pk for r in history["records"] if r.unit_path.startswith(tuple(user_scope))}


def person_closure(ids: set[int]) -> set[int]:
    person = dict(RecordLink.objects.values_list("contact_id", "person_id"))
    persons = {person[i] for i in ids}
    return {c for c, p in person.items() if p in persons}


def selected(user, rules) -> set[int]:
    """As a request runs it: inside the user's row-level scope (PostgreSQL)."""
    with db_scope(access_for(user).paths):
        return set(segment_contacts(user, rules).values_list("pk", flat=True))


def rule(field, op, value):
    return {"match": "all", "rules": [{"field": field, "op": op, "value": value}]}


@pytest.mark.parametrize("field", ["received", "opened", "clicked"])
@pytest.mark.parametrize("persona", ["hq_admin", "region_manager", "manager_a"])
def test_record_conditions_match_the_raw_rows(world, history, field, persona):
    user = getattr(world, persona)
    scope = {
        "hq_admin": [world.root.path],
        "region_manager": [world.region_a.path],
        "manager_a": [world.unit_a.path],
    }[persona]
    mine = visible(scope, history)
    lyon = history["campaigns"][world.unit_a.pk]
    since = timezone.now() - dt.timedelta(days=30)
    cases = [
        ("campaign", str(lyon.public_id), did(history, field, campaign=lyon)),
        ("any_in_last_days", "30", did(history, field, since=since)),
    ]
    for op, value, positive in cases:
        assert selected(user, rule(field, op, value)) == mine & positive, (op, value)
    negatives = [
        ("not_campaign", str(lyon.public_id), did(history, field, campaign=lyon)),
        ("none_in_last_days", "30", did(history, field, since=since)),
    ]
    for op, value, positive in negatives:
        assert selected(user, rule(field, op, value)) == mine - positive, (op, value)
    # Sanity: the data set is not trivially empty on either side.
    assert did(history, field) and mine - did(history, field)


@pytest.mark.parametrize("field", ["received", "opened", "clicked"])
def test_person_conditions_reach_every_record_of_the_person(world, history, field):
    since = timezone.now() - dt.timedelta(days=45)
    positive = person_closure(did(history, field, since=since))
    everyone = {r.pk for r in history["records"]}
    assert selected(world.hq_admin, rule(f"person.{field}", "any_in_last_days", "45")) == positive
    assert (
        selected(world.hq_admin, rule(f"person.{field}", "none_in_last_days", "45"))
        == everyone - positive
    )
    # The person condition reaches records the record condition does not.
    assert positive - did(history, field, since=since)


def test_a_record_not_linked_yet_counts_as_its_own_person(world, history):
    lone = history["records"][1]
    RecordLink.objects.filter(contact=lone).delete()
    row = Recipient.objects.create(
        campaign=history["campaigns"][lone.unit_id],
        contact=lone,
        unit=lone.unit,
        unit_path=lone.unit_path,
        channel="sms",
        status="sent",
        sent_at=timezone.now(),
    )
    assert row.pk
    assert lone.pk in selected(world.hq_admin, rule("person.received", "any_in_last_days", "1"))


@pytest.mark.parametrize("persona", ["region_manager", "manager_a", "staff_a", "manager_b"])
def test_person_conditions_are_hqs_only(world, history, persona):
    user = getattr(world, persona)
    fields = {f["field"] for f in field_catalogue(user)}
    assert {"received", "opened", "clicked"} <= fields
    assert not any(f.startswith("person.") for f in fields)
    with pytest.raises(ValidationError, match="unknown field"):
        selected(user, rule("person.clicked", "any_in_last_days", "30"))


def test_hq_catalogue_offers_record_and_person_conditions_with_inputs(world, history):
    catalogue = {f["field"]: f for f in field_catalogue(world.hq_admin)}
    clicked = catalogue["person.clicked"]
    assert clicked["inputs"] == {
        "campaign": "choice",
        "not_campaign": "choice",
        "any_in_last_days": "number",
        "none_in_last_days": "number",
    }
    assert len(catalogue["clicked"]["choices"]) == 3


def test_a_store_picks_only_campaigns_it_sees(world, history):
    choices = {key for key, _label in field_catalogue(world.manager_a)[-1]["choices"]}
    lille = history["campaigns"][world.unit_b.pk]
    assert str(lille.public_id) not in choices
    assert str(history["campaigns"][world.unit_a.pk].public_id) in choices
    # Naming another store's campaign reads as an unknown one (no leak).
    with pytest.raises(ValidationError, match="unknown campaign"):
        selected(world.manager_a, rule("clicked", "campaign", str(lille.public_id)))


@pytest.mark.parametrize(
    "value",
    ["abc", "0", "-3", "3651", "1.5", "", None, "3\x000", " ", [], {"days": 3}],
)
def test_bad_numbers_of_days_are_named(world, history, value):
    with pytest.raises(ValidationError, match=r"rule 1"):
        selected(world.hq_admin, rule("clicked", "any_in_last_days", value))


@pytest.mark.parametrize(
    "value", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "", None, 7]
)
def test_bad_campaigns_are_named(world, history, value):
    with pytest.raises(ValidationError, match=r"rule 1"):
        selected(world.hq_admin, rule("received", "campaign", value))


def test_a_wrong_operator_is_named(world, history):
    with pytest.raises(ValidationError, match="cannot use the operator"):
        selected(world.hq_admin, rule("clicked", "equals", "x"))


def test_the_builder_page_offers_the_conditions(world, history, client):
    client.force_login(world.hq_admin)
    page = client.get("/segments/new/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "person.clicked" in page and "Clicked in a campaign" in page
