"""A journey's report (issue 22): per-step figures from the ledger and the click log, the
control group's lift with its 95 % interval, store by store where volume allows, and the
journeys on the campaign calendar. Figures are checked against references the tests count
themselves from the raw rows."""

from __future__ import annotations

import datetime as dt
import email
import json
import re
import uuid
from collections import Counter
from decimal import Decimal
from email import policy

import pytest
from django.db import connection
from django.test import RequestFactory
from django.urls import resolve
from django.utils import timezone

from enseigne.brand.services import template_create
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.commerce.models import Order
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.delivery.models import Event
from enseigne.delivery.pipeline import run_campaign
from enseigne.journeys import engine, report, selectors, services
from enseigne.journeys.models import Enrollment, EntryPurchases, JourneyRun, JourneySend
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.stats import Mean, Rate, mean_difference, rate_difference
from tests.campaign_helpers import contacts
from tests.factories import PASSWORD
from tests.test_browser import browser_page  # noqa: F401 — the shared Chromium fixture
from tests.test_browser_campaigns import _login

pytestmark = pytest.mark.django_db
FR = {"HTTP_ACCEPT_LANGUAGE": "fr"}
SHOP = "https://maison.example/magasins"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
SCANNER = "Barracuda Sentinel (EE)"
NOW = timezone.now().replace(microsecond=0)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level security exists on PostgreSQL only"
)


@pytest.fixture(autouse=True)
def _empty_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def login(client, user):
    assert client.login(username=user.email, password=PASSWORD)


def flow(hello) -> dict:
    return {
        "trigger": {"kind": "consent", "channel": "email"},
        "goal": {"kind": "purchase"},
        "start": "hello",
        "steps": {
            "hello": {"kind": "send_email", "template": str(hello.public_id), "next": "pause"},
            "pause": {"kind": "wait", "days": 2, "next": "again"},
            "again": {"kind": "send_email", "template": str(hello.public_id), "next": "out"},
            "out": {"kind": "exit"},
        },
    }


@pytest.fixture
def journey(world):
    """HQ's journey with a 30 % control group, run in Lyon, Grenoble (both in the region
    manager's region) and Lille."""
    hello = template_create(
        actor=world.hq_admin,
        shared_with=world.root,
        channel="email",
        name="Bienvenue",
        source=(
            '<mjml><mj-body><mj-section><mj-column><mj-text>Bonjour, <a href="'
            + SHOP
            + '">nos magasins</a> <ens-zone name="headline" kind="text">Salut</ens-zone>'
            ' <a href="{{ links.unsubscribe }}">Se désabonner</a>'
            "</mj-text></mj-column></mj-section></mj-body></mjml>"
        ),
        subject="Bienvenue",
    )
    template = services.journey_template_create(
        actor=world.hq_admin, owner=world.root, name="Welcome", holdout_percent=30
    )
    services.journey_publish(actor=world.hq_admin, template=template, flow=flow(hello))
    runs = {
        unit.code: services.journey_activate(
            actor=world.hq_admin,
            template=template,
            unit=unit,
            starts_on=timezone.localdate(),
        )
        for unit in (world.unit_a, world.unit_a2, world.unit_b)
    }
    # Running for two months (a start date is never set in the past).
    JourneyRun.objects.filter(template=template).update(
        starts_on=timezone.localdate() - dt.timedelta(days=60)
    )
    for run in runs.values():
        run.refresh_from_db()
    return template, runs


def _click(path: str, agent: str) -> None:
    request = RequestFactory().get(path, HTTP_USER_AGENT=agent, REMOTE_ADDR="203.0.113.9")
    match = resolve(path)
    assert match.func(request, *match.args, **match.kwargs).status_code == 302


def _clicks_of(message) -> list[str]:
    html = email.message_from_bytes(message.data, policy=policy.default)
    body = html.get_body(("html",)).get_content()
    return re.findall(r'href="http://127\.0\.0\.1:8000(/c/[^"]+)"', body)


