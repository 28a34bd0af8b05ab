"""List endpoints: one paging (count + results, limit 1–500, offset ≥ 0), scoped by selectors."""

from __future__ import annotations

import pytest

from enseigne.api.paging import MAX_LIMIT
from enseigne.network.tokens import token_create
from enseigne.tracking.conversions import conversion_record
from tests.campaign_helpers import email_template, local_campaign
from tests.factories import ContactFactory

LISTS = (
    "units",
    "contacts",
    "imports",
    "segments",
    "assets",
    "templates",
    "local-versions",
    "campaigns",
    "conversions",
    "people",
)


def bearer(user):
    _, key = token_create(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


@pytest.fixture
def filled(world):
    template = email_template(world)
    for unit in (world.unit_a, world.unit_b):
        ContactFactory.create_batch(3, unit=unit)
        local_campaign(world, unit=unit, template=template)
        for n in range(3):
            conversion_record(actor=None, unit=unit, order_id=f"{unit.code}-{n}", amount="12.50")
    return world


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        (f"limit={MAX_LIMIT + 1}", "limit"),
        ("limit=100000000000000000000", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
    ],
)
def test_out_of_range_paging_is_a_422_naming_the_parameter(client, world, name, query, field):
    response = client.get(f"/api/v1/{name}?{query}", **bearer(world.hq_admin))
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == ("validation_failed", [field])


@pytest.mark.parametrize("name", LISTS)
def test_pages_cover_every_row_once(client, filled, name):
    headers = bearer(filled.hq_admin)
    whole = client.get(f"/api/v1/{name}?limit={MAX_LIMIT}", **headers).json()
    assert whole["count"] == len(whole["results"])
    seen = []
    for offset in range(whole["count"] + 1):
        page = client.get(f"/api/v1/{name}?limit=1&offset={offset}", **headers).json()
        assert page["count"] == whole["count"]
        seen.extend(page["results"])
    assert seen == whole["results"]
    assert len(whole["results"]) == whole["count"] >= (0 if name in ("imports", "assets") else 1)


@pytest.mark.parametrize(
    ("name", "unit_field"),
    [("contacts", "unit"), ("conversions", "unit"), ("segments", "owner")],
)
def test_a_store_token_lists_only_its_unit(client, filled, name, unit_field):
    for user, unit in ((filled.manager_a, filled.unit_a), (filled.manager_b, filled.unit_b)):
        data = client.get(f"/api/v1/{name}", **bearer(user)).json()
        assert data["count"] == len(data["results"]) > 0
        assert {row[unit_field] for row in data["results"]} == {str(unit.public_id)}


def test_campaign_list_is_scoped_and_filtered(client, filled):
    mine = client.get("/api/v1/campaigns", **bearer(filled.manager_b)).json()
    assert [c["name"] for c in mine["results"]] == ["Local lille"]
    everything = client.get("/api/v1/campaigns", **bearer(filled.hq_admin)).json()
    assert everything["count"] == 2
    drafts = client.get("/api/v1/campaigns?status=draft", **bearer(filled.hq_admin)).json()
    assert drafts["count"] == 2
    none = client.get("/api/v1/campaigns?status=finished", **bearer(filled.hq_admin)).json()
    assert none == {"count": 0, "results": []}


def test_another_units_segment_and_filter_are_404(client, filled):
    theirs = client.get("/api/v1/segments", **bearer(filled.manager_a)).json()["results"][0]
    response = client.get(f"/api/v1/segments/{theirs['id']}", **bearer(filled.manager_b))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = client.get(
        f"/api/v1/conversions?unit={filled.unit_a.public_id}", **bearer(filled.manager_b)
    )
    assert response.status_code == 404
