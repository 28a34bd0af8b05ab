"""HQ's GDPR rights per person (issue 20): one export file, one erasure across the stores."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from enseigne.contacts import services as contacts
from enseigne.contacts.models import ConsentEvent, Contact, Suppression
from enseigne.identity import gdpr
from enseigne.identity.models import MatchCandidate, Person, RecordLink
from enseigne.lib.hashing import identifier_hash
from enseigne.network.models import AuditEvent
from enseigne.tracking.models import Conversion
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

EMAIL = "claire.martin@orange.fr"


@pytest.fixture
def claire(world):
    """The same woman in Lyon, Grenoble and Lille (one e-mail), and a stranger in Lyon."""
    records = [
        ContactFactory(unit=world.unit_a, email=EMAIL, first_name="Claire", phone="+33612345678"),
        ContactFactory(unit=world.unit_a2, email=EMAIL.upper(), first_name="Claire"),
        ContactFactory(unit=world.unit_b, email=EMAIL, first_name="Claire", last_name="Dubois"),
    ]
    contacts.contact_set_tags(contact=records[0], tags=["vip"])
    contacts.consent_record(
        actor=None,
        contact=records[2],
        channel="email",
        status="granted",
        source="form",
        wording_version="web-v3",
        ip_address="192.0.2.7",
    )
    Conversion.objects.create(
        order_id="LIL-1",
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        contact=records[2],
        amount=Decimal("42.50"),
        occurred_at=dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC),
        source=Conversion.Source.DEMO,
    )
    stranger = ContactFactory(unit=world.unit_a, email="paul.leroy@free.fr", first_name="Paul")
    Conversion.objects.create(
        order_id="LYO-9",
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        contact=stranger,
        amount=Decimal("9.00"),
        occurred_at=dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC),
        source=Conversion.Source.DEMO,
    )
    person = RecordLink.objects.get(contact=records[0]).person
    assert {link.contact_id for link in person.links.all()} == {r.pk for r in records}
    return person, records, stranger


def test_one_file_holds_every_record_of_the_person(world, client, claire):
    person, records, stranger = claire
    client.force_login(world.hq_admin)
    response = client.get(f"/hq/people/{person.public_id}/export.json")
    assert response.status_code == 200
    assert (
        response["Content-Disposition"] == f'attachment; filename="person-{person.public_id}.json"'
    )
    data = response.json()
    assert data["format"] == "enseigne.person.v1"
    assert data["person"] == str(person.public_id)
    assert [(r["id"], r["unit"]["name"]) for r in data["records"]] == [
        (str(records[0].public_id), "Lyon"),
        (str(records[1].public_id), "Grenoble"),
        (str(records[2].public_id), "Lille"),
    ]
    lyon, grenoble, lille = data["records"]
    assert [r["link"]["method"] for r in data["records"]] == ["alone", "email", "email"]
    assert lyon["tags"] == ["vip"] and lyon["phone"] == "+33612345678"
    assert grenoble["email"] == EMAIL.upper()
    assert [
        (e["status"], e["wording_version"], e["ip_address"]) for e in lille["consent_history"]
    ] == [("granted", "web-v3", "192.0.2.7")]
    assert lille["campaign_conversions"] == [
        {
            "order_id": "LIL-1",
            "amount": "42.50",
            "occurred_at": "2026-03-01T10:00:00+00:00",
            "source": "demo",
        }
    ]
    assert lyon["campaign_conversions"] == [] and lyon["messages"] == []
    # Nothing of a record not linked to the person.
    text = response.content.decode()
    for value in ("paul.leroy@free.fr", "Paul", "LYO-9", str(stranger.public_id)):
        assert value not in text
    # Audited: one line for the person, one per record (the stores see theirs).
    assert (
        AuditEvent.objects.filter(action="person.export", target_id=str(person.public_id)).count()
        == 1
    )
    assert set(
        AuditEvent.objects.filter(action="contact.export").values_list("target_id", flat=True)
    ) == {str(r.public_id) for r in records}


def test_the_store_export_holds_the_same_sections_for_its_own_record(world, client, claire):
    person, records, _ = claire
    client.force_login(world.manager_b)
    data = client.get(f"/contacts/{records[2].public_id}/data.json").json()
    assert data["campaign_conversions"][0]["order_id"] == "LIL-1"
    # The same sections as HQ's file holds for that record (which adds only why it is linked).
    hq_copy = gdpr.person_data_export(person)["records"][2]
    assert hq_copy.pop("link")["method"] == "email"
    assert data == hq_copy


def test_erasing_the_person_erases_every_record_as_a_store_would(world, client, claire):
    person, records, stranger = claire
    client.force_login(world.hq_admin)
    page = client.get(f"/hq/people/{person.public_id}/erase/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Lyon" in body and "Grenoble" in body and "Lille" in body
    assert Contact.objects.filter(pk__in=[r.pk for r in records]).count() == 3  # GET erases nothing
    response = client.post(f"/hq/people/{person.public_id}/erase/")
    assert response.status_code == 302
    assert list(Contact.objects.values_list("pk", flat=True)) == [stranger.pk]
    assert not Person.objects.filter(pk=person.pk).exists()
    assert ConsentEvent.objects.filter(contact_id__in=[r.pk for r in records]).count() == 0
    # The suppressions are exactly what three per-record erasures leave: one per unit and address.
    email, phone = identifier_hash("email", EMAIL), identifier_hash("phone", "+33612345678")
    grenoble_email = identifier_hash("email", EMAIL.upper())
    assert set(Suppression.objects.values_list("unit_path", "value_hash", "reason")) == {
        (world.unit_a.path, email, "erasure"),
        (world.unit_a.path, phone, "erasure"),
        (world.unit_a2.path, grenoble_email, "erasure"),
        (world.unit_b.path, email, "erasure"),
    }
    for unit, actor in (
        (world.unit_a, world.manager_a),
        (world.unit_b, world.manager_b),
    ):
        with pytest.raises(ValidationError):
            contacts.contact_create(actor=actor, unit=unit, data={"email": EMAIL})
    # The purchase stays, for the store's books, without the person.
    assert Conversion.objects.get(order_id="LIL-1").contact_id is None
    assert sorted(
        AuditEvent.objects.filter(action="contact.erase").values_list("target_id", flat=True)
    ) == sorted(str(r.public_id) for r in records)
    line = AuditEvent.objects.get(action="person.erase")
    assert (line.target_id, line.node_path, line.changes) == (
        str(person.public_id),
        world.root.path,
        {"records": 3},
    )


def test_a_refused_record_refuses_the_whole_erasure(world, claire):
    person, records, _ = claire
    with pytest.raises(Exception):  # noqa: B017, PT011 (the store service's refusal)
        gdpr.person_erase(actor=world.manager_a, person=person, root=world.root.path)
    assert Contact.objects.filter(pk__in=[r.pk for r in records]).count() == 3
    assert Person.objects.filter(pk=person.pk).exists()


@pytest.mark.parametrize("persona", ["manager_a", "manager_b", "staff_a", "region_manager"])
@pytest.mark.parametrize(
    ("method", "suffix"), [("get", "export.json"), ("get", "erase/"), ("post", "erase/")]
)
def test_store_and_region_users_get_404(world, client, claire, persona, method, suffix):
    person, records, _ = claire
    client.force_login(getattr(world, persona))
    response = getattr(client, method)(f"/hq/people/{person.public_id}/{suffix}")
    assert response.status_code == 404
    assert Contact.objects.filter(pk__in=[r.pk for r in records]).count() == 3
    assert not AuditEvent.objects.filter(action__startswith="person.").exists()


def test_hq_marketer_may_export_but_not_erase(world, client, claire):
    person, records, _ = claire
    client.force_login(world.hq_marketer)
    assert client.get(f"/hq/people/{person.public_id}/export.json").status_code == 200
    assert client.post(f"/hq/people/{person.public_id}/erase/").status_code == 404
    assert Contact.objects.filter(pk__in=[r.pk for r in records]).count() == 3


@pytest.mark.parametrize("public_id", ["00000000-0000-0000-0000-000000000000"])
def test_an_unknown_person_is_404(world, client, public_id):
    client.force_login(world.hq_admin)
    assert client.get(f"/hq/people/{public_id}/export.json").status_code == 404
    assert client.post(f"/hq/people/{public_id}/erase/").status_code == 404


def test_a_store_still_erases_only_its_own_record(world, client, claire):
    person, records, _ = claire
    client.force_login(world.manager_b)
    assert client.post(f"/contacts/{records[2].public_id}/erase/").status_code == 302
    assert Contact.objects.filter(pk__in=[r.pk for r in records]).count() == 2
    assert RecordLink.objects.filter(person=person).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_store_erases_a_record_waiting_in_hqs_review_queue(world, client):
    """HQ's review rows are out of the store's sight: the erasure still removes them (on
    PostgreSQL the deferred foreign key failed the store's erasure at commit)."""
    ContactFactory(unit=world.unit_a, email="anne.roux@orange.fr", phone="+33611112222")
    bea = ContactFactory(unit=world.unit_b, email="bea.roux@orange.fr", phone="+33633334444")
    # Anne's e-mail with Béa's phone: the pair waits in HQ's review queue.
    ContactFactory(unit=world.unit_a2, email="anne.roux@orange.fr", phone="+33633334444")
    assert MatchCandidate.objects.filter(status="open").count() == 1
    client.force_login(world.manager_b)
    assert client.post(f"/contacts/{bea.public_id}/erase/").status_code == 302
    assert not Contact.objects.filter(pk=bea.pk).exists()
    assert MatchCandidate.objects.count() == 0