def _reference_steps(runs) -> dict[str, Counter]:
    """Each step's figures counted one row at a time, from the raw ledger and click log."""
    sends = {s.campaign_id: s.step for s in JourneySend.objects.filter(run__in=runs)}
    status = dict(Campaign.objects.filter(pk__in=sends).values_list("pk", "status"))
    found: dict[str, Counter] = {}
    for row in Recipient.objects.filter(campaign_id__in=sends):
        counter = found.setdefault(sends[row.campaign_id], Counter())
        if row.status == "sent":
            counter["sent"] += 1
        elif row.status == "pending" and status[row.campaign_id] == "cancelled":
            counter["cancelled"] += 1
        elif row.status == "pending":
            counter["to_send"] += 1
        elif row.status in ("skipped", "failed"):
            counter["refused"] += 1
    clickers = {
        (e.campaign_id, e.recipient_id)
        for e in Event.objects.filter(kind=Event.Kind.CLICKED, campaign_id__in=sends)
        if not e.machine
    }
    for campaign_id, _recipient in clickers:
        found[sends[campaign_id]]["clicked"] += 1
    return found


def test_step_figures_count_the_ledger_and_human_clicks_not_the_queue(world, journey):
    _template, runs = journey
    then = NOW - dt.timedelta(days=5)
    lyon = contacts(world.unit_a, 10)
    refused = contacts(world.unit_a, 1, email=False, start=90)  # no consent: refused at hand-off
    lille = contacts(world.unit_b, 6)
    engine.enroll(runs["lyon"], [p.pk for p in lyon + refused], now=then)
    engine.enroll(runs["lille"], [p.pk for p in lille], now=then)
    engine.advance_due(now=then)
    lyon_hello = JourneySend.objects.get(run=runs["lyon"], step="hello").campaign
    run_campaign(lyon_hello.pk)
    # Two people click (one twice), a scanner clicks a third message: two people clicked.
    messages = list(locmem.outbox)
    assert len(messages) >= 3
    _click(_clicks_of(messages[0])[0], BROWSER)
    _click(_clicks_of(messages[0])[0], BROWSER)
    _click(_clicks_of(messages[1])[0], BROWSER)
    _click(_clicks_of(messages[2])[0], SCANNER)
    from enseigne.delivery.events import buffer

    buffer.flush()
    # Lille's messages were only queued when Lille stopped its run: never sent.
    services.journey_run_stop(actor=world.manager_b, run=runs["lille"])
    # Lyon's people move on to the second message, queued and not sent yet.
    engine.advance_due(now=then + dt.timedelta(days=2, minutes=1))

    every = JourneyRun.objects.filter(pk__in=[r.pk for r in runs.values()])
    figures = selectors.step_figures(every)
    reference = _reference_steps(every)
    for step in ("hello", "again"):
        got = figures[step]
        assert Counter(
            {
                k: v
                for k, v in {
                    "sent": got.sent,
                    "to_send": got.to_send,
                    "refused": got.refused,
                    "cancelled": got.cancelled,
                    "clicked": got.clicked,
                }.items()
                if v
            }
        ) == reference.get(step, Counter()), step
    held = Enrollment.objects.filter(run=runs["lyon"], held_out=True).count()
    lille_held = Enrollment.objects.filter(run=runs["lille"], held_out=True).count()
    hello = figures["hello"]
    # Exact, by construction: the control group is never queued.
    assert hello.entered == 17
    assert hello.held_out == held + lille_held
    assert hello.queued == 17 - held - lille_held
    assert hello.sent == 11 - held - 1 + (1 if refused[0].pk in _held(runs["lyon"]) else 0)
    assert hello.refused == (0 if refused[0].pk in _held(runs["lyon"]) else 1)
    assert hello.cancelled == 6 - lille_held and hello.to_send == 0
    assert hello.clicked == 2
    assert figures["again"].to_send == 11 - held and figures["again"].sent == 0
    # One store's run alone.
    only_lille = selectors.step_figures(JourneyRun.objects.filter(pk=runs["lille"].pk))
    assert (only_lille["hello"].sent, only_lille["hello"].cancelled) == (0, 6 - lille_held)
    assert only_lille["hello"].stopped == 0 and only_lille["pause"].stopped == 6


