"""The results pages say what their figures are: campaign-credited sales beside the store's
own orders (returns deducted), the latest orders on the sales page with the credited ones
apart and the real importer linked, what an ROI's cost includes, a region manager's results
named after the region, the budget's spent against the period's cost explained, and French
punctuation and thousands separators."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from enseigne.campaigns import audience
from enseigne.campaigns.models import Budget, Recipient
from enseigne.campaigns.selectors import policy_for
from enseigne.commerce.models import Order
from enseigne.commerce.selectors import StoreSales, store_sales
from enseigne.tracking.conversions import conversion_record
from tests.campaign_helpers import contacts, launched, local_campaign, sms_template

pytestmark = pytest.mark.django_db

NOW = timezone.now()
NBSP = "\u00a0"
BASE = Path(__file__).resolve().parent.parent


def _orders(unit, totals, *, days_ago=3, prefix="T"):
    Order.objects.bulk_create(
        Order(
            unit=unit,
            unit_path=unit.path,
            external_id=f"{prefix}-{unit.code}-{n}",
            occurred_at=NOW - dt.timedelta(days=days_ago, minutes=n),
            total=Decimal(total),
            source="api",
        )
        for n, total in enumerate(totals)
    )


@pytest.fixture
def shops(world):
    # Lyon: 1,001 sales of 10 € and two returns (−15 €) in the last 90 days, one sale before.
    _orders(world.unit_a, ["10.00"] * 1001 + ["-15.00", "-15.00"])
    _orders(world.unit_a, ["500.00"], days_ago=120, prefix="OLD")
    _orders(world.unit_a2, ["40.00", "60.00"])
    _orders(world.unit_b, ["999.00"])
    return world


def test_store_sales_counts_orders_and_returns_in_one_query(shops):
    world = shops
    since = NOW - dt.timedelta(days=90)
    with CaptureQueriesContext(connection) as queries:
        sales = store_sales([world.unit_a, world.unit_a2, world.unit_b], since)
    assert len(queries.captured_queries) == 1
    assert sales[world.unit_a.pk] == StoreSales(
        orders=1001, returns=2, revenue=Decimal("9980.00"), returned=Decimal("-30.00")
    )
    assert sales[world.unit_a2.pk] == StoreSales(2, 0, Decimal("100.00"), Decimal("0.00"))
    # Only the units asked for: the caller authorized them.
    assert set(store_sales([world.unit_a2], since)) == {world.unit_a2.pk}


def test_the_store_dashboard_shows_its_orders_beside_the_sales_credited_to_campaigns(shops, client):
    world = shops
    client.force_login(world.manager_a)
    page = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id]), {"days": 90})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Sales credited to campaigns" in html and "Revenue credited to campaigns" in html
    assert page.context["store_sales"].orders == 1001
    assert 'id="store-orders" data-count="1001">1,001<' in html
    assert 'data-amount="9980.00">9,980.00\u202f€<' in html
    # In French, counts carry a thousands separator too.
    french = client.get(
        reverse("unit_dashboard", args=[world.unit_a.public_id]),
        {"days": 90},
        headers={"accept-language": "fr"},
    ).content.decode()
    assert f'data-count="1001">1{NBSP}001<' in french
    assert "Ventes attribuées aux campagnes" in french


def test_the_network_page_shows_each_stores_orders_and_the_total(shops, client):
    world = shops
    client.force_login(world.hq_admin)
    page = client.get(reverse("results"), {"days": 90})
    html = page.content.decode()
    rows = {r["unit"].code: r["store_sales"] for r in page.context["rows"]}
    assert (rows["lyon"].orders, rows["grenoble"].revenue, rows["lille"].revenue) == (
        1001,
        Decimal("100.00"),
        Decimal("999.00"),
    )
    assert page.context["scope_sales"].orders == 1001 + 2 + 1
    assert 'id="scope-orders" data-count="1004">1,004<' in html
    assert "Network results" in html


def test_a_region_managers_results_are_named_after_the_region(shops, client):
    world = shops
    client.force_login(world.region_manager)
    page = client.get(reverse("results"), {"days": 90, "kpi": "revenue"})
    html = page.content.decode()
    assert "Network results" not in html
    assert 'id="results-title">Results · Sud-Est<' in html
    assert "Sud-Est:" in html and "Whole network:" in html
    # The region's figures are its stores' (Lille's order is not in them).
    assert page.context["scope_sales"].revenue == Decimal("9980.00") + Decimal("100.00")
    french = client.get(
        reverse("results"), {"days": 90}, headers={"accept-language": "fr"}
    ).content.decode()
    assert "Résultats du réseau" not in french
    assert f"Sud-Est{NBSP}:" in french and f"Tout le réseau{NBSP}:" in french
    client.force_login(world.hq_admin)
    french = client.get(reverse("results"), headers={"accept-language": "fr"}).content.decode()
    assert f"Réseau{NBSP}:" in french and "Réseau:" not in french


def test_every_roi_figure_says_what_its_cost_includes(shops, client):
    world = shops
    client.force_login(world.hq_admin)
    note = "cost = sending fees only; margin and discounts not counted"
    unit = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id])).content.decode()
    # The KPI, the comparison's ROI row and the campaigns' ROI column.
    assert unit.count("data-roi-note") == 3 and note in unit
    network = client.get(reverse("results")).content.decode()
    assert network.count("data-roi-note") == 2
    by_roi = client.get(reverse("results"), {"kpi": "roi"}).content.decode()
    # The ranked column and the network's value too.
    assert by_roi.count("data-roi-note") == 4


def test_the_budget_says_what_is_spent_and_how_it_differs_from_the_periods_cost(world, client):
    today = timezone.localdate()
    Budget.objects.create(
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        starts_on=today.replace(day=1),
        ends_on=today.replace(day=1) + dt.timedelta(days=40),
        amount=Decimal("300.00"),
    )
    client.force_login(world.manager_a)
    page = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id]), {"days": 90})
    html = page.content.decode()
    start = today.replace(day=1)
    assert page.context["budget"]["spent"] == Decimal("0.00")
    assert f"from {start:%m/%d/%Y}" in html
    assert 'id="budget-explained"' in html
    assert f"sent since {start:%m/%d/%Y}" in html
    assert f"sent since {page.context['since']:%m/%d/%Y}, the period chosen" in html


def test_the_budgets_spent_is_the_sending_gates_figure(world, client):
    # Messages handed off but not rolled up yet: the gate counts them, so does the page.
    campaign = local_campaign(world, channel="sms", template=sms_template(world))
    contacts(world.unit_a, 3, sms=True, start=500)
    launched(world, campaign)
    Recipient.objects.filter(campaign=campaign).update(
        status=Recipient.Status.SENT, sent_at=timezone.now()
    )
    today = timezone.localdate()
    budget = Budget.objects.create(
        unit=world.unit_a,
        unit_path=world.unit_a.path,
        starts_on=today - dt.timedelta(days=2),
        ends_on=today + dt.timedelta(days=20),
        amount=Decimal("300.00"),
    )
    gate = audience.spent(world.unit_a, budget.starts_on, budget.ends_on, policy_for(world.unit_a))
    assert gate > 0
    client.force_login(world.manager_a)
    page = client.get(reverse("unit_dashboard", args=[world.unit_a.public_id]))
    assert page.context["budget"]["spent"] == gate.quantize(Decimal("0.01"))
    assert page.context["budget"]["left"] == (Decimal("300.00") - gate).quantize(Decimal("0.01"))


def test_the_sales_page_lists_the_stores_orders_and_apart_the_credited_ones(shops, client):
    world = shops
    conversion_record(actor=world.manager_a, unit=world.unit_a, order_id="API-1", amount="25")
    client.force_login(world.manager_a)
    page = client.get(reverse("sales"))
    html = page.content.decode()
    # The till's orders, credited or not (API-1 credited no campaign: no click before it).
    assert 'data-order="T-lyon-0"' in html and 'data-order="API-1"' in html
    assert "T-lille-0" not in html
    assert 'id="sales"' in html and "No sale credited to a campaign yet." in html
    # No old upload form; the real importer is linked.
    assert 'type="file"' not in html
    assert f'href="{reverse("order_import_list")}"' in html
    assert client.post(reverse("sales"), {}).status_code == 405
    client.force_login(world.manager_b)
    other = client.get(reverse("sales")).content.decode()
    assert 'data-order="T-lille-0"' in other and "T-lyon-0" not in other


COLON_OUTSIDE = re.compile(r"""(?:translate\s+"[^"]*"|endblocktranslate)\s*%\}\s*:""")


@pytest.mark.parametrize(
    "template", [*sorted((BASE / "templates" / "analytics").glob("*.html")), "identity/person.html"]
)
def test_a_label_keeps_its_colon_inside_the_translation(template):
    # French puts a no-break space before ":" and English none: each language punctuates
    # itself only when the colon is in the translated string.
    path = template if isinstance(template, Path) else BASE / "templates" / template
    assert COLON_OUTSIDE.findall(path.read_text()) == []


def test_french_labels_have_a_space_before_their_colon():
    with translation.override("fr"):
        assert gettext("Network:") == f"Réseau{NBSP}:"
        assert gettext("RFM group in the network:") == f"Groupe RFM dans le réseau{NBSP}:"
        assert gettext("%(name)s:") % {"name": "Sud-Est"} == f"Sud-Est{NBSP}:"
