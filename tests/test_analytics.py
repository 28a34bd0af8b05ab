"""Rollups, dashboards and the campaign report: every figure equals the raw events, counted here independently."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter, defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from enseigne.analytics import rollups, selectors
from enseigne.analytics.models import DailyStat, UnitDay
from enseigne.campaigns import services
from enseigne.delivery import events
from enseigne.delivery.models import Event
from enseigne.lib.stats import Rate, compare, wilson
from tests.campaign_helpers import contacts, email_template, local_campaign
from tests.exports import export_rows

PARIS = ZoneInfo("Europe/Paris")
K = Event.Kind
NAMES = {
    K.SENT: "sent",
    K.OPENED: "opened",
    K.CLICKED: "clicks",
    K.UNSUBSCRIBED: "unsubscribed",
    K.BOUNCED: "bounced",
    K.COMPLAINED: "complained",
    K.CONVERTED: "conversions",
}


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


def _national(world):
    campaign = services.campaign_create_national(
        actor=world.hq_admin,
        channel="email",
        name="Printemps",
        template=email_template(world, "National"),
    )
    services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    services.campaign_schedule(
        actor=world.hq_admin, campaign=campaign, send_at=at(1, 9).astimezone(dt.UTC)
    )
    return campaign


def _random_events(rng, campaigns, units, start, end, n):
    """``n`` events between ``start`` and ``end``: repeat clicks, machine opens, conversions with amounts."""
    rows = []
    span = (end - start).total_seconds()
    kinds = (
        [K.SENT] * 5
        + [K.OPENED] * 3
        + [K.CLICKED] * 4
        + [K.UNSUBSCRIBED, K.BOUNCED, K.COMPLAINED, K.CONVERTED]
    )
    for _ in range(n):
        campaign = rng.choice(campaigns)
        unit = campaign.owner if not campaign.is_national else rng.choice(units)
        kind = rng.choice(kinds)
        when = start + dt.timedelta(seconds=rng.uniform(0, span))
        recipient = None if kind == K.OPENED else rng.randrange(1, 40) + 1000 * unit.pk
        rows.append(
            events.row(
                occurred_at=when,
                kind=kind,
                channel="email",
                campaign_id=campaign.pk,
                unit_id=unit.pk,
                unit_path=unit.path,
                recipient_id=recipient,
                link_id=rng.choice([None, 1, 2]) if kind == K.CLICKED else None,
                machine=kind in (K.OPENED, K.CLICKED) and rng.random() < 0.2,
                amount=Decimal(rng.randrange(100, 9000)) / 100 if kind == K.CONVERTED else None,
            )
        )
    events.write(rows)
    return rows


def _expected(rows, *, campaign=None, units=None, since=None):
    """Counts per unit id from the raw rows, computed without the application's code."""
    counts = defaultdict(Counter)
    clickers = defaultdict(set)
    revenue = defaultdict(Decimal)
    for when, kind, _ch, campaign_id, unit_id, _path, recipient, _link, machine, amount in rows:
        if (
            machine
            or (campaign is not None and campaign_id != campaign.pk)
            or (units and unit_id not in units)
        ):
            continue
        if since is not None and when.astimezone(PARIS).date() < since:
            continue
        counts[unit_id][NAMES[kind]] += 1
        if kind == K.CLICKED:
            clickers[unit_id].add((campaign_id, recipient))
        if amount:
            revenue[unit_id] += amount
    return counts, {u: len(s) for u, s in clickers.items()}, revenue


@pytest.fixture
def history(world):
    """Two campaigns, events over ten days written in two batches with a rollup pass between them."""
    rng = random.Random(20260310)
    with time_machine.travel(at(1, 8), tick=False):
        national = _national(world)
        local = local_campaign(world)
    units = [world.unit_a, world.unit_a2, world.unit_b]
    with time_machine.travel(at(5, 10), tick=False):
        first = _random_events(rng, [national, local], units, at(1, 0), at(5, 9), 600)
        rollups.refresh()
    with time_machine.travel(at(10, 12), tick=False):
        second = _random_events(rng, [national, local], units, at(5, 9, 55), at(10, 11), 600)
        # A conversion reported late, dated before the last pass: touch() sends the next pass back.
        late = events.row(
            occurred_at=at(2, 15),
            kind=K.CONVERTED,
            channel="email",
            campaign_id=national.pk,
            unit_id=world.unit_b.pk,
            unit_path=world.unit_b.path,
            recipient_id=5,
            amount=Decimal("120.00"),
        )
        events.write([late])
        rollups.touch(late[0])
        rollups.refresh()
    return national, local, first + second + [late]