def _held(run) -> set[int]:
    return set(
        Enrollment.objects.filter(run=run, held_out=True).values_list("contact_id", flat=True)
    )


def test_step_figures_take_five_queries_whatever_the_size(
    world, journey, django_assert_num_queries
):
    _template, runs = journey
    for size, code, unit in ((3, "lyon", world.unit_a), (30, "lille", world.unit_b)):
        people = contacts(unit, size)
        engine.enroll(runs[code], [p.pk for p in people], now=NOW)
        engine.advance_due(now=NOW)
        with django_assert_num_queries(5):
            selectors.step_figures(JourneyRun.objects.filter(template=runs[code].template))


def _entry(run, contact, *, held_out, entered_at) -> Enrollment:
    return Enrollment(
        run=run,
        version_id=run.version_id,
        contact=contact,
        unit_path=run.unit_path,
        occurrence=str(uuid.uuid4())[:8],
        step="out",
        status=Enrollment.Status.DONE,
        held_out=held_out,
        entered_at=entered_at,
        updated_at=entered_at,
    )


def _order(contact, unit, at, total) -> Order:
    return Order(
        unit=unit,
        unit_path=unit.path,
        external_id=str(uuid.uuid4()),
        contact=contact,
        occurred_at=at,
        total=Decimal(total),
        source=Order.Source.DEMO,
    )


def _history(world, run, unit, people, *, treated_buy, control_buy, seed=0):
    """Entries of ``people`` (every third one in the control group, 40 days ago), with
    orders inside and outside each one's window; returns the entries."""
    entries = []
    orders = []
    for i, person in enumerate(people):
        held_out = i % 3 == 0
        entered = NOW - dt.timedelta(days=40, hours=i % 7)
        entries.append(_entry(run, person, held_out=held_out, entered_at=entered))
        buys = (i + seed) % 10 < (control_buy if held_out else treated_buy)
        if buys:
            orders.append(_order(person, unit, entered + dt.timedelta(days=i % 29), 20 + i % 13))
        if i % 4 == 0:  # a return inside the window lowers the revenue, is not a purchase
            orders.append(_order(person, unit, entered + dt.timedelta(hours=1), "-5"))
        if i % 5 == 0:  # before entering, after the window, at the window's very end: not counted
            orders.append(_order(person, unit, entered - dt.timedelta(minutes=1), "99"))
            orders.append(_order(person, unit, entered + dt.timedelta(days=31), "99"))
            orders.append(_order(person, unit, entered + report.WINDOW, "99"))
        if i % 6 == 0:  # the moment of entry counts
            orders.append(_order(person, unit, entered, "7.50"))
    Enrollment.objects.bulk_create(entries)
    Order.objects.bulk_create(orders)
    return entries


def _seed(world, runs, *, treated_buy=5, **sizes: int) -> None:
    """``_history`` for new people of each store named (``lyon=240``)."""
    units = {"lyon": world.unit_a, "grenoble": world.unit_a2, "lille": world.unit_b}
    for code, size in sizes.items():
        people = contacts(units[code], size, start=1000)
        _history(world, runs[code], units[code], people, treated_buy=treated_buy, control_buy=2)


