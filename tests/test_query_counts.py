"""The main list pages read a fixed number of queries, whatever the number of rows (no N+1).

Each test loads a page as the persona who works on it with a few rows, adds many more
rows of the same shapes, loads it again, and asserts the same exact count both times.
On PostgreSQL each request also sets its row-level-security scope: a savepoint, the
``SET``, the restore and the release (4 queries more).
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enseigne.analytics import rollups
from enseigne.analytics.models import DailyStat
from enseigne.brand.asset_services import asset_create
from enseigne.brand.services import local_version_save
from enseigne.campaigns import services as campaigns
from enseigne.campaigns.models import Campaign
from enseigne.contacts.models import ContactImport
from enseigne.contacts.services import segment_save
from enseigne.network import services as network
from enseigne.network.capabilities import Capability
from enseigne.network.models import Role
from tests.campaign_helpers import EVERYONE, contacts, email_template, sms_template
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

FEW, MANY = 3, 30
# Every logged-in page: the session, the user, their memberships (with node and role), the
# roles' grants and HQ's capability rules; on PostgreSQL also the scope's 4 statements.
REQUEST = 5 + (4 if connection.vendor == "postgresql" else 0)
# A read for the whole network inside a page (aggregates only): the same 4 statements.
NETWORK_SCOPE = 4 if connection.vendor == "postgresql" else 0
_serial = itertools.count()


@pytest.fixture
def world(world):
    """The personas, plus an HQ rule for tagged units: with it every permission check on a
    unit reads the unit's tags, which a page listing many units' objects must prefetch."""
    network.capability_rule_add(
        actor=world.hq_admin,
        node=world.root,
        capability=Capability.APPROVE_CAMPAIGNS,
        effect="allow",
        unit_tag="pilot",
    )
    return world


def queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured.captured_queries)


def assert_queries(client, url: str, add_rows, expected: int) -> None:
    """``url`` reads ``expected`` queries with FEW rows of each kind, and with MANY."""
    add_rows(FEW)
    few = queries(client, url)
    add_rows(MANY - FEW)
    many = queries(client, url)
    assert (few, many) == (expected, expected)


# Campaigns -----------------------------------------------------------------------------


def _local_campaigns(world, unit, template, count, *, submit=False):
    local = local_version_save(
        actor=world.hq_admin, unit=unit, template=template, values={"headline": "Soldes"}
    )
    segment = segment_save(actor=None, owner=unit, name=f"Tous {next(_serial)}", rules=EVERYONE)
    actor = world.manager_a if unit == world.unit_a else world.hq_admin
    for _ in range(count):
        campaign = campaigns.campaign_create_local(
            actor=actor,
            unit=unit,
            channel="email",
            name=f"Local {next(_serial)}",
            template=template,
            local_version=local,
            segment=segment,
        )
        if submit:
            campaigns.campaign_submit(actor=actor, campaign=campaign)


def _national_campaigns(world, template, count):
    """Scheduled national campaigns: each announced to every unit (relays)."""
    send_at = timezone.now() + dt.timedelta(days=10)
    for _ in range(count):
        campaign = campaigns.campaign_create_national(
            actor=world.hq_admin,
            channel="email",
            name=f"National {next(_serial)}",
            template=template,
            relay_deadline=send_at - dt.timedelta(days=2),
        )
        campaigns.campaign_submit(actor=world.hq_admin, campaign=campaign)
        campaigns.campaign_schedule(actor=world.hq_admin, campaign=campaign, send_at=send_at)


@pytest.mark.parametrize(
    "persona, expected",
    [
        # campaigns to approve, their units' tags, the approval count, pending relays, the page
        ("hq_admin", REQUEST + 5),
        # pending relays, the page (the store manager approves nothing: no inbox query)
        ("manager_a", REQUEST + 2),
    ],
)
def test_campaign_list(world, client, persona, expected):
    template = email_template(world)

    def add(n):
        _local_campaigns(world, world.unit_a, template, n)
        _local_campaigns(world, world.unit_a, template, n, submit=True)
        _national_campaigns(world, template, n)

    client.force_login(world.persona(persona))
    assert_queries(client, "/campaigns/", add, expected)


@pytest.mark.parametrize("persona", ["hq_admin", "region_manager"])
def test_approvals_inbox(world, client, persona):
    template = email_template(world)

    def add(n):
        _local_campaigns(world, world.unit_a, template, n, submit=True)

    client.force_login(world.persona(persona))
    # submitted campaigns, their units' tags (for the tag rule), the inbox
    assert_queries(client, "/campaigns/approvals/", add, REQUEST + 3)


# Contacts and segments -----------------------------------------------------------------


@pytest.mark.parametrize("persona", ["hq_admin", "manager_a"])
def test_contact_list(world, client, persona):
    def add(n):
        for unit in (world.unit_a, world.unit_b):
            contacts(unit, n, start=next(_serial) * 100, sms=True)

    client.force_login(world.persona(persona))
    # the count, the units filter, the units the user may add to, the page
    assert_queries(client, "/contacts/", add, REQUEST + 4)


@pytest.mark.parametrize("persona", ["hq_admin", "manager_a"])
def test_segment_list(world, client, persona):
    ContactFactory.create_batch(5, unit=world.unit_a)
    shapes = [
        EVERYONE,
        {"match": "all", "rules": [{"field": "consent_email", "op": "is_valid"}]},
        {"match": "any", "rules": [{"field": "tag", "op": "has", "value": "vip"}]},
    ]

    def add(n):
        for i in range(n):
            segment_save(
                actor=world.hq_admin,
                owner=world.unit_a if i % 2 else world.region_a,
                name=f"Segment {next(_serial)}",
                rules=shapes[i % len(shapes)],
            )

    client.force_login(world.persona(persona))
    # the segments, HQ's custom attributes, every segment's size in one COUNT … FILTER
    assert_queries(client, "/segments/", add, REQUEST + 3)


# Brand ---------------------------------------------------------------------------------


def test_template_list(world, client):
    def add(n):
        for i in range(n):
            template = (
                email_template(world, name=f"E {next(_serial)}")
                if i % 2
                else sms_template(world, name=f"S {next(_serial)}")
            )
            local_version_save(
                actor=world.hq_admin,
                unit=world.unit_a,
                template=template,
                values={"headline": "Soldes"} if i % 2 else {},
            )

    client.force_login(world.hq_admin)
    # the guardrails' node, the templates, the local versions
    assert_queries(client, "/brand/templates/", add, REQUEST + 3)


@pytest.mark.parametrize("persona", ["hq_admin", "manager_a"])
def test_asset_library(world, client, persona):
    def add(n):
        for i in range(n):
            asset_create(
                actor=world.hq_admin,
                node=world.unit_a if i % 2 else world.root,
                own=bool(i % 2),
                kind="offer",
                name=f"Offre {next(_serial)}",
                data={"title": "-20 %", "url": "https://example.com/offre"},
                folder=f"dossier {i % 3}",
                tags=["soldes", f"t{i}"],
            )

    client.force_login(world.persona(persona))
    # the upload form's owners (2), the count, the page, its uses by HQ's and by local
    # versions, the folders
    assert_queries(client, "/brand/assets/", add, REQUEST + 7)


# Network -------------------------------------------------------------------------------


def test_users(world, client):
    roles = list(Role.objects.filter(level=Role.Level.UNIT))

    def add(n):
        for i in range(n):
            serial = next(_serial)
            user = network.user_create(actor=None, email=f"user{serial}@example.com")
            for node in (world.unit_a, world.unit_b)[: 1 + i % 2]:
                network.membership_grant(
                    actor=None, user=user, node=node, role=roles[i % len(roles)]
                )

    client.force_login(world.hq_admin)
    # the users, their memberships, those memberships' nodes and roles, the form's nodes
    # and roles
    assert_queries(client, "/hq/users/", add, REQUEST + 6)


@pytest.mark.parametrize("kept", [False, True])
def test_hq_home(world, client, kept):
    def add(n):
        for i in range(n):
            serial = next(_serial)
            unit = network.node_create(
                actor=None,
                parent=world.region_a if i % 2 else world.region_b,
                kind="unit",
                name=f"Unit {serial}",
                code=f"unit-{serial}",
                profile={"city": "Nantes"},
                tags=["pilot", f"tag-{i % 4}"],
            )
            ContactFactory.create_batch(2, unit=unit)
        if kept:  # the worker's pass counted every base
            rollups.refresh()

    client.force_login(world.hq_admin)
    # the tree, its tags, when the rollups last counted, the kept bases (none before a pass:
    # then contacts per unit, live), the network, the form's parent nodes, the base in
    # people (issue 20: one row the pass wrote, whatever the network's size)
    assert_queries(client, "/hq/", add, REQUEST + 7)


def test_unit_home(world, client):
    def add(n):
        contacts(world.unit_a, n, start=next(_serial) * 100, sms=True)
        for _ in range(n):
            segment_save(
                actor=None, owner=world.unit_a, name=f"Segment {next(_serial)}", rules=EVERYONE
            )

    client.force_login(world.manager_a)
    # the unit, its tags, the contact figures, the last imports, the last segments
    assert_queries(client, f"/units/{world.unit_a.public_id}/", add, REQUEST + 5)


# Imports, sending rules, results, gallery ------------------------------------------------


def test_import_list(world, client):
    def add(n):
        for i in range(n):
            ContactImport.objects.create(
                unit=world.unit_a if i % 2 else world.unit_b,
                unit_path=(world.unit_a if i % 2 else world.unit_b).path,
                created_by=world.hq_admin,
                file_name=f"file-{next(_serial)}.csv",
                file_path="imports/x.csv",
                file_sha256="0" * 64,
                columns=["email", "first_name"],
                status=ContactImport.Status.DONE,
            )

    client.force_login(world.hq_admin)
    # the units the user may import into, the last imports with their units and authors
    assert_queries(client, "/imports/", add, REQUEST + 2)


def test_sending_rules(world, client):
    template = email_template(world)
    today = timezone.localdate()

    def add(n):
        units = []
        for _ in range(n):
            serial = next(_serial)
            units.append(
                network.node_create(
                    actor=None,
                    parent=world.region_a,
                    kind="unit",
                    name=f"U{serial}",
                    code=f"u{serial}",
                )
            )
        for unit in units:
            campaigns.budget_set(
                actor=world.hq_admin,
                unit=unit,
                starts_on=today.replace(day=1),
                ends_on=today.replace(day=28),
                amount=100,
            )
        _local_campaigns(world, world.unit_a, template, 1)

    client.force_login(world.hq_admin)
    client.get("/campaigns/rules/")  # the first visit writes the network's default policy
    # the org tree five times (the user's top node, the network's root, the budget form's
    # units), the policy, the caps, the budgets and what each spent (one statement for all)
    assert_queries(client, "/campaigns/rules/", add, REQUEST + 10)


def _daily(unit, campaign_id, *, sent=300, clickers=30, days=3):
    today = timezone.localdate()
    DailyStat.objects.bulk_create(
        DailyStat(
            day=today - dt.timedelta(days=d),
            campaign_id=campaign_id,
            unit_id=unit.pk,
            unit_path=unit.path,
            channel="email",
            sent=sent,
            delivered=sent,
            clickers=clickers,
            clicks=clickers,
        )
        for d in range(days)
    )


def test_network_results(world, client):
    def add(n):
        for i in range(n):
            serial = next(_serial)
            unit = network.node_create(
                actor=None,
                parent=world.region_a if i % 2 else world.region_b,
                kind="unit",
                name=f"Unit {serial}",
                code=f"unit-{serial}",
            )
            _daily(unit, 10_000 + serial)
        rollups.refresh()

    client.force_login(world.hq_admin)
    # the units in scope, the rollups per unit and week, the latest bases, the national
    # campaigns' relays, when the rollups last ran, the stores' own orders (one grouped
    # query), the scope's nodes for the page's title; the references read network-wide
    assert_queries(client, "/results/", add, REQUEST + 8 + NETWORK_SCOPE)


def test_gallery(world, client):
    template = email_template(world)

    def add(n):
        before = set(Campaign.objects.values_list("pk", flat=True))
        _local_campaigns(world, world.unit_a, template, n)
        fresh = Campaign.objects.exclude(pk__in=before)
        Campaign.objects.filter(pk__in=fresh).update(status=Campaign.Status.FINISHED)
        for pk in fresh.values_list("pk", flat=True):
            _daily(world.unit_a, pk)

    client.force_login(world.manager_a)
    # the best campaigns' rollups, their campaigns with owner, template and local version,
    # the units the user may copy into, the network's personas (the filter); the ranking
    # reads network-wide
    assert_queries(client, "/gallery/", add, REQUEST + 4 + NETWORK_SCOPE)