def test_the_rollups_equal_the_raw_events_after_incremental_passes(world, history):
    national, local, rows = history
    counts, clickers, revenue = _expected(rows)
    for unit in (world.unit_a, world.unit_a2, world.unit_b):
        stats = DailyStat.objects.filter(unit_id=unit.pk)
        for name in (
            "sent",
            "opened",
            "clicks",
            "unsubscribed",
            "bounced",
            "complained",
            "conversions",
        ):
            assert sum(s.__dict__[name] for s in stats) == counts[unit.pk][name], (unit.code, name)
        # First clicks only: a recipient who clicked on several days counts once.
        assert sum(s.clickers for s in stats) == clickers[unit.pk]
        assert sum((s.revenue for s in stats), Decimal()) == revenue[unit.pk]
        # E-mail at 0.80 € per thousand; the unit pays half of a national relay.
        sent_local = sum(s.sent for s in stats if s.campaign_id == local.pk)
        sent_national = sum(s.sent for s in stats if s.campaign_id == national.pk)
        cost = sum((s.cost for s in stats), Decimal())
        assert cost == (
            Decimal("0.0008") * sent_local + Decimal("0.0004") * sent_national
        ).quantize(Decimal("0.0001"))
    # The second pass rebuilt from 5 March on, and went back to 2 March for the late conversion only.
    assert DailyStat.objects.filter(
        day=dt.date(2026, 3, 2), conversions__gt=0, unit_id=world.unit_b.pk
    ).exists()
    assert UnitDay.objects.filter(day=dt.date(2026, 3, 10)).count() == 3


def test_a_pass_only_rebuilds_from_the_dirty_day(world, history):
    national, _local, _rows = history
    old = DailyStat.objects.filter(day=dt.date(2026, 3, 3)).first()
    DailyStat.objects.filter(pk=old.pk).update(
        sent=999_999
    )  # a pass that rescanned 3 March would fix this
    with time_machine.travel(at(10, 18), tick=False):
        done = rollups.refresh()
    assert done["days"] == 1
    assert DailyStat.objects.get(pk=old.pk).sent == 999_999


def test_campaign_report_adds_events_not_rolled_up_yet_and_keeps_to_the_region(world, history):
    national, _local, rows = history
    with time_machine.travel(at(10, 12, 30), tick=False):
        tail = _random_events(
            random.Random(7),
            [national],
            [world.unit_a, world.unit_a2, world.unit_b],
            at(10, 12, 1),
            at(10, 12, 29),
            80,
        )
        report = selectors.campaign_report(world.region_manager, national)
    region = {world.unit_a.pk, world.unit_a2.pk}
    counts, clickers, revenue = _expected(rows + tail, campaign=national, units=region)
    assert {r["unit"].pk for r in report["units"]} == region  # Lille is not the region's
    for row in report["units"]:
        unit = row["unit"].pk
        assert (
            row["c"].sent,
            row["c"].opened,
            row["c"].clicks,
            row["c"].clickers,
            row["c"].conversions,
        ) == (
            counts[unit]["sent"],
            counts[unit]["opened"],
            counts[unit]["clicks"],
            clickers[unit],
            counts[unit]["conversions"],
        )
        assert row["c"].revenue == revenue[unit]
    assert report["total"].clickers == sum(clickers.values())
    assert report["relay_rate"].n == 2


def test_network_dashboard_for_a_region_manager_counts_only_the_subtree(world, history, client):
    _national_campaign, _local, rows = history
    today = dt.date(2026, 3, 10)
    data = selectors.network_dashboard(
        world.region_manager, days=30, kpi="email_click_rate", today=today
    )
    counts, clickers, _revenue = _expected(rows, since=today - dt.timedelta(days=29))
    assert {r["unit"].pk for r in data["rows"]} == {world.unit_a.pk, world.unit_a2.pk}
    for row in data["rows"]:
        unit = row["unit"].pk
        delivered = counts[unit]["sent"] - counts[unit]["bounced"]
        assert (row["rate"].hits, row["rate"].n) == (clickers[unit], delivered)
    values = [r["value"] for r in data["rows"]]
    assert values == sorted(values, reverse=True)
    # The page: HQ sees every unit; a unit manager is sent to their own unit's dashboard.
    with time_machine.travel(at(10, 13), tick=False):
        client.force_login(world.hq_admin)
        page = client.get(reverse("results"), {"days": 30})
        assert page.status_code == 200
        assert all(name in page.content.decode() for name in ("Lyon", "Grenoble", "Lille"))
        client.force_login(world.manager_a)
        answer = client.get(reverse("results"))
        assert answer.status_code == 302
        assert answer["Location"] == reverse("unit_dashboard", args=[world.unit_a.public_id])
        mine = client.get(answer["Location"], {"days": 30})
        assert mine.status_code == 200
        # The unit's request sees only its own rows (RLS on PostgreSQL), yet the medians are the network's.
        expected = selectors.unit_dashboard(world.unit_a, days=30, today=dt.date(2026, 3, 10))[
            "comparison"
        ]
        assert [r["network"] for r in mine.context["comparison"]] == [
            r["network"] for r in expected
        ]
        assert expected[0]["network"] is not None
        assert (
            client.get(reverse("unit_dashboard", args=[world.unit_b.public_id])).status_code == 404
        )