def _reference_lift(run) -> dict[bool, tuple[int, int, float, float]]:
    """(people, buyers, revenue, squares) by held_out, one entry and one order at a time."""
    orders = list(Order.objects.filter(unit_path=run.unit_path))
    out: dict[bool, list] = {True: [0, 0, 0.0, 0.0], False: [0, 0, 0.0, 0.0]}
    for entry in Enrollment.objects.filter(run=run):
        if entry.entered_at > NOW - dt.timedelta(days=30):
            continue
        mine = [
            o
            for o in orders
            if o.contact_id == entry.contact_id
            and entry.entered_at <= o.occurred_at < entry.entered_at + dt.timedelta(days=30)
        ]
        revenue = float(sum((o.total for o in mine), Decimal(0)))
        group = out[entry.held_out]
        group[0] += 1
        group[1] += any(o.total > 0 for o in mine)
        group[2] += revenue
        group[3] += revenue * revenue
    return {k: tuple(v) for k, v in out.items()}  # type: ignore[misc]


def _same_figures(lift, run) -> dict[bool, tuple[int, int, float, float]]:
    """Asserts ``lift`` is ``run``'s reference, and returns the reference."""
    reference = _reference_lift(run)
    for group, held_out in ((lift.treated, False), (lift.control, True)):
        people_n, buyers, revenue, squares = reference[held_out]
        assert (group.people, group.buyers) == (people_n, buyers)
        assert group.revenue == pytest.approx(revenue)
        assert group.squares == pytest.approx(squares)
    return reference


def test_the_lift_against_a_reference_counted_from_the_raw_rows(world, journey):
    _template, runs = journey
    run = runs["lyon"]
    people = contacts(world.unit_a, 240)
    _history(world, run, world.unit_a, people, treated_buy=4, control_buy=2)
    # Recent entries wait for their window; another store's orders never count here.
    recent = contacts(world.unit_a, 5, start=500)
    Enrollment.objects.bulk_create(
        [_entry(run, p, held_out=False, entered_at=NOW - dt.timedelta(days=3)) for p in recent]
    )
    Order.objects.bulk_create([_order(people[1], world.unit_b, NOW - dt.timedelta(days=39), "500")])
    lift = report.lifts(JourneyRun.objects.filter(pk=run.pk), now=NOW)[run.pk]
    reference = _same_figures(lift, run)
    # The same once the nightly pass has written the closed windows.
    report.close_windows(now=NOW)
    _same_figures(report.lifts(JourneyRun.objects.filter(pk=run.pk), now=NOW)[run.pk], run)
    assert (lift.treated.people, lift.control.people, lift.waiting) == (160, 80, 5)
    assert lift.entered == 245 and lift.enough
    difference = lift.rate_difference
    treated, control = reference[False], reference[True]
    assert difference.value == pytest.approx(treated[1] / treated[0] - control[1] / control[0])
    assert difference.low < difference.value < difference.high
    money = lift.revenue_difference
    assert money.value == pytest.approx(treated[2] / treated[0] - control[2] / control[0])


