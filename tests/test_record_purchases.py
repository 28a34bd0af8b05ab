"""A record's purchases where people look for them (issue 21): the contact card lists the
store's orders with their lines and shows the record's persona; the GDPR export holds every
order and line, the RFM scores and the persona (profiling is personal data), and nothing of
another record."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from enseigne.commerce.models import Order, OrderLine
from enseigne.network.models import Network
from enseigne.personas.models import Persona, PersonaRecord
from enseigne.rfm.models import RecordScore
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(microsecond=0)


def order(unit, contact, external_id, days_ago, lines):
    made = Order.objects.create(
        unit=unit,
        unit_path=unit.path,
        external_id=external_id,
        contact=contact,
        occurred_at=NOW - dt.timedelta(days=days_ago),
        total=sum((Decimal(amount) for _sku, _cat, _q, amount in lines), Decimal(0)),
        source="api",
    )
    for position, (sku, category, quantity, amount) in enumerate(lines):
        OrderLine.objects.create(
            order=made,
            unit_path=unit.path,
            position=position,
            sku=sku,
            category=category,
            quantity=Decimal(quantity),
            amount=Decimal(amount),
            is_return=Decimal(amount) < 0,
        )
    return made


@pytest.fixture
def buyer(world):
    amelie = ContactFactory(unit=world.unit_a, email="amelie@example.com", first_name="Amélie")
    other = ContactFactory(unit=world.unit_a, email="other@example.com")
    order(world.unit_a, amelie, "T-1001", 40, [("LUM-01", "Luminaires", "2", "59.80")])
    order(
        world.unit_a,
        amelie,
        "T-1002",
        3,
        [("DEC-07", "Déco", "1", "24.90"), ("LUM-01", "Luminaires", "1", "-29.90")],
    )
    order(world.unit_a, other, "T-9999", 2, [("SECRET-SKU", "Autre", "1", "999.00")])
    persona = Persona.objects.create(
        network=Network.objects.get(node=world.root),
        name="Amateurs de luminaires",
        description="Achètent surtout de la lumière",
        position=1,
        rules={"match": "all", "rules": []},
    )
    PersonaRecord.objects.create(contact=amelie, persona=persona, unit_path=world.unit_a.path)
    RecordScore.objects.create(
        contact=amelie,
        unit_path=world.unit_a.path,
        last_purchase_at=NOW - dt.timedelta(days=3),
        purchases=2,
        net=Decimal("54.80"),
        recency=5,
        frequency=3,
        monetary=2,
        group="promising",
        computed_at=NOW,
    )
    return amelie


def test_the_contact_card_lists_the_orders_with_their_lines_and_the_persona(world, buyer, client):
    client.force_login(world.manager_a)
    page = client.get(f"/contacts/{buyer.public_id}/").content.decode()
    assert "T-1001" in page and "T-1002" in page and "T-9999" not in page
    assert "LUM-01 (Luminaires)" in page and "DEC-07 (Déco)" in page
    assert page.index("T-1002") < page.index("T-1001")  # the latest first
    assert 'id="persona"' in page and "Amateurs de luminaires" in page
    assert "SECRET-SKU" not in page


def test_a_contact_without_orders_says_so(world, client):
    nobody = ContactFactory(unit=world.unit_a)
    client.force_login(world.manager_a)
    page = client.get(f"/contacts/{nobody.public_id}/").content.decode()
    assert "No purchase recorded for this contact." in page and 'id="persona"' not in page


def test_another_stores_contact_card_is_not_found(world, buyer, client):
    client.force_login(world.manager_b)
    assert client.get(f"/contacts/{buyer.public_id}/").status_code == 404
    assert client.get(f"/contacts/{buyer.public_id}/data.json").status_code == 404


def test_the_gdpr_export_holds_every_order_line_and_the_profiling(world, buyer, client):
    client.force_login(world.manager_a)
    data = client.get(f"/contacts/{buyer.public_id}/data.json").json()
    assert [o["order_id"] for o in data["orders"]] == ["T-1001", "T-1002"]
    assert data["orders"][1]["lines"] == [
        {
            "sku": "DEC-07",
            "category": "Déco",
            "quantity": "1.000",
            "unit_price": None,
            "amount": "24.90",
            "discount": "0.00",
            "return": False,
        },
        {
            "sku": "LUM-01",
            "category": "Luminaires",
            "quantity": "1.000",
            "unit_price": None,
            "amount": "-29.90",
            "discount": "0.00",
            "return": True,
        },
    ]
    assert data["rfm"] == {"group": "promising", "recency": 5, "frequency": 3, "monetary": 2}
    assert data["persona"] == {
        "name": "Amateurs de luminaires",
        "description": "Achètent surtout de la lumière",
    }
    assert "T-9999" not in str(data) and "SECRET-SKU" not in str(data)


def test_the_gdpr_export_of_a_record_without_purchases(world, client):
    nobody = ContactFactory(unit=world.unit_a)
    client.force_login(world.manager_a)
    data = client.get(f"/contacts/{nobody.public_id}/data.json").json()
    assert (data["orders"], data["rfm"], data["persona"]) == ([], None, None)


def test_a_long_history_shows_the_latest_orders_and_says_how_many_in_all(world, client):
    regular = ContactFactory(unit=world.unit_a)
    for n in range(12):
        order(world.unit_a, regular, f"R-{n:02d}", 100 - n, [("LUM-01", "Luminaires", "1", "9.90")])
    client.force_login(world.manager_a)
    page = client.get(f"/contacts/{regular.public_id}/").content.decode()
    assert "R-11" in page and "R-02" in page and "R-01" not in page
    assert "The latest 10 of 12 orders." in page
