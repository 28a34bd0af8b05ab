"""Where stores see their customers (issue 21): the store dashboard's RFM groups, personas
and top categories next to the network's median store equal references computed here from
the raw rows; a store sees only its own figures and the medians (another store's dashboard
is a 404); small volumes and demo purchases are said, never ranked; the campaign report and
the gallery filtered by persona count the raw events of that persona's recipients, and an
unknown or another network's persona is ignored with a message."""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from enseigne.analytics import by_persona, customers, rollups, selectors
from enseigne.campaigns.models import Recipient
from enseigne.commerce import revenue as category_revenue
from enseigne.commerce import summaries
from enseigne.commerce.models import Order, OrderLine
from enseigne.delivery import events
from enseigne.delivery.models import Event
from enseigne.lib.stats import compare
from enseigne.network import services as network
from enseigne.network.models import Network
from enseigne.personas import assignment
from enseigne.personas.models import Persona, PersonaRecord
from enseigne.personas.services import persona_save
from enseigne.rfm import scoring
from enseigne.rfm.models import RecordScore
from tests.factories import PASSWORD, ContactFactory
from tests.test_gallery import _finished

pytestmark = pytest.mark.django_db

NOW = timezone.now()
CATEGORIES = ["Vins", "Fromages", "Épicerie fine"]


@pytest.fixture
def small_thresholds(monkeypatch):
    monkeypatch.setattr(customers, "MIN_PEOPLE", 5)
    monkeypatch.setattr(customers, "MIN_CATEGORY_BUYERS", 3)


def _order(unit, contact, n, days, lines, source="api"):
    order = Order.objects.create(
        unit=unit,
        unit_path=unit.path,
        external_id=f"{unit.code}-{n}",
        contact=contact,
        occurred_at=NOW - dt.timedelta(days=days),
        total=sum((amount for _c, amount, _r in lines), Decimal(0)),
        channel="in_store",
        source=source,
    )
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            unit_path=unit.path,
            position=i,
            sku=f"SKU{i}",
            category=category,
            quantity=Decimal(-1 if is_return else 1),
            amount=amount,
            is_return=is_return,
        )
        for i, (category, amount, is_return) in enumerate(lines, 1)
    )


@pytest.fixture
def shop(world):
    return seed_shop(world)