def test_the_lift_reads_the_written_windows_and_joins_only_the_others(world, journey):
    _template, runs = journey
    run, other = runs["lyon"], runs["lille"]
    people = contacts(world.unit_a, 90)
    _history(world, run, world.unit_a, people, treated_buy=6, control_buy=3)
    # The same person entered twice, 10 days apart: an order in both windows counts for both;
    # two purchases in one window make one buyer; one entry still waits (its orders too).
    twice = contacts(world.unit_a, 1, start=700)[0]
    Enrollment.objects.bulk_create(
        [
            _entry(run, twice, held_out=False, entered_at=NOW - dt.timedelta(days=50)),
            _entry(run, twice, held_out=True, entered_at=NOW - dt.timedelta(days=40)),
            _entry(run, twice, held_out=False, entered_at=NOW - dt.timedelta(days=2)),
        ]
    )
    Order.objects.bulk_create(
        [
            _order(twice, world.unit_a, NOW - dt.timedelta(days=35), "30"),
            _order(twice, world.unit_a, NOW - dt.timedelta(days=34), "12.50"),
            _order(twice, world.unit_a, NOW - dt.timedelta(days=1), "80"),
        ]
    )
    _seed(world, runs, lille=30)
    live = report.lifts(JourneyRun.objects.filter(pk=run.pk), now=NOW)[run.pk]
    _same_figures(live, run)
    # Closed 8 days ago or more: written; the windows closed in the last 7 days too.
    written = report.close_windows(now=NOW)
    assert written == 92 + 30 == EntryPurchases.objects.count()
    assert set(EntryPurchases.objects.values_list("run_id", flat=True)) == {run.pk, other.pk}
    stored = report.lifts(JourneyRun.objects.filter(pk=run.pk), now=NOW)[run.pk]
    _same_figures(stored, run)
    assert (stored.treated, stored.control, stored.waiting) == (
        live.treated,
        live.control,
        live.waiting,
    )
    assert stored.waiting == 1
    twice_rows = EntryPurchases.objects.filter(enrollment__contact=twice).order_by("held_out")
    assert [(r.purchases, r.revenue) for r in twice_rows] == [
        (2, Decimal("42.50")),
        (2, Decimal("42.50")),
    ]
    # The same pass again changes nothing; an entry never written is joined by the page.
    assert report.close_windows(now=NOW) == 0 and EntryPurchases.objects.count() == 122
    EntryPurchases.objects.filter(enrollment__contact=people[0]).delete()
    _same_figures(report.lifts(JourneyRun.objects.filter(pk=run.pk), now=NOW)[run.pk], run)


def test_an_order_recorded_late_counts_while_its_window_is_rewritten(world, journey):
    _template, runs = journey
    run = runs["lyon"]
    recent, old = contacts(world.unit_a, 2)
    Enrollment.objects.bulk_create(
        [
            _entry(run, recent, held_out=False, entered_at=NOW - dt.timedelta(days=33)),
            _entry(run, old, held_out=False, entered_at=NOW - dt.timedelta(days=45)),
        ]
    )
    report.close_windows(now=NOW)
    assert EntryPurchases.objects.filter(purchases__gt=0).count() == 0
    # Both sales are recorded today, in their windows: the one closed 3 days ago is written
    # again tonight; the one closed 15 days ago (past REFRESH) is not.
    Order.objects.bulk_create(
        [
            _order(recent, world.unit_a, NOW - dt.timedelta(days=32), "40"),
            _order(old, world.unit_a, NOW - dt.timedelta(days=44), "60"),
        ]
    )
    report.close_windows(now=NOW)
    rows = dict(EntryPurchases.objects.values_list("enrollment__contact", "revenue"))
    assert rows == {recent.pk: Decimal("40"), old.pk: Decimal("0")}
    lift = report.lifts(JourneyRun.objects.filter(pk=run.pk), now=NOW)[run.pk]
    assert (lift.treated.people, lift.treated.buyers, lift.treated.revenue) == (2, 1, 40.0)


@postgres_only
def test_row_level_security_keeps_other_stores_written_windows_out(world, journey):
    _template, runs = journey
    _seed(world, runs, lyon=12, lille=15)
    with db_scope(ALL):
        report.close_windows(now=NOW)
    with db_scope([world.unit_a.path]):
        assert set(EntryPurchases.objects.values_list("run_id", flat=True)) == {runs["lyon"].pk}
        seen = report.lifts(JourneyRun.objects.all(), now=NOW)
    assert set(seen) == {runs["lyon"].pk} and seen[runs["lyon"].pk].treated.people == 8


