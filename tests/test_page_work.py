"""Pages that stopped counting everything on every visit: the HQ home reads the bases the
rollups kept, the contacts list counts up to a limit and says "more than" past it."""

from __future__ import annotations

import pytest
from django.core.paginator import Paginator

from enseigne.analytics import rollups
from enseigne.contacts.models import Contact
from enseigne.lib import paging
from enseigne.network import services as network
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def _units(response) -> dict[str, int]:
    return {n.code: n.contact_count for n in response.context["nodes"] if n.kind == "unit"}


def test_hq_home_reads_the_kept_bases_and_says_when_they_were_counted(world, client):
    ContactFactory.create_batch(3, unit=world.unit_a)
    ContactFactory.create_batch(2, unit=world.unit_b)
    rollups.refresh()
    ContactFactory.create_batch(4, unit=world.unit_a)  # after the pass: counted by the next one
    newcomer = network.node_create(
        actor=None, parent=world.region_a, kind="unit", name="Nantes", code="nantes"
    )
    ContactFactory.create_batch(2, unit=newcomer)  # unknown to the pass: counted live

    client.force_login(world.hq_admin)
    response = client.get("/hq/")
    counts = _units(response)
    assert counts[world.unit_a.code] == 3
    assert counts[world.unit_b.code] == 2
    assert counts["nantes"] == 2
    assert response.context["contact_total"] == sum(counts.values()) == 7
    assert response.context["counted_at"] == rollups.refreshed_at()
    assert "counted at" in response.content.decode()

    rollups.refresh()
    assert _units(client.get("/hq/"))[world.unit_a.code] == 7


def test_hq_home_counts_live_before_any_pass(world, client):
    ContactFactory.create_batch(3, unit=world.unit_a)
    ContactFactory.create_batch(1, unit=world.unit_b)
    client.force_login(world.hq_admin)
    response = client.get("/hq/")
    assert _units(response) == {
        world.unit_a.code: 3,
        world.unit_b.code: 1,
        **{
            code: 0
            for code in _units(response)
            if code not in (world.unit_a.code, world.unit_b.code)
        },
    }
    assert response.context["counted_at"] is None
    assert "counted at" not in response.content.decode()


def test_hq_home_kept_bases_stay_in_the_readers_scope(world, client):
    ContactFactory.create_batch(3, unit=world.unit_a)
    ContactFactory.create_batch(2, unit=world.unit_b)
    rollups.refresh()
    client.force_login(world.region_manager)
    counts = _units(client.get("/hq/"))
    assert world.unit_b.code not in counts or world.unit_b.path.startswith(world.region_a.path)
    assert counts[world.unit_a.code] == 3
    assert (
        sum(counts.values())
        == Contact.objects.filter(unit_path__startswith=world.region_a.path).count()
    )


@pytest.mark.parametrize(
    "rows, limit", [(0, 5), (4, 5), (5, 5), (6, 5), (12, 5), (3, 1), (120, 50)]
)
def test_bounded_paginator_counts_up_to_its_limit(world, rows, limit):
    ContactFactory.create_batch(rows, unit=world.unit_a)
    contacts = Contact.objects.order_by("-created_at", "-id")
    bounded = paging.BoundedPaginator(contacts, 2, limit=limit)
    exact = Paginator(contacts, 2)
    assert bounded.capped == (rows > limit)
    assert bounded.count == min(rows, limit)
    # The pages are the exact paginator's, row for row, up to the limit.
    assert [c.pk for c in bounded.get_page(1)] == [c.pk for c in exact.get_page(1)][:limit]
    last = bounded.get_page(bounded.num_pages)
    assert last.end_index() == min(rows, limit)
    assert bounded.num_pages == (exact.num_pages if rows <= limit else -(-limit // 2))


@pytest.mark.parametrize("rows, capped", [(3, False), (5, False), (6, True), (11, True)])
def test_contact_list_says_more_than_past_the_limit(world, client, monkeypatch, rows, capped):
    monkeypatch.setattr(paging, "COUNT_LIMIT", 5)
    ContactFactory.create_batch(rows, unit=world.unit_a)
    client.force_login(world.hq_admin)
    page = client.get("/contacts/").content.decode()
    if capped:
        assert "More than 5 contacts" in page
        assert f"{rows} contacts" not in page
    else:
        assert f"{rows} contacts" in page
        assert "More than" not in page
    # A search narrows the list back to an exact count.
    one = Contact.objects.filter(unit=world.unit_a).first()
    narrowed = client.get("/contacts/", {"q": one.email}).content.decode()
    assert "More than" not in narrowed