def seed_shop(world) -> dict:
    """Lyon: 10 records, 8 customers; Grenoble 8 and Lille 9, no customers. Orders with
    lines over 14 months: returns, a line without category, a category spelled two ways, an
    anonymous order, a category only Lille sells. Two personas (customers, everyone)."""
    sizes = {world.unit_a: 10, world.unit_a2: 8, world.unit_b: 9}
    n = 0
    records = {}
    for unit, size in sizes.items():
        records[unit.pk] = []
        for i in range(size):
            record = ContactFactory(
                unit=unit,
                email=f"{unit.code}.{i}@orange.fr",
                is_customer=unit == world.unit_a and i < 8,
            )
            records[unit.pk].append(record)
            for k in range(1 + i % 3):
                n += 1
                first = CATEGORIES[(i + k) % 3]
                if unit == world.unit_a2 and first == "Vins" and k == 1:
                    first = "vins"  # the same category as the database's UPPER spells it
                lines = [(first, Decimal(12 + 7 * i + 3 * k), False)]
                if i % 4 == 0:
                    lines.append(("", Decimal("4.50"), False))  # no category: left out
                if unit == world.unit_b and i % 2:
                    lines.append(("Lille seulement", Decimal(30), False))
                if unit == world.unit_a and i == 4 and k == 1:
                    lines.append((first, Decimal(-9), True))  # a return
                _order(unit, record, n, days=5 + 40 * k + 11 * i, lines=lines)
    n += 1
    _order(world.unit_a, None, n, days=2, lines=[("Vins", Decimal(40), False)])  # anonymous
    n += 1
    old = records[world.unit_a.pk][0]
    _order(world.unit_a, old, n, days=400, lines=[("Vins", Decimal(500), False)])  # too old
    summaries.rebuild()  # the order hook's summaries, for orders written around the hook
    category_revenue.rebuild()  # and the monthly revenue per category
    scoring.full_run()
    hq = world.hq_admin
    clients = persona_save(
        actor=hq,
        name="Clients",
        rules={"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]},
    )
    everyone = persona_save(
        actor=hq,
        name="Tous",
        rules={"match": "all", "rules": [{"field": "first_name", "op": "is_not_empty"}]},
    )
    assignment.assign_network(world.root.path)
    return {"records": records, "clients": clients, "everyone": everyone}


def _median_shares(counts_by_store: dict[str, Counter], keys, least: int):
    eligible = {p: c for p, c in counts_by_store.items() if sum(c.values()) >= least}
    if len(eligible) < customers.MIN_STORES:
        return dict.fromkeys(keys)
    return {
        key: statistics.median(c[key] / sum(c.values()) for c in eligible.values()) for key in keys
    }


def _first_month() -> dt.date:
    """The first day of the month eleven months before this one (twelve whole months)."""
    today = timezone.localdate()
    year, month = divmod(today.year * 12 + today.month - 1 - 11, 12)
    return dt.date(year, month + 1, 1)


def _category_reference(root_path: str):
    """Per store, per category as UPPER spells it: net revenue and buyers, from the raw lines."""
    since = timezone.make_aware(dt.datetime.combine(_first_month(), dt.time.min))
    revenue: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    buyers: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for line in OrderLine.objects.select_related("order"):
        if line.order.occurred_at < since or not line.category:
            continue
        key = line.category.upper()
        revenue[line.unit_path][key] += line.amount
        if not line.is_return and line.order.contact_id:
            buyers[line.unit_path][key].add(line.order.contact_id)
    return revenue, buyers


def test_the_section_equals_references_from_the_raw_rows(world, shop, small_thresholds, client):
    section = customers.store_customers(world.unit_a)

    groups = defaultdict(Counter)
    for path, group in RecordScore.objects.values_list("unit_path", "group"):
        groups[path][group] += 1
    mine = groups[world.unit_a.path]
    medians = _median_shares(groups, [r.key for r in section.rfm.rows], customers.MIN_PEOPLE)
    assert section.rfm.total == sum(mine.values()) == 10
    assert section.rfm.stores == 3
    for row in section.rfm.rows:
        assert row.count == mine[row.key]
        assert row.median == pytest.approx(medians[row.key])
    # A group with a buyer or two is not called above a median of 0 %, beyond chance as it is.
    tiny = [
        row
        for row in section.rfm.rows
        if max(row.count, row.median * row.share.n) < customers.MIN_ROW_PEOPLE
    ]
    assert any(compare(row.share, row.median) for row in tiny)
    assert not any(row.verdict for row in tiny)

    personas = defaultdict(Counter)
    for path, persona in PersonaRecord.objects.values_list("unit_path", "persona_id"):
        personas[path][persona] += 1
    clients, everyone = shop["clients"], shop["everyone"]
    expected = _median_shares(personas, [clients.pk, everyone.pk], customers.MIN_PEOPLE)
    rows = {row.key: row for row in section.personas.rows}
    assert [row.label for row in section.personas.rows] == ["Clients", "Tous"]
    assert rows[str(clients.public_id)].count == personas[world.unit_a.path][clients.pk] == 8
    assert rows[str(everyone.public_id)].count == 2
    assert rows[str(clients.public_id)].median == pytest.approx(expected[clients.pk]) == 0
    assert rows[str(everyone.public_id)].median == pytest.approx(expected[everyone.pk]) == 1
    # 8 of 10 against a median store's 0 %: above, beyond chance; 2 of 10 against 100 %: below.
    assert [rows[str(p.public_id)].verdict for p in (clients, everyone)] == ["above", "below"]

    revenue, buyers = _category_reference(world.root.path)
    rfm_buyers = {path: sum(c.values()) for path, c in groups.items()}
    stores = [p for p, total in rfm_buyers.items() if total >= customers.MIN_PEOPLE]
    assert len(stores) == section.categories.stores == 3
    ours = revenue[world.unit_a.path]
    top = sorted(ours, key=lambda k: (-ours[k], k))[: customers.TOP_CATEGORIES]
    assert [row.category.upper() for row in section.categories.rows] == top
    assert section.categories.revenue == sum(ours.values())
    for row in section.categories.rows:
        key = row.category.upper()
        assert row.revenue == ours[key]
        assert row.share == pytest.approx(float(ours[key] / sum(ours.values())))
        assert row.buyers == len(buyers[world.unit_a.path][key])
        assert (row.reach.hits, row.reach.n) == (row.buyers, rfm_buyers[world.unit_a.path])
        assert row.median_buyers == pytest.approx(
            statistics.median(len(buyers[p].get(key, ())) for p in stores)
        )
        assert row.median_reach == pytest.approx(
            statistics.median(len(buyers[p].get(key, ())) / rfm_buyers[p] for p in stores)
        )
        # Shares of revenue beside the median store's (the stores of the RFM median).
        medians = [revenue[p].get(key, 0) / sum(revenue[p].values()) for p in stores]
        assert row.median_share == pytest.approx(float(statistics.median(medians)))
        assert row.month_share == pytest.approx(float(ours[key] / sum(ours.values())))
        low, high = row.month_interval
        expected_verdict = ""
        if row.buyers >= customers.MIN_ROW_PEOPLE:
            expected_verdict = (
                "above" if low > row.median_share else "below" if high < row.median_share else ""
            )
        assert row.share_verdict == expected_verdict
    assert section.categories.months[0] == _first_month()
    # Lyon returned a line: its revenue is net of it.
    assert any(r.is_return for r in OrderLine.objects.filter(unit_path=world.unit_a.path))

    client.login(email=world.manager_a.email, password=PASSWORD)
    page = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id]))
    assert page.status_code == 200
    html = page.content.decode()
    for row in section.rfm.rows:
        assert f'data-group="{row.key}"' in html
    assert f'data-persona="{clients.public_id}"' in html
    assert 'data-count="8"' in html
    assert "above the median store" in html and "below the median store" in html
    assert f'data-revenue="{section.categories.rows[0].revenue}"' in html
    assert "Shares of revenue: net of returns, from " in html
    for row in section.categories.rows:
        assert f'data-share-verdict="{row.share_verdict}"' in html