def test_the_intervals_match_published_values():
    # Newcombe (1998), "Interval estimation for the difference between independent
    # proportions", example (a): 56/70 − 48/80, method 10: 0.0524 to 0.3339.
    difference = rate_difference(Rate(56, 70), Rate(48, 80))
    assert difference.value == pytest.approx(0.2)
    assert (round(difference.low, 4), round(difference.high, 4)) == (0.0524, 0.3339)
    assert difference.verdict == "higher"
    # Example (h): 0/10 − 0/20: −0.1611 to 0.2775 — no difference measured.
    empty = rate_difference(Rate(0, 10), Rate(0, 20))
    assert (round(empty.low, 4), round(empty.high, 4)) == (-0.1611, 0.2775)
    assert empty.verdict == ""
    assert rate_difference(Rate(0, 0), Rate(1, 2)) is None
    # Means from sums: values 1, 2, 3 (mean 2, variance 1) against 0, 0, 0, 0.
    a, b = Mean(3, 6.0, 14.0), Mean(4, 0.0, 0.0)
    assert (a.value, a.variance, b.variance) == (2.0, 1.0, 0.0)
    money = mean_difference(a, b)
    assert money.value == 2.0
    assert money.high - money.value == pytest.approx(1.959963984540054 * (1 / 3) ** 0.5)
    assert mean_difference(Mean(1, 5.0, 25.0), b) is None


def test_hq_sees_each_store_and_the_total_with_too_few_people_said_so(client, world, journey):
    template, runs = journey
    _seed(world, runs, lyon=240, grenoble=30)
    login(client, world.hq_admin)
    page = client.get(f"/journeys/{template.public_id}/report/").content.decode()
    stores = page[page.index('id="report-stores"') :]
    stores = stores[: stores.index("</table>")]
    # By name, never ranked: Grenoble (too few), Lille (nobody), Lyon (told).
    assert [m for m in re.findall(r">(Grenoble|Lille|Lyon)</a>", stores)] == [
        "Grenoble",
        "Lille",
        "Lyon",
    ]
    assert stores.count("too few people to tell") == 2
    assert "points (95 % interval:" in stores
    total = report.lifts(JourneyRun.objects.filter(template=template), now=timezone.now())
    people = sum(lift.treated.people + lift.control.people for lift in total.values())
    assert people == 270
    assert 'id="lift-total"' in page and 'id="lift-network"' not in page
    assert "The network</h3>" in page
    assert "Newcombe" in page and "30 days" in page


def test_a_store_sees_its_run_and_the_networks_figure_beside_it(client, world, journey):
    template, runs = journey
    _seed(world, runs, lyon=60)
    _seed(world, runs, lille=240, treated_buy=6)
    login(client, world.manager_a)
    page = client.get(f"/journeys/{template.public_id}/report/").content.decode()
    assert "The run of Lyon." in page and "Lille" not in page
    assert 'id="lift-total"' in page and 'id="lift-network"' in page
    own = page[page.index('id="lift-total"') : page.index('id="lift-network"')]
    network = page[page.index('id="lift-network"') :]
    # Lyon: 40 with messages, 20 in the control group — too few to tell; the network is told.
    assert ">40<" in own and ">20<" in own and "too few people to tell" in own
    assert ">200<" in network and ">100<" in network
    assert "points (95 % interval:" in network.split("</table>")[0]
    # The region manager: Lyon and Grenoble (its stores), beside the network.
    login(client, world.region_manager)
    page = client.get(f"/journeys/{template.public_id}/report/").content.decode()
    assert "Your stores</h3>" in page and 'id="lift-network"' in page
    assert ">Lyon</a>" in page and ">Grenoble</a>" in page and "Lille" not in page


def test_another_stores_report_is_not_found(client, world):
    from tests.campaign_helpers import email_template

    hello = email_template(world, "Bienvenue")
    template = services.journey_template_create(
        actor=world.hq_admin, owner=world.root, name="Lyon seul", holdout_percent=10
    )
    services.journey_publish(actor=world.hq_admin, template=template, flow=flow(hello))
    services.journey_activate(
        actor=world.hq_admin, template=template, unit=world.unit_a, starts_on=NOW.date()
    )
    url = f"/journeys/{template.public_id}/report/"
    login(client, world.manager_b)
    assert client.get(url).status_code == 404
    assert client.get(f"/journeys/{uuid.uuid4()}/report/").status_code == 404
    assert client.post(url).status_code == 405
    login(client, world.staff_a)
    assert client.get(url).status_code == 200
    # A journey without a control group says so instead of a lift.
    bare = services.journey_template_create(actor=world.hq_admin, owner=world.root, name="Nu")
    login(client, world.hq_admin)
    page = client.get(f"/journeys/{bare.public_id}/report/").content.decode()
    assert 'id="report-no-control"' in page and "No version published yet." in page


