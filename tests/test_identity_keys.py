"""The matching keys' shape and the persons' ids (issue 20: what an import pays for them)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from enseigne.contacts.models import Contact
from enseigne.contacts.records import Record
from enseigne.identity import keys, public_ids
from enseigne.identity.linking import link_new_records, network_root
from enseigne.identity.models import Person, RecordLink
from enseigne.lib.hashing import identifier_hash
from enseigne.lib.ids import time_ordered_prefix, time_ordered_uuid
from tests.factories import ContactFactory


@pytest.mark.parametrize(
    ("email", "phone"),
    [
        ("claire@orange.fr", "+33612345678"),
        ("Claire.Martin@Free.fr", None),
        (None, "+33712345678"),
        ("c.laire+promo@gmail.com", "+4915112345678"),
    ],
)
def test_a_key_is_128_bits_of_the_salted_hash(email, phone):
    email_key, phone_key = keys.record_keys("0001", email, phone, gmail_rules=True)
    for key, kind, value in (
        (email_key, "email", keys.email_key(email, gmail_rules=True)),
        (phone_key, "phone", keys.phone_key(phone)),
    ):
        if value is None:
            assert key is None
            continue
        assert key is not None
        assert re.fullmatch(r"[0-9a-f]{32}", key)
        assert key == keys.salted_key("0001", identifier_hash(kind, value))
        assert uuid.UUID(key).hex == key  # what the uuid column gives back


def test_two_networks_give_two_keys():
    assert keys.record_keys("0001", "a.b@orange.fr", None, gmail_rules=False) != keys.record_keys(
        "0002", "a.b@orange.fr", None, gmail_rules=False
    )


@pytest.mark.django_db
def test_the_keys_sql_twin_finds_the_stored_keys(world):
    """Brand-wide suppressions find their persons through ``salted_key_sql``: on both
    databases it must give the key the link holds."""
    contact = ContactFactory(unit=world.unit_a, email="zoe.dupont@orange.fr", phone="+33612345678")
    root = network_root(contact.unit_path)
    for kind, value in (("email", contact.email), ("phone", contact.phone)):
        expression = keys.salted_key_sql("%s", "%s", connection.vendor)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {expression}", [root, identifier_hash(kind, value)])
            (computed,) = cursor.fetchone()
        stored = RecordLink.objects.filter(contact=contact).values_list(f"{kind}_key", flat=True)
        assert uuid.UUID(str(computed)) == stored.get()


def _reference_placeholder(email: str) -> bool:
    """The placeholder rule as first written (before its fast path): the oracle."""
    local, _, domain = email.rpartition("@")
    plain = local.replace(".", "").replace("-", "").replace("_", "")
    numbered = re.match(r"^([a-z]+)[0-9]+$", plain)
    return (
        local in keys.PLACEHOLDER_LOCALS
        or plain in keys.PLACEHOLDER_LOCALS
        or domain in keys.PLACEHOLDER_DOMAINS
        or bool(re.match(r"^(.)\1+$", plain))
        or bool(re.match(r"^[0-9]+$", plain))
        or (numbered is not None and numbered.group(1) in keys.PLACEHOLDER_LOCALS)
        or domain.split(".")[0] in keys.PLACEHOLDER_DOMAIN_NAMES
    )


_LOCALS = st.one_of(
    st.sampled_from(sorted(keys.PLACEHOLDER_LOCALS)),
    st.text(alphabet="ab0123456789.-_xz", min_size=0, max_size=12),
    st.builds(
        lambda word, digits: word + digits,
        st.sampled_from(sorted(keys.PLACEHOLDER_LOCALS)),
        st.text(alphabet="0123456789", max_size=4),
    ),
)
_DOMAINS = st.one_of(
    st.sampled_from(sorted(keys.PLACEHOLDER_DOMAINS | {"orange.fr", "gmail.com", "free.fr"})),
    st.builds(
        lambda name, tld: f"{name}.{tld}",
        st.sampled_from(sorted(keys.PLACEHOLDER_DOMAIN_NAMES | {"laposte", "sfr"})),
        st.sampled_from(["fr", "com", "net"]),
    ),
)


@given(local=_LOCALS, domain=_DOMAINS)
def test_the_fast_placeholder_check_says_what_the_rule_says(local, domain):
    email = f"{local}@{domain}"
    assert keys.is_placeholder_email(email) == _reference_placeholder(email)


def test_time_ordered_ids_follow_time_and_are_version_7():
    made = [time_ordered_uuid() for _ in range(50)]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in made)
    assert len(set(made)) == 50
    prefixes = [str(u)[:13] for u in made]
    assert prefixes == sorted(prefixes)
    assert str(made[0]).startswith(time_ordered_prefix()[:8])


@pytest.mark.django_db
def test_a_persons_public_id_is_derived_from_its_row_and_reads_back(world):
    """The fresh-record statement (PostgreSQL) and the ORM path (SQLite, groups) alike write
    no public id; the one shown reads back to the row and says nothing of its neighbours."""
    made = [
        Contact.objects.create(
            unit=world.unit_a, unit_path=world.unit_a.path, email=f"p{i}.x@sfr.fr"
        )
        for i in range(5)
    ]
    link_new_records([Record(c.pk, c.unit_path, c.email, None) for c in made])
    persons = list(Person.objects.filter(links__contact__in=made).order_by("pk"))
    assert len(persons) == 5
    shown = [p.public_id for p in persons]
    assert [public_ids.pk_of(u) for u in shown] == [p.pk for p in persons]
    assert [public_ids.pk_of(str(u)) for u in shown] == [p.pk for p in persons]
    # Consecutive rows, unrelated ids: no shared leading digits, no order.
    assert len({str(u)[:4] for u in shown}) == 5
    assert shown != sorted(shown)


@pytest.mark.parametrize("value", [uuid.UUID(int=0), uuid.uuid4(), "not-a-uuid", None, 17])
def test_a_made_up_public_id_is_nobody(value):
    assert public_ids.pk_of(value) is None


def test_public_ids_outlive_a_secret_key_rotation_while_the_old_key_is_listed(settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "old-" + "x" * 50, []
    before = public_ids.public_id_of(42)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-" + "y" * 50, ["old-" + "x" * 50]
    assert public_ids.public_id_of(42) != before
    assert public_ids.pk_of(before) == 42
    assert public_ids.pk_of(public_ids.public_id_of(42)) == 42
    settings.SECRET_KEY_FALLBACKS = []
    assert public_ids.pk_of(before) is None


@pytest.mark.django_db
def test_what_an_import_writes_for_a_person_is_narrow():
    """No stored public id (nor its unique index) and no database check on the link's
    ``linked_by``: each was paid for every new customer an import writes."""
    with connection.cursor() as cursor:
        person_columns = [
            c.name
            for c in connection.introspection.get_table_description(cursor, Person._meta.db_table)
        ]
        link_constraints = connection.introspection.get_constraints(
            cursor, RecordLink._meta.db_table
        )
    assert sorted(person_columns) == ["created_at", "id"]
    assert [name for name, c in link_constraints.items() if c["foreign_key"]] == []


@pytest.mark.django_db
def test_a_link_has_one_index_on_its_person():
    """The field's own index doubled ``recordlink_person``: one index upkeep per import row."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, RecordLink._meta.db_table)
    on_person = [
        name for name, c in constraints.items() if c["index"] and c["columns"] == ["person_id"]
    ]
    assert on_person == ["recordlink_person"]