def test_a_store_sees_its_own_figures_and_medians_never_another_store(
    world, shop, small_thresholds, client
):
    client.login(email=world.manager_a.email, password=PASSWORD)
    assert client.get(reverse("unit_dashboard", args=[world.unit_b.public_id])).status_code == 404
    assert client.get(reverse("unit_dashboard", args=[world.unit_a2.public_id])).status_code == 404
    html = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id])).content.decode()
    # Only Lille sells it: neither its name nor its figures reach Lyon's page.
    assert "Lille seulement" not in html
    assert "Grenoble" not in html and "Lille" not in html
    # HQ reading Lyon's dashboard sees the same section.
    client.login(email=world.hq_admin.email, password=PASSWORD)
    hq_html = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id])).content.decode()
    start, end = 'id="customers"', "</section>"
    assert (
        hq_html[hq_html.index(start) : hq_html.index(end, hq_html.index(start))]
        == html[html.index(start) : html.index(end, html.index(start))]
    )


def test_small_volumes_are_said_and_never_compared(world, shop, client, monkeypatch):
    section = customers.store_customers(world.unit_a)  # 10 buyers, 30 needed
    assert section.rfm.too_few_people and section.rfm.too_few_stores
    assert not any(row.verdict for row in section.rfm.rows + section.personas.rows)
    assert all(row.median is None for row in section.personas.rows)
    assert all(row.too_few_buyers for row in section.categories.rows)  # 10 needed
    client.login(email=world.manager_a.email, password=PASSWORD)
    html = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id])).content.decode()
    assert "Fewer than 30 buyers: too few to compare." in html
    assert "fewer than 10 buyers: too few to compare" in html
    assert "above the median store" not in html
    # Enough people, but fewer stores than the median needs.
    monkeypatch.setattr(customers, "MIN_PEOPLE", 5)
    monkeypatch.setattr(customers, "MIN_STORES", 4)
    section = customers.store_customers(world.unit_a)
    assert section.personas.too_few_stores and not section.personas.too_few_people
    assert section.categories.too_few_stores
    assert all(row.median_buyers is None for row in section.categories.rows)
    html = client.get(
        reverse("unit_dashboard", args=[world.unit_a.public_id]), HTTP_ACCEPT_LANGUAGE="fr"
    ).content.decode()
    assert "Moins de 4 magasins" in html
    assert "Parts du chiffre d’affaires : net des retours, de " in html