def test_the_reports_queries_do_not_grow_with_stores_and_people(
    client, world, journey, django_assert_max_num_queries
):
    from django.test.utils import CaptureQueriesContext

    template, runs = journey
    engine.enroll(runs["lyon"], [p.pk for p in contacts(world.unit_a, 2, start=800)], now=NOW)
    # Both with messages whatever the draw: a ledger with rows from the start (without any,
    # the click log is not asked).
    Enrollment.objects.update(held_out=False)
    engine.advance_due(now=NOW)
    login(client, world.region_manager)
    url = f"/journeys/{template.public_id}/report/"
    client.get(url)  # warm the caches (session, access)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        return len(queries)

    small = count()
    _seed(world, runs, lyon=90, grenoble=30, lille=30)
    engine.enroll(runs["lyon"], [p.pk for p in contacts(world.unit_a, 5, start=700)], now=NOW)
    engine.advance_due(now=NOW)
    assert count() == small
    # The lift is one query for any number of runs (on PostgreSQL, JIT set off and back);
    # the report as a whole a fixed few.
    postgres = connection.vendor == "postgresql"
    with django_assert_max_num_queries(3 if postgres else 1):
        report.lifts(JourneyRun.objects.filter(template=template), now=NOW)
    # The user and its access (5), its runs (1), the lifts (1) and the network's (1), the
    # steps (5) and their templates' names (1); on PostgreSQL, the scopes set and restored
    # and their savepoints (8 more), JIT set off and back for each lift (4 more).
    assert small <= (26 if postgres else 14)


@postgres_only
def test_row_level_security_keeps_other_stores_rows_out_of_a_stores_figures(world, journey):
    _template, runs = journey
    _seed(world, runs, lyon=9, lille=12)
    every = JourneyRun.objects.all()
    with db_scope([world.unit_a.path]):
        # Even a read that forgets to filter sees Lyon's rows only.
        seen = report.lifts(every, now=NOW)
        assert set(seen) == {runs["lyon"].pk}
        assert seen[runs["lyon"].pk].treated.people + seen[runs["lyon"].pk].control.people == 9
        # The network's figure is sums over every store, read as the system.
        network = report.network_lift(runs["lyon"].template, now=NOW)
        assert network.treated.people + network.control.people == 21
        assert set(selectors.step_figures(every)) <= {"out"}


