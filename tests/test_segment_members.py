"""Who is in a segment: the segments list links each count to the contacts it selects, the
contact list filters by the segment (with the other filters), the export follows, and
another unit's segment is not found."""

from __future__ import annotations

import csv
import io

import pytest

from enseigne.contacts.services import segment_save
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
CUSTOMERS = {"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]}


@pytest.fixture
def customers(world):
    made = [
        ContactFactory(unit=world.unit_a, is_customer=n % 2 == 0, last_name=f"Client{n}")
        for n in range(6)
    ]
    ContactFactory(unit=world.unit_b, is_customer=True, last_name="Lillois")
    segment = segment_save(
        actor=world.manager_a, owner=world.unit_a, name="Clients", rules=CUSTOMERS
    )
    return segment, made


def test_the_segments_list_links_its_count_to_the_members(world, customers, client):
    segment, _made = customers
    client.force_login(world.manager_a)
    page = client.get("/segments/").content.decode()
    assert f'href="/contacts/?segment={segment.public_id}"' in page


def test_the_contact_list_shows_the_members_only(world, customers, client):
    segment, made = customers
    client.force_login(world.manager_a)
    page = client.get(f"/contacts/?segment={segment.public_id}").content.decode()
    assert 'id="segment-filter"' in page and "Clients" in page
    for n, contact in enumerate(made):
        assert (contact.last_name in page) == (n % 2 == 0)
    assert "Lillois" not in page
    # With the search as well.
    page = client.get(f"/contacts/?segment={segment.public_id}&q=Client2").content.decode()
    assert "Client2" in page and "Client4" not in page


def test_the_export_follows_the_segment(world, customers, client):
    segment, made = customers
    client.force_login(world.manager_a)
    response = client.get(f"/contacts/export.csv?segment={segment.public_id}")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    dialect = csv.Sniffer().sniff(body.splitlines()[0], delimiters=",;\t")
    rows = list(csv.reader(io.StringIO(body), dialect))
    exported = {row[0] for row in rows[1:]}
    assert exported == {str(c.public_id) for n, c in enumerate(made) if n % 2 == 0}


@pytest.mark.parametrize("value", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_segment_is_not_found(world, customers, client, value):
    client.force_login(world.manager_a)
    assert client.get(f"/contacts/?segment={value}").status_code == 404


def test_another_units_segment_is_not_found(world, customers, client):
    segment, _made = customers
    client.force_login(world.manager_b)
    assert client.get(f"/contacts/?segment={segment.public_id}").status_code == 404
    assert client.get(f"/contacts/export.csv?segment={segment.public_id}").status_code == 404