def test_demo_purchases_are_said_and_never_ranked(world, shop, small_thresholds, client):
    Order.objects.filter(unit=world.unit_a).update(source=Order.Source.DEMO)
    section = customers.store_customers(world.unit_a)
    assert section.demo_only and section.network_has_demo
    assert not any(row.verdict for row in section.personas.rows + section.rfm.rows)
    client.login(email=world.manager_a.email, password=PASSWORD)
    html = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id])).content.decode()
    assert 'id="customers-demo"' in html and "never ranked" in html
    # Lille's purchases are real: its figures may be ranked, and it is told the network's
    # medians include the demo's.
    lille = customers.store_customers(world.unit_b)
    assert not lille.demo_only and lille.network_has_demo


# -- persona filters -----------------------------------------------------------------------------


def _sent_campaign(world, name, recipients, clicked, converted=()):
    """A finished local campaign of Lyon sent to ``recipients``, clicked by ``clicked`` (twice
    each), one conversion per ``converted``; plus a machine click and opens, never counted."""
    campaign = _finished(world, world.unit_a, world.manager_a, name, {"headline": name}, 0, 0)
    unit = world.unit_a
    rows = Recipient.objects.bulk_create(
        Recipient(
            campaign=campaign,
            contact=contact,
            unit=unit,
            unit_path=unit.path,
            channel="email",
            status=Recipient.Status.SENT,
        )
        for contact in recipients
    )
    by_contact = {r.contact_id: r.pk for r in rows}
    when = NOW - dt.timedelta(days=2)

    def event(kind, contact, **extra):
        return events.row(
            occurred_at=when,
            kind=kind,
            channel="email",
            campaign_id=campaign.pk,
            unit_id=unit.pk,
            unit_path=unit.path,
            recipient_id=by_contact[contact.pk],
            **extra,
        )

    K = Event.Kind
    out = [event(K.SENT, c) for c in recipients]
    out += [event(K.OPENED, c) for c in recipients]
    out += [event(K.CLICKED, c) for c in clicked for _twice in range(2)]
    out += [event(K.CLICKED, recipients[-1], machine=True)]
    out += [event(K.CONVERTED, c, amount=Decimal(25)) for c in converted]
    events.write(out)
    return campaign


def _persona_reference(campaign, persona) -> dict[str, int]:
    """From the raw rows: the persona's recipients' (every recipient's for None) sent, clicks,
    unique clickers, conversions."""
    recipients = Recipient.objects.filter(campaign=campaign)
    if persona is not None:
        recipients = recipients.filter(
            contact_id__in=PersonaRecord.objects.filter(persona=persona).values("contact_id")
        )
    theirs = set(recipients.values_list("pk", flat=True))
    counts: Counter = Counter()
    clickers = set()
    for kind, recipient, machine in Event.objects.filter(campaign_id=campaign.pk).values_list(
        "kind", "recipient_id", "machine"
    ):
        if machine or recipient not in theirs:
            continue
        counts[kind] += 1
        if kind == Event.Kind.CLICKED:
            clickers.add(recipient)
    return {
        "sent": counts[Event.Kind.SENT],
        "clicks": counts[Event.Kind.CLICKED],
        "clickers": len(clickers),
        "conversions": counts[Event.Kind.CONVERTED],
    }


def test_the_campaign_report_by_persona_counts_that_personas_recipients(world, shop, client):
    lyon = shop["records"][world.unit_a.pk]  # 0–7 customers ("Clients"), 8–9 "Tous"
    campaign = _sent_campaign(world, "Soirée vins", lyon, clicked=lyon[5:9], converted=lyon[6:9])
    clients = shop["clients"]
    found = selectors.campaign_persona_results(world.manager_a, campaign, clients)
    expected = _persona_reference(campaign, clients)
    assert expected == {"sent": 8, "clicks": 6, "clickers": 3, "conversions": 2}
    c = found["chosen"]["c"]
    assert {k: getattr(c, k) for k in expected} == expected
    assert c.opened == 0 and c.revenue == Decimal(50)
    assert found["chosen"]["click_rate"].hits == 3 and found["chosen"]["click_rate"].n == 8
    # Beside it, every recipient counted the same way (the machine click left out).
    everyone = _persona_reference(campaign, None)
    assert everyone == {"sent": 10, "clicks": 8, "clickers": 4, "conversions": 3}
    assert {k: getattr(found["everyone"]["c"], k) for k in everyone} == everyone

    client.login(email=world.manager_a.email, password=PASSWORD)
    url = reverse("campaign_report", args=[campaign.public_id])
    html = client.get(url, {"persona": str(clients.public_id)}).content.decode()
    assert 'id="persona-results"' in html and "Recipients in the persona “Clients”" in html
    assert f'<option value="{clients.public_id}" selected>' in html
    assert "Fewer than 100 messages delivered to this persona" in html

    # An unknown persona, a malformed id and another network's persona: ignored, said.
    other_root = network.network_create(
        actor=None, name="Autre", code="autre", legal_name="Autre SAS", sending_domain="a.example"
    )
    foreign = Persona.objects.create(
        network=Network.objects.get(node=other_root), name="Étranger", position=1, rules={}
    )
    for wanted in (str(uuid.uuid4()), "pas-un-id", str(foreign.public_id)):
        response = client.get(url, {"persona": wanted})
        assert response.status_code == 200
        body = response.content.decode()
        assert 'id="persona-results"' not in body
        assert "That persona is not one of your network&#x27;s: all recipients are shown." in body
        assert "Étranger" not in body
    # Another store's manager cannot read Lyon's campaign, persona or not.
    client.login(email=world.manager_b.email, password=PASSWORD)
    assert client.get(url, {"persona": str(clients.public_id)}).status_code == 404