def test_the_calendar_shows_journeys_as_ongoing(client, world, journey):
    template, runs = journey
    engine.enroll(runs["lyon"], [p.pk for p in contacts(world.unit_a, 2)], now=NOW)
    engine.advance_due(now=NOW)
    services.journey_run_stop(actor=world.hq_admin, run=runs["grenoble"])
    end = "2099-01-07T00:00:00Z"
    login(client, world.manager_a)
    events = client.get("/journeys/calendar/", {"start": "2098-11-30T00:00:00Z", "end": end})
    (event,) = json.loads(events.content)
    assert event["title"] == "Welcome · Lyon (journey, ongoing)"
    assert event["start"] == runs["lyon"].starts_on.isoformat()
    assert event["end"] == "2099-01-08" and event["allDay"] and not event["editable"]
    assert event["classNames"] == ["journey-ongoing"]
    assert event["extendedProps"]["url"] == f"/journeys/runs/{runs['lyon'].public_id}/"
    # The journey's step campaigns are not campaigns of a day on the calendar.
    campaigns = client.get(
        "/campaigns/calendar/events/",
        {"start": (NOW - dt.timedelta(days=3)).isoformat(), "end": end},
    )
    assert json.loads(campaigns.content) == []
    # HQ: the journey once, its stores counted (Grenoble stopped: over), to its report.
    login(client, world.hq_admin)
    (event,) = json.loads(client.get("/journeys/calendar/", {"end": "garbage"}).content)
    assert event["title"] == "Welcome · 2 stores (journey, ongoing)"
    assert event["extendedProps"]["url"] == f"/journeys/{template.public_id}/report/"
    for hostile in ("9999-12-31T23:59:59Z", "2026-13-45T00:00:00", "", "'; DROP", "x" * 5000):
        answer = client.get("/journeys/calendar/", {"end": hostile, "start": hostile})
        assert answer.status_code == 200 and len(json.loads(answer.content)) == 1
    # Not started yet in the range asked: not shown.
    assert (
        json.loads(client.get("/journeys/calendar/", {"end": "2000-01-01T00:00:00Z"}).content) == []
    )
    page = client.get("/campaigns/calendar/").content.decode()
    assert 'data-journeys="/journeys/calendar/"' in page and "journey-ongoing" in page


def test_the_report_reads_in_french(client, world, journey):
    template, runs = journey
    _seed(world, runs, lyon=240)
    login(client, world.manager_a)
    page = client.get(f"/journeys/{template.public_id}/report/", **FR).content.decode()
    for words in (
        "Rapport : Welcome",
        "Étape par étape",
        "Groupe témoin",
        "Chiffre d’affaires par entrant",
        "intervalle à 95",
        "Ce qui est compté",
        "Le réseau",
    ):
        assert words in page, words
    run_page = client.get(f"/journeys/runs/{runs['lyon'].public_id}/", **FR).content.decode()
    assert "Le rapport du parcours" in run_page
    login(client, world.hq_admin)
    (event,) = json.loads(client.get("/journeys/calendar/", **FR).content)
    assert event["title"] == "Welcome · 3 magasins (parcours, en cours)"


@pytest.mark.browser
@pytest.mark.slow
def test_the_calendar_draws_a_journey_as_a_bar_that_goes_on(
    live_server,
    transactional_db,
    browser_page,  # noqa: F811
):
    """In Chromium: the store's journey is a striped bar from its start that runs past the
    month shown (no end), apart from the campaigns, and leads to the run's page."""
    from playwright.sync_api import expect

    from enseigne.lib.rowsecurity import ALL
    from tests.campaign_helpers import email_template, local_campaign
    from tests.factories import build_world

    world = build_world()
    with db_scope(ALL):
        local_campaign(world, send_at=timezone.now() + dt.timedelta(days=1))
        hello = email_template(world, "Bienvenue")
        template = services.journey_template_create(
            actor=world.hq_admin, owner=world.root, name="Anniversaire", holdout_percent=10
        )
        services.journey_publish(actor=world.hq_admin, template=template, flow=flow(hello))
        run = services.journey_activate(
            actor=world.hq_admin, template=template, unit=world.unit_a, starts_on=NOW.date()
        )
    page = browser_page
    _login(page, live_server, world.manager_a)
    page.goto(f"{live_server.url}/campaigns/calendar/")
    bar = page.locator(".fc-event.journey-ongoing").first
    expect(bar).to_contain_text("Anniversaire · Lyon")
    expect(page.locator(".fc-event.campaign-local")).to_have_count(1)
    # The last piece of the bar in the month shown does not end: the journey goes on.
    last = page.locator(".fc-event.journey-ongoing").last
    assert "fc-event-end" not in (last.get_attribute("class") or "")
    assert "fc-event-draggable" not in (bar.get_attribute("class") or "")
    bar.click()
    page.wait_for_url(f"**/journeys/runs/{run.public_id}/")