def test_unit_dashboard_figures_and_comparison(world, history):
    _national, local, rows = history
    today = dt.date(2026, 3, 10)
    data = selectors.unit_dashboard(world.unit_a, days=30, today=today)
    counts, clickers, revenue = _expected(rows, units={world.unit_a.pk})
    assert data["total"].sent == counts[world.unit_a.pk]["sent"]
    assert data["total"].clickers == clickers[world.unit_a.pk]
    assert data["total"].revenue == revenue[world.unit_a.pk]
    assert {c["name"] for c in data["campaigns"]} == {"Printemps", local.name}
    every = _expected(rows)
    rates = sorted(
        every[1].get(u, 0) / (every[0][u]["sent"] - every[0][u]["bounced"])
        for u in (world.unit_a.pk, world.unit_a2.pk, world.unit_b.pk)
    )
    click = next(r for r in data["comparison"] if r["kpi"].key == "email_click_rate")
    assert click["network"] == pytest.approx(rates[1])  # the median of three units


def test_report_csv_is_formula_safe(world, history, client):
    national, _local, _rows = history
    world.unit_b.name = '=HYPERLINK("http://evil")'
    world.unit_b.save()
    client.force_login(world.hq_admin)
    with time_machine.travel(at(10, 13), tick=False):
        response = client.get(reverse("campaign_report_csv", args=[national.public_id]))
        page = client.get(reverse("campaign_report", args=[national.public_id]))
    rows = export_rows(response)
    assert rows[0][:4] == ["Unit", "Code", "Relay", "Sent"]
    assert [r[0][1:] for r in rows if r[0].startswith("'=")] == ['=HYPERLINK("http://evil")']
    assert page.status_code == 200
    client.force_login(world.manager_b)
    assert (
        client.get(reverse("campaign_report", args=[local_campaign(world).public_id])).status_code
        == 404
    )


def test_wilson_intervals_and_verdicts():
    low, high = wilson(10, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    assert wilson(0, 0) is None
    assert wilson(0, 10)[0] == 0.0
    # 3 out of 20 is 15 %, yet its interval holds a 10 % network rate: no verdict.
    assert compare(Rate(3, 20), 0.10) == ""
    assert compare(Rate(300, 2000), 0.10) == "better"
    assert compare(Rate(300, 2000), 0.10, higher_is_better=False) == "worse"
    assert compare(Rate(5, 2000), 0.10) == "worse"


def test_refresh_stats_command_rebuilds_from_a_day(world, history):
    from django.core.management import call_command

    DailyStat.objects.filter(day=dt.date(2026, 3, 3)).update(sent=0)
    with time_machine.travel(at(10, 18), tick=False):
        call_command("refresh_stats", "--from", "2026-03-01")
    _national, _local, rows = history
    counts, _c, _r = _expected(rows)
    assert sum(DailyStat.objects.values_list("sent", flat=True)) == sum(
        c["sent"] for c in counts.values()
    )
    contacts(world.unit_a, 2)
    with time_machine.travel(at(11, 9), tick=False):
        rollups.refresh()
    assert UnitDay.objects.get(unit_id=world.unit_a.pk, day=dt.date(2026, 3, 11)).contacts == 2


def test_a_rate_with_more_hits_than_trials_is_capped_not_an_error():
    # Sends missing from the log (tracking turned on mid-campaign) must not break a dashboard.
    assert wilson(12, 10) == wilson(10, 10) and wilson(10, 10)[1] == pytest.approx(1.0)
    assert compare(Rate(12, 10), 0.5) == "better"
