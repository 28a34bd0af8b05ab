"""HQ's people figures (issue 20): the base in people, cross-shopping, people reached."""

from __future__ import annotations

import pytest
from django.utils import timezone

from enseigne.analytics import people, rollups
from enseigne.analytics.models import CampaignReach, CrossShopping, NetworkPeople
from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Contact
from enseigne.identity.models import IdentityPolicy, RecordLink
from enseigne.network.models import Network
from tests.campaign_helpers import local_campaign
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def same_person(*records):
    persons = {RecordLink.objects.get(contact=r).person_id for r in records}
    assert len(persons) == 1
    return persons.pop()


@pytest.fixture
def shoppers(world):
    """Six people customers of Lyon and Lille, one of Lyon and Grenoble, Claire of all three,
    a Lyon prospect also registered in Lille (not a customer there), and strangers."""
    made = {"lyon_lille": [], "claire": [], "strangers": []}
    for i in range(6):
        pair = [
            ContactFactory(unit=unit, email=f"duo{i}@orange.fr", is_customer=True)
            for unit in (world.unit_a, world.unit_b)
        ]
        same_person(*pair)
        made["lyon_lille"].append(pair)
    made["lyon_grenoble"] = [
        ContactFactory(unit=unit, email="solo@free.fr", is_customer=True)
        for unit in (world.unit_a, world.unit_a2)
    ]
    made["claire"] = [
        ContactFactory(unit=unit, email="claire.martin@orange.fr", is_customer=True)
        for unit in (world.unit_a, world.unit_a2, world.unit_b)
    ]
    made["prospect"] = [
        ContactFactory(unit=world.unit_a, email="lea@sfr.fr", is_customer=True),
        ContactFactory(unit=world.unit_b, email="lea@sfr.fr", is_customer=False),
    ]
    made["strangers"] = [
        ContactFactory(unit=world.unit_b, email=f"alone{i}@laposte.net", is_customer=i % 2 == 0)
        for i in range(4)
    ]
    return made


def test_the_base_is_counted_in_records_and_in_people(world, shoppers):
    rollups.refresh()
    figures = NetworkPeople.objects.get()
    assert figures.unit_path == world.root.path
    assert Contact.objects.count() == 12 + 2 + 3 + 2 + 4
    assert (figures.records, figures.people) == (23, 6 + 1 + 1 + 1 + 4)
    assert figures.shared == 6 + 1 + 1 + 1  # the prospect has records in two stores
    assert figures.cross_customers == 6 + 1 + 1  # but is a customer of one only


def test_the_cross_shopping_matrix(world, shoppers):
    rollups.refresh()
    a, a2, b = world.unit_a.pk, world.unit_a2.pk, world.unit_b.pk
    stored = {
        (row.left_unit_id, row.right_unit_id): (row.people, row.elsewhere)
        for row in CrossShopping.objects.all()
    }
    assert stored == {
        (min(a, b), max(a, b)): (7, 0),
        (min(a, a2), max(a, a2)): (2, 0),
        (min(a2, b), max(a2, b)): (1, 0),
        (a, a): (6 + 1 + 1 + 1, 8),
        (a2, a2): (2, 2),
        (b, b): (7 + 2, 7),
    }
    matrix = people.cross_shopping(world.root.path)
    assert [u.name for u in matrix["units"]] == ["Grenoble", "Lille", "Lyon"]
    lyon = matrix["rows"][2]
    assert lyon["cells"] == [{"n": 2, "small": True}, {"n": 7, "small": False}, None]
    assert (lyon["customers"], lyon["elsewhere"]) == (
        {"n": 9, "small": False},
        {"n": 8, "small": False},
    )


def test_hq_reads_the_matrix_a_store_never_does(world, client, shoppers):
    rollups.refresh()
    client.force_login(world.hq_admin)
    page = client.get("/results/people/").content.decode()
    assert 'id="cross-shopping"' in page
    assert "&lt; 5" in page  # Lyon × Grenoble (2) and Grenoble × Lille (1) are not shown exactly
    home = client.get("/hq/").content.decode()
    assert 'id="people-card"' in home and "23 records" in home
    for persona in ("manager_a", "staff_a", "manager_b", "region_manager"):
        client.force_login(getattr(world, persona))
        assert client.get("/results/people/").status_code == 403
        assert 'id="people-card"' not in client.get("/hq/").content.decode()


@pytest.mark.parametrize("mode", list(IdentityPolicy.Mode))
def test_in_both_modes_only_hq_reads_the_figures(world, client, shoppers, mode):
    IdentityPolicy.objects.update_or_create(
        network=Network.objects.get(node=world.root), defaults={"mode": mode}
    )
    rollups.refresh()
    client.force_login(world.hq_admin)
    assert client.get("/results/people/").status_code == 200
    client.force_login(world.manager_b)
    assert client.get("/results/people/").status_code == 403


def test_an_empty_network_reads_as_not_counted_yet(world, client):
    client.force_login(world.hq_admin)
    page = client.get("/results/people/").content.decode()
    assert 'id="people-empty"' in page


def test_people_reached_by_a_campaign(world, client, shoppers):
    campaign = local_campaign(world)
    claire = shoppers["claire"]
    sent = [*claire, shoppers["strangers"][0], shoppers["strangers"][1]]
    for contact in sent:
        Recipient.objects.create(
            campaign=campaign,
            contact=contact,
            unit=contact.unit,
            unit_path=contact.unit_path,
            channel="email",
            status="sent",
        )
    Recipient.objects.create(
        campaign=campaign,
        contact=shoppers["strangers"][2],
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        channel="email",
        status="failed",
    )
    # A record erased since: its message counts as one person.
    Recipient.objects.create(
        campaign=campaign,
        contact=None,
        unit=world.unit_b,
        unit_path=world.unit_b.path,
        channel="email",
        status="sent",
    )
    assert people.count_reach(timezone.now(), [campaign.pk]) == 1
    reach = CampaignReach.objects.get(campaign_id=campaign.pk)
    assert (reach.sent, reach.people, reach.unit_path) == (6, 4, world.root.path)
    client.force_login(world.hq_admin)
    page = client.get(f"/campaigns/{campaign.public_id}/report/").content.decode()
    assert 'id="kpi-people">6 / 4<' in page
    client.force_login(world.manager_a)
    page = client.get(f"/campaigns/{campaign.public_id}/report/").content.decode()
    assert 'id="kpi-people"' not in page
