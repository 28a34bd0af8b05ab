"""Contacts, the consent ledger, suppression, GDPR export and erasure, CSV export."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from enseigne.contacts import selectors, services
from enseigne.contacts.models import ConsentEvent, ConsentStatus, Contact, Suppression
from enseigne.lib.csvsafe import neutralise
from enseigne.lib.hashing import identifier_hash
from tests.exports import export_dicts
from tests.factories import ContactFactory


def test_create_normalises_email_and_phone_with_the_units_country(world):
    contact = services.contact_create(
        actor=world.staff_a,
        unit=world.unit_a,
        data={
            "email": " Jean.Dupont@Example.COM ",
            "phone": "06 12 34 56 78",
            "first_name": "Jean",
        },
    )
    assert (contact.email, contact.phone) == ("jean.dupont@example.com", "+33612345678")


def test_the_database_keeps_each_address_hash_equal_to_the_suppression_hash(world):
    contact = services.contact_create(
        actor=world.staff_a,
        unit=world.unit_a,
        data={"email": "Jean.Dupont@Example.com", "phone": "06 12 34 56 78", "first_name": "Jean"},
    )
    stored = Contact.objects.values_list("email_hash", "phone_hash").get(pk=contact.pk)
    assert stored == (
        identifier_hash("email", "jean.dupont@example.com"),
        identifier_hash("phone", "+33612345678"),
    )
    Contact.objects.filter(pk=contact.pk).update(email="autre@example.com", phone=None)
    stored = Contact.objects.values_list("email_hash", "phone_hash").get(pk=contact.pk)
    assert stored == (identifier_hash("email", "autre@example.com"), None)


def test_create_errors_name_each_field(world):
    with pytest.raises(ValidationError) as exc:
        services.contact_create(
            actor=world.staff_a,
            unit=world.unit_a,
            data={"email": "jean@", "phone": "12", "birthday": "2999-01-01"},
        )
    assert sorted(exc.value.message_dict) == ["birthday", "email", "phone"]
    assert Contact.objects.count() == 0


def test_duplicate_email_in_the_same_unit_is_refused(world):
    ContactFactory(unit=world.unit_a, email="a@example.com")
    with pytest.raises(ValidationError) as exc:
        services.contact_create(
            actor=world.staff_a, unit=world.unit_a, data={"email": "A@example.com"}
        )
    assert exc.value.message_dict == {
        "email": ["A contact with this email or phone already exists in this unit."]
    }


def test_consent_ledger_is_append_only_and_withdrawal_suppresses(world):
    contact = ContactFactory(unit=world.unit_a, email="a@example.com")
    granted = services.consent_record(
        actor=world.staff_a,
        contact=contact,
        channel="email",
        status="granted",
        source="in_store",
        wording_version="v1",
    )
    services.consent_record(
        actor=None, contact=contact, channel="email", status="withdrawn", source="unsubscribe"
    )
    contact.refresh_from_db()
    assert contact.email_consent == ConsentStatus.WITHDRAWN
    assert list(contact.consent_events.values_list("status", flat=True)) == ["withdrawn", "granted"]
    with pytest.raises(ValueError, match="append-only"):
        granted.save()
    suppression = Suppression.objects.get()
    assert (suppression.unit_path, suppression.reason, suppression.value_hash) == (
        world.unit_a.path,
        "unsubscribe",
        identifier_hash("email", "a@example.com"),
    )
    # A new explicit opt-in lifts this unit's unsubscribe.
    services.consent_record(
        actor=world.staff_a, contact=contact, channel="email", status="granted", source="form"
    )
    assert Suppression.objects.count() == 0


def test_soft_opt_in_needs_a_real_customer(world):
    contact = ContactFactory(unit=world.unit_a, is_customer=False)
    with pytest.raises(ValidationError):
        services.consent_record(
            actor=None, contact=contact, channel="email", status="soft_opt_in", source="in_store"
        )
    assert ConsentEvent.objects.count() == 0


def test_erasure_removes_personal_data_and_blocks_the_person_coming_back(world):
    contact = ContactFactory(unit=world.unit_a, email="gone@example.com", phone="+33612345678")
    services.consent_record(
        actor=None, contact=contact, channel="email", status="granted", source="form"
    )
    services.contact_erase(actor=world.manager_a, contact=contact)
    assert Contact.objects.count() == 0
    assert ConsentEvent.objects.count() == 0
    stored = set(Suppression.objects.values_list("value_hash", "reason"))
    assert stored == {
        (identifier_hash("email", "gone@example.com"), "erasure"),
        (identifier_hash("phone", "+33612345678"), "erasure"),
    }
    assert "gone@example.com" not in str(list(Suppression.objects.values()))
    with pytest.raises(ValidationError) as exc:
        services.contact_create(
            actor=world.staff_a, unit=world.unit_a, data={"email": "gone@example.com"}
        )
    assert "asked to be erased" in exc.value.message_dict["email"][0]
    # Another unit is a different controller relationship: not blocked there.
    services.contact_create(
        actor=world.manager_b, unit=world.unit_b, data={"email": "gone@example.com"}
    )


def test_staff_cannot_erase(world):
    contact = ContactFactory(unit=world.unit_a)
    with pytest.raises(PermissionDenied):
        services.contact_erase(actor=world.staff_a, contact=contact)
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_gdpr_export_contains_everything_about_the_contact(world, client):
    contact = ContactFactory(unit=world.unit_a, email="me@example.com", is_customer=True)
    services.contact_set_tags(contact=contact, tags=["vip"])
    services.consent_record(
        actor=None,
        contact=contact,
        channel="email",
        status="granted",
        source="form",
        wording_version="web-v3",
        ip_address="192.0.2.1",
    )
    client.force_login(world.manager_a)
    data = client.get(f"/contacts/{contact.public_id}/data.json").json()
    assert data["email"] == "me@example.com"
    assert data["tags"] == ["vip"]
    assert data["consent"] == {"email": "granted", "sms": "none"}
    assert [
        (e["status"], e["wording_version"], e["ip_address"]) for e in data["consent_history"]
    ] == [("granted", "web-v3", "192.0.2.1")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2", "'-2"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("+33612345678", "+33612345678"),
        ("Léa", "Léa"),
        (None, ""),
    ],
)
def test_csv_cells_are_neutralised(value, expected):
    assert neutralise(value) == expected


def test_contact_export_is_scoped_and_formula_safe(world, client):
    ContactFactory(unit=world.unit_a, first_name="=cmd|'/c calc'!A1", phone="+33612345678")
    ContactFactory(unit=world.unit_b, first_name="Autre")
    client.force_login(world.manager_a)
    response = client.get("/contacts/export.csv")
    rows = export_dicts(response)
    assert len(rows) == 1
    assert rows[0]["First name"] == "'=cmd|'/c calc'!A1"
    assert rows[0]["Phone"] == "+33612345678"


def test_unit_a_lists_and_searches_never_contain_unit_b(world):
    ContactFactory.create_batch(3, unit=world.unit_a, last_name="Martin")
    ContactFactory.create_batch(2, unit=world.unit_b, last_name="Martin")
    for user, expected in (
        (world.manager_a, 3),
        (world.staff_a, 3),
        (world.manager_b, 2),
        (world.region_manager, 3),
        (world.hq_admin, 5),
    ):
        found = selectors.contact_search(user, query="Mart")
        assert found.count() == expected
    assert set(
        selectors.contact_search(world.manager_a, query="").values_list("unit_id", flat=True)
    ) == {world.unit_a.pk}