def test_the_gallery_ranks_by_the_personas_results(world, shop, client, monkeypatch):
    monkeypatch.setattr(selectors, "GALLERY_MIN_DELIVERED", 2)
    lyon = shop["records"][world.unit_a.pk]
    # Overall "Rare" is clicked by 5 of 10 and "Partout" by 4 of 10, but among customers
    # "Partout" wins (4 of 8 against 3 of 8), and among "Tous" only "Rare" has clicks.
    rare = _sent_campaign(world, "Rare", lyon, clicked=lyon[5:10])
    everywhere = _sent_campaign(world, "Partout", lyon, clicked=lyon[:4])
    rollups.refresh()
    overall = [e["campaign"].pk for e in selectors.gallery()]
    assert overall == [rare.pk, everywhere.pk]
    clients = shop["clients"]
    among = selectors.gallery(persona=clients)
    assert [e["campaign"].pk for e in among] == [everywhere.pk, rare.pk]
    for entry in among:
        ref = _persona_reference(entry["campaign"], clients)
        assert (entry["c"].sent, entry["c"].clickers) == (ref["sent"], ref["clickers"])
    # Two of Lyon's records are "Tous": under the minimum of three delivered, nothing shows.
    monkeypatch.setattr(selectors, "GALLERY_MIN_DELIVERED", 3)
    assert selectors.gallery(persona=shop["everyone"]) == []

    client.login(email=world.manager_b.email, password=PASSWORD)
    html = client.get(reverse("gallery"), {"persona": str(clients.public_id)}).content.decode()
    assert 'id="gallery-persona"' in html
    assert html.index(f'data-campaign="{everywhere.public_id}"') < html.index(
        f'data-campaign="{rare.public_id}"'
    )
    html = client.get(reverse("gallery"), {"persona": "pas-un-id"}).content.decode()
    assert 'id="gallery-persona"' not in html
    assert "That persona is not one of your network&#x27;s" in html


def test_persona_counters_are_one_query(world, shop, django_assert_num_queries):
    lyon = shop["records"][world.unit_a.pk]
    campaign = _sent_campaign(world, "Une", lyon, clicked=lyon[:2])
    with django_assert_num_queries(1):
        by_persona.persona_counters(Event.objects.all(), [campaign.pk], shop["clients"])


def test_the_section_reads_the_same_queries_whatever_the_number_of_stores(
    world, shop, small_thresholds
):
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            customers.store_customers(world.unit_a)
        return len(captured)

    few = count()
    for serial in range(4):
        unit = network.node_create(
            actor=None, parent=world.region_b, kind="unit", name=f"M{serial}", code=f"m{serial}"
        )
        for i in range(3):
            record = ContactFactory(unit=unit, email=f"m{serial}.{i}@orange.fr")
            _order(unit, record, 100 * serial + i, days=10 + i, lines=[("Vins", Decimal(9), False)])
    scoring.full_run()
    assignment.assign_network(world.root.path)
    # The network's RFM policy (the window), whether any order is the demo's, the RFM counts,
    # the personas' latest month, its counts and the personas' names, the store's lines by
    # category, the network's buyers of its top categories, the network's monthly revenue
    # (stores, then categories); on PostgreSQL each of the five system-scope blocks also
    # sets and restores the scope.
    assert count() == few == 10 + (15 if connection.vendor == "postgresql" else 0)
