"""The customer base over the API: HQ tokens only; a new contact's person id where the mode
allows it (issue 20)."""

from __future__ import annotations

import pytest

from enseigne.identity.models import IdentityPolicy, RecordLink
from enseigne.network.models import TokenScope
from enseigne.network.tokens import token_create
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def bearer(user, scopes=(TokenScope.CONTACTS,)):
    _, key = token_create(user=user, scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def jean(world):
    a = ContactFactory(unit=world.unit_a, email="jean@laposte.net", first_name="Jérôme")
    b = ContactFactory(unit=world.unit_b, email="jean@laposte.net", first_name="Jerome")
    ContactFactory(unit=world.unit_b, email="paul@laposte.net", first_name="Paul")
    return a, b, RecordLink.objects.get(contact=a).person


def test_hq_token_searches_and_reads_people(client, world, jean):
    a, b, person = jean
    data = client.get("/api/v1/people?q=jerome", **bearer(world.hq_admin)).json()
    assert data["count"] == 1
    (row,) = data["results"]
    assert row["id"] == str(person.public_id)
    assert sorted(row["records"]) == sorted([str(a.public_id), str(b.public_id)])
    assert sorted(row["units"]) == sorted(
        [str(world.unit_a.public_id), str(world.unit_b.public_id)]
    )
    assert client.get("/api/v1/people", **bearer(world.hq_admin)).json()["count"] == 2
    detail = client.get(f"/api/v1/people/{person.public_id}", **bearer(world.hq_marketer)).json()
    assert {r["id"] for r in detail["records"]} == {str(a.public_id), str(b.public_id)}
    assert {r["method"] for r in detail["records"]} == {"alone", "email"}
    assert all(r["matched_on"] == ["email"] for r in detail["records"])
    assert detail["golden"]["email"]["value"] == "jean@laposte.net"
    assert detail["golden"]["email"]["rule"] == "last_purchase"


def test_a_read_only_hq_token_reads_people(client, world, jean):
    headers = bearer(world.hq_admin, scopes=(TokenScope.READ_ONLY,))
    assert client.get("/api/v1/people", **headers).status_code == 200
    headers = bearer(world.hq_admin, scopes=(TokenScope.CAMPAIGNS,))
    assert client.get("/api/v1/people", **headers).status_code == 403


@pytest.mark.parametrize("mode", IdentityPolicy.Mode.values)
@pytest.mark.parametrize("persona", ["region_manager", "manager_a", "staff_a", "manager_b"])
def test_stores_never_reach_people_in_either_mode(client, world, jean, persona, mode):
    IdentityPolicy.objects.update_or_create(network=world.root.network, defaults={"mode": mode})
    _a, _b, person = jean
    headers = bearer(world.persona(persona))
    for url in ("/api/v1/people", f"/api/v1/people/{person.public_id}", "/api/v1/people?q=jean"):
        response = client.get(url, **headers)
        assert response.status_code == 404, (persona, url)
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("persona", "mode", "given"),
    [
        ("hq_admin", IdentityPolicy.Mode.ONE_CONTROLLER, True),
        ("hq_admin", IdentityPolicy.Mode.SEPARATE_CONTROLLERS, False),
        ("manager_b", IdentityPolicy.Mode.ONE_CONTROLLER, False),
        ("manager_b", IdentityPolicy.Mode.SEPARATE_CONTROLLERS, False),
    ],
)
def test_creating_a_contact_returns_its_person_where_the_mode_allows(
    client, world, jean, persona, mode, given
):
    IdentityPolicy.objects.update_or_create(network=world.root.network, defaults={"mode": mode})
    _a, _b, person = jean
    response = client.post(
        "/api/v1/contacts",
        {
            "unit": str(world.unit_b.public_id),
            "phone": "+33612999888",
            "email": "Jean@laposte.net".lower().replace("jean", "jean2"),
        },
        content_type="application/json",
        **bearer(world.persona(persona)),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert ("person_id" in body) is given
    if given:
        created = RecordLink.objects.get(contact__public_id=body["id"])
        assert body["person_id"] == str(created.person.public_id)
    # Every other field is there whatever the mode (the null ones included).
    assert body["birthday"] is None and body["email"] == "jean2@laposte.net"


def test_new_contact_joining_a_person_gets_that_persons_id(client, world, jean):
    _a, _b, person = jean
    response = client.post(
        "/api/v1/contacts",
        {"unit": str(world.unit_a2.public_id), "email": "jean@laposte.net"},
        content_type="application/json",
        **bearer(world.hq_admin),
    )
    assert response.json()["person_id"] == str(person.public_id)


@pytest.mark.parametrize("mode", IdentityPolicy.Mode.values)
def test_a_store_token_learns_nothing_of_another_stores_record(client, world, mode):
    IdentityPolicy.objects.update_or_create(network=world.root.network, defaults={"mode": mode})
    mine = ContactFactory(unit=world.unit_b, email="claire@orange.fr", first_name="Claire")
    headers = bearer(world.manager_b)
    urls = (
        f"/api/v1/contacts/{mine.public_id}",
        "/api/v1/contacts",
        "/api/v1/contacts?q=claire",
        f"/api/v1/contacts/{mine.public_id}/consent-events",
        "/api/v1/units",
    )
    before = [client.get(url, **headers).json() for url in urls]
    ContactFactory(unit=world.unit_a, email="claire@orange.fr", first_name="Claire")
    assert RecordLink.objects.values("person_id").distinct().count() == 1
    assert [client.get(url, **headers).json() for url in urls] == before
