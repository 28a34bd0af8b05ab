"""Data isolation and integrity (issue 18): row-level security on every table with a unit
column, append-only ledgers, order ids per unit, two writes in one transaction, CSV cells
that no spreadsheet evaluates."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from enseigne.brand.models import Template
from enseigne.campaigns.models import Campaign
from enseigne.contacts import services as contact_services
from enseigne.contacts.models import ConsentEvent, Contact, Suppression
from enseigne.lib.csvsafe import neutralise
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network import services as network_services
from enseigne.network.models import AuditEvent, Membership, Role, User
from enseigne.tracking.conversions import conversion_record
from enseigne.tracking.models import Conversion
from tests.campaign_helpers import email_template
from tests.exports import export_dicts
from tests.factories import ContactFactory

# Row-level security and table grants exist only on PostgreSQL (SQLite has neither; the
# selectors are the wall there). CI runs this file on both, so these tests run, as the app
# role, wherever DATABASE_URL is PostgreSQL; they are skipped only on SQLite.
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row-level security and grants exist only on PostgreSQL; CI runs this file on both",
)

# A column that ties a row to a node of the org tree.
UNIT_COLUMNS = ("unit_id", "unit_path", "owner_id", "owner_path", "node_id", "node_path")
UNIT_COLUMNS += ("shared_path", "target_node_id", "orgnode_id")
# Tables with such a column and no policy, each for a reason. Anything else fails.
WITHOUT_POLICY = {
    # The org tree and who holds which role where: read to compute a scope, before one exists.
    "network_membership": "read to build the scope itself",
    "network_capabilityrule": "HQ's permission tree, read to build the scope",
    "network_network": "the network's own settings (one row)",
    "network_orgnode_tags": "the org tree's tags, public to the whole network",
    "network_unitprofile": "units' public identity (name, address in every footer)",
    # HQ's rules for the whole network, one row per rule at the root.
    "brand_guardrails": "HQ's brand rules for the whole network",
    "campaigns_pressurerule": "HQ's pressure caps for the whole network",
    "campaigns_sendingpolicy": "HQ's sending policy for the whole network",
}


def _scalar(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _count(table, where="", params=()):
    return _scalar(f"SELECT count(*) FROM {table} {where}", params)  # noqa: S608


# -- Row-level security -------------------------------------------------------------------------


@postgres_only
def test_every_table_with_a_unit_column_has_forced_row_security_and_a_policy(db):
    assert _scalar("SELECT current_user") == settings.DATABASE_APP_ROLE
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname,
                   c.relrowsecurity AND c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
            FROM pg_class c
            WHERE c.relnamespace = current_schema()::regnamespace
              AND c.relkind IN ('r', 'p')
              AND EXISTS (
                SELECT 1 FROM pg_attribute a
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                  AND a.attname = ANY (%s)
              )
            ORDER BY c.relname
            """,
            [list(UNIT_COLUMNS)],
        )
        tables = cursor.fetchall()
    unprotected = {name for name, forced, policy in tables if not (forced and policy)}
    assert unprotected == set(WITHOUT_POLICY)
    protected = {name for name, forced, policy in tables if forced and policy}
    assert {"campaigns_campaign", "brand_template", "network_auditevent"} <= protected


def _national(world, template):
    return Campaign.objects.create(
        kind=Campaign.Kind.NATIONAL,
        channel="email",
        name="National",
        owner=world.root,
        owner_path=world.root.path,
        template=template,
        target_node=world.root,
    )


def _local(unit, template, name):
    return Campaign.objects.create(
        kind=Campaign.Kind.LOCAL,
        channel="email",
        name=name,
        owner=unit,
        owner_path=unit.path,
        template=template,
    )


@postgres_only
def test_campaigns_a_unit_sees_its_own_and_hqs_never_another_units(world):
    template = email_template(world)
    _national(world, template)
    _local(world.unit_a, template, "Lyon")
    _local(world.unit_b, template, "Lille")
    cases = (
        ([world.unit_a.path], ["Lyon", "National"]),
        ([world.unit_b.path], ["Lille", "National"]),
        ([world.region_a.path], ["Lyon", "National"]),
        ([world.root.path], ["Lille", "Lyon", "National"]),
        ([world.unit_a.path, world.unit_b.path], ["Lille", "Lyon", "National"]),
        ([], []),
    )
    for paths, expected in cases:
        with db_scope(paths), connection.cursor() as cursor:
            cursor.execute("SELECT name FROM campaigns_campaign ORDER BY name")
            assert [r[0] for r in cursor.fetchall()] == expected, paths
            # A raw filter on another unit's path finds nothing either.
            cursor.execute(
                "SELECT count(*) FROM campaigns_campaign WHERE owner_path = %s",
                [world.unit_b.path],
            )
            assert cursor.fetchone()[0] == (1 if "Lille" in expected else 0)


@postgres_only
def test_campaigns_a_unit_writes_only_its_own(world):
    template = email_template(world)
    national = _national(world, template)
    lille = _local(world.unit_b, template, "Lille")
    with db_scope([world.unit_a.path]):
        # HQ's campaign and another unit's: readable or not, never changed.
        assert Campaign.objects.filter(pk=national.pk).update(name="Hacked") == 0
        assert Campaign.objects.filter(pk=lille.pk).update(name="Hacked") == 0
        assert Campaign.objects.filter(pk=national.pk).delete()[0] == 0
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            _local(world.unit_b, template, "Planted in Lille")
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            _national(world, template)
        own = _local(world.unit_a, template, "Lyon")
        assert Campaign.objects.filter(pk=own.pk).update(name="Lyon 2") == 1
    assert sorted(Campaign.objects.values_list("name", flat=True)) == [
        "Lille",
        "Lyon 2",
        "National",
    ]


@postgres_only
def test_templates_hq_ones_reach_units_below_a_units_free_frame_stays_its_own(world):
    email_template(world, name="National")  # shared with the root
    Template.objects.create(channel="email", name="Sud-Est", shared_path=world.region_a.path)
    Template.objects.create(
        channel="email", name="Libre Lyon", shared_path=world.unit_a.path, is_free=True
    )
    Template.objects.create(
        channel="email", name="Libre Lille", shared_path=world.unit_b.path, is_free=True
    )
    cases = (
        ([world.unit_a.path], ["Libre Lyon", "National", "Sud-Est"]),
        ([world.unit_a2.path], ["National", "Sud-Est"]),
        ([world.unit_b.path], ["Libre Lille", "National"]),
        ([world.region_a.path], ["Libre Lyon", "National", "Sud-Est"]),
        ([world.root.path], ["Libre Lille", "Libre Lyon", "National", "Sud-Est"]),
        ([], []),
    )
    for paths, expected in cases:
        with db_scope(paths), connection.cursor() as cursor:
            cursor.execute("SELECT name FROM brand_template ORDER BY name")
            assert [r[0] for r in cursor.fetchall()] == expected, paths
    with db_scope([world.unit_a.path]):
        assert Template.objects.filter(name="National").update(name="Hacked") == 0
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            Template.objects.create(channel="email", name="x", shared_path=world.root.path)


@postgres_only
def test_audit_log_lines_are_seen_only_within_scope_and_brand_lines_only_by_hq(world):
    before = {
        path: _count("network_auditevent", "WHERE node_path = %s", [path])
        for path in (world.unit_a.path, world.unit_b.path, "")
    }
    for path in (world.unit_a.path, world.unit_b.path, ""):
        network_services.audit(
            actor=None, action="test.line", target_type="t", target_id="1", node_path=path
        )
    with db_scope([world.unit_a.path]):
        assert _count("network_auditevent", "WHERE node_path = %s", [world.unit_b.path]) == 0
        assert _count("network_auditevent", "WHERE node_path = ''") == 0
        assert (
            _count("network_auditevent", "WHERE node_path = %s", [world.unit_a.path])
            == before[world.unit_a.path] + 1
        )
        # A unit writes its own lines, not another unit's nor the brand's.
        network_services.audit(
            actor=world.manager_a,
            action="x",
            target_type="t",
            target_id="2",
            node_path=world.unit_a.path,
        )
        for path in (world.unit_b.path, ""):
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                network_services.audit(
                    actor=world.manager_a,
                    action="x",
                    target_type="t",
                    target_id="3",
                    node_path=path,
                )
    with db_scope([world.root.path]):
        assert _count("network_auditevent", "WHERE node_path = ''") == before[""] + 1
        assert _count("network_auditevent", "WHERE node_path = %s", [world.unit_b.path]) == (
            before[world.unit_b.path] + 1
        )
        # HQ's user and role changes keep being written and read (node_path '').
        user = network_services.user_create(actor=world.hq_admin, email="new@example.com")
        assert (
            AuditEvent.objects.filter(action="user.create", target_id=str(user.public_id)).count()
            == 1
        )
    with db_scope([world.region_a.path]):
        assert _count("network_auditevent", "WHERE node_path = ''") == 0


# -- Append-only ledgers --------------------------------------------------------------------------


@postgres_only
@pytest.mark.parametrize("table", ["contacts_consentevent", "network_auditevent"])
def test_the_app_role_may_insert_and_read_the_ledgers_never_update_or_delete(table, db):
    role = settings.DATABASE_APP_ROLE
    privileges = {
        p: _scalar("SELECT has_table_privilege(%s, %s, %s)", [role, table, p])
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE")
    }
    assert privileges == {"SELECT": True, "INSERT": True, "UPDATE": False, "DELETE": False}


@postgres_only
def test_consent_events_and_audit_lines_cannot_be_edited_or_deleted(world):
    contact = ContactFactory(unit=world.unit_a, email="a@example.com")
    contact_services.consent_record(
        actor=world.staff_a, contact=contact, channel="email", status="granted", source="staff"
    )
    attempts = (
        "UPDATE contacts_consentevent SET status = 'granted'",
        "DELETE FROM contacts_consentevent",
        "UPDATE network_auditevent SET action = 'nothing'",
        "DELETE FROM network_auditevent",
    )
    for statement in attempts:
        with (
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)
    # Through the ORM too, whatever the scope.
    for paths in (ALL, [world.unit_a.path]):
        with db_scope(paths):
            with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                ConsentEvent.objects.filter(contact=contact).update(status="withdrawn")
            with pytest.raises(DatabaseError, match="permission denied"), transaction.atomic():
                AuditEvent.objects.all().delete()
    assert ConsentEvent.objects.filter(contact=contact).count() == 1


@postgres_only
def test_a_contact_cannot_be_deleted_around_the_erasure_path(world):
    contact = ContactFactory(unit=world.unit_a, email="a@example.com")
    contact_services.consent_record(
        actor=world.staff_a, contact=contact, channel="email", status="granted", source="staff"
    )
    # Deleting the contact alone would orphan its ledger: the foreign key refuses it.
    with pytest.raises(DatabaseError), transaction.atomic():
        Contact.objects.filter(pk=contact.pk).delete()
        connection.check_constraints()
    assert ConsentEvent.objects.filter(contact=contact).count() == 1


@postgres_only
def test_the_erasure_function_keeps_the_callers_scope(world):
    contact = ContactFactory(unit=world.unit_a, email="a@example.com")
    contact_services.consent_record(
        actor=world.staff_a, contact=contact, channel="email", status="granted", source="staff"
    )
    for paths in ([world.unit_b.path], [world.unit_a2.path], []):
        with db_scope(paths):
            assert _scalar("SELECT enseigne_erase_consent_events(%s)", [contact.pk]) == 0
    assert ConsentEvent.objects.filter(contact=contact).count() == 1
    # The function is not callable by PUBLIC, only by the app role.
    assert not _scalar(
        "SELECT bool_or(has_function_privilege(r.rolname, 'enseigne_erase_consent_events(bigint)', "
        "'EXECUTE')) FROM pg_roles r WHERE r.rolname = 'pg_monitor'"
    )


def test_erasure_still_removes_the_contact_and_its_consent_events(world, client):
    contact = ContactFactory(unit=world.unit_a, email="gone@example.com", phone="+33612345678")
    other = ContactFactory(unit=world.unit_a, email="stays@example.com")
    for person in (contact, other):
        for status in ("granted", "withdrawn"):
            contact_services.consent_record(
                actor=world.staff_a, contact=person, channel="email", status=status, source="staff"
            )
    client.force_login(world.manager_a)
    response = client.post(f"/contacts/{contact.public_id}/erase/")
    assert response.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert ConsentEvent.objects.filter(contact_id=contact.pk).count() == 0
    assert ConsentEvent.objects.filter(contact=other).count() == 2
    assert (
        Suppression.objects.filter(
            unit_path=world.unit_a.path, reason=Suppression.Reason.ERASURE
        ).count()
        == 2
    )
    assert AuditEvent.objects.filter(action="contact.erase").count() == 1


def test_erasure_through_the_api_too(world, client):
    from enseigne.network.tokens import token_create

    contact = ContactFactory(unit=world.unit_a, email="gone@example.com")
    contact_services.consent_record(
        actor=world.staff_a, contact=contact, channel="email", status="granted", source="staff"
    )
    _, key = token_create(user=world.manager_a)
    response = client.delete(
        f"/api/v1/contacts/{contact.public_id}", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code in (200, 204)
    assert (Contact.objects.filter(pk=contact.pk).count(), ConsentEvent.objects.count()) == (0, 0)


# -- Order ids per unit ------------------------------------------------------------------------------


def _record(world, user, unit, order_id, amount="10.00"):
    return conversion_record(actor=user, unit=unit, order_id=order_id, amount=amount)


def test_another_unit_cannot_block_a_units_order_id(world):
    planted, created = _record(world, world.manager_b, world.unit_b, "LYON-2026-0001", "1.00")
    assert created
    real, created = _record(world, world.manager_a, world.unit_a, "LYON-2026-0001", "249.90")
    assert created and real.pk != planted.pk
    assert (real.unit_id, str(real.amount)) == (world.unit_a.pk, "249.90")
    # Each unit's repeat is its own duplicate, answered with its own first record.
    again, created = _record(world, world.manager_a, world.unit_a, "LYON-2026-0001", "5.00")
    assert (created, again.pk) == (False, real.pk)
    again, created = _record(world, world.manager_b, world.unit_b, "LYON-2026-0001", "5.00")
    assert (created, again.pk) == (False, planted.pk)
    assert Conversion.objects.filter(order_id="LYON-2026-0001").count() == 2


def test_hq_recording_for_one_unit_never_gets_anothers_order(world):
    lyon, _ = _record(world, world.manager_a, world.unit_a, "A-1")
    grenoble, created = _record(world, world.hq_admin, world.unit_a2, "A-1", "3.00")
    assert created and grenoble.pk != lyon.pk and grenoble.unit_id == world.unit_a2.pk


@pytest.mark.parametrize("order_id", ["LYON-2026-0001", " LYON-2026-0001 ", "x" * 100, "Ö-1"])
def test_the_api_answers_without_revealing_other_units_orders(world, client, order_id):
    from enseigne.network.tokens import token_create

    def post(user, unit, amount):
        _, key = token_create(user=user)
        return client.post(
            "/api/v1/conversions",
            {"order_id": order_id, "unit": str(unit.public_id), "amount": amount},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    first = post(world.manager_b, world.unit_b, "1.00")
    assert first.status_code == 201
    response = post(world.manager_a, world.unit_a, "80.00")
    # Lyon's sale is recorded as Lyon's: neither refused nor answered with Lille's order.
    assert response.status_code == 201
    body = response.json()
    assert (body["unit"], body["amount"], body["duplicate"]) == (
        str(world.unit_a.public_id),
        "80.00",
        False,
    )
    assert post(world.manager_a, world.unit_a, "80.00").json()["duplicate"] is True


# -- Two writes, one transaction -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("role_key", "node_attr"),
    [
        ("unit_manager", "region_a"),  # a unit role at a region
        ("unit_staff", "root"),  # a unit role at HQ
        ("region_manager", "unit_a"),  # a region role at a unit
        ("hq_admin", "region_b"),  # an HQ role at a region
    ],
)
def test_adding_a_user_with_a_role_that_does_not_fit_the_node_creates_nothing(
    world, client, role_key, node_attr
):
    node = getattr(world, node_attr)
    role = Role.objects.get(key=role_key)
    users_before, audit_before = User.objects.count(), AuditEvent.objects.count()
    client.force_login(world.hq_admin)
    response = client.post(
        "/hq/users/",
        {
            "email": "nouveau@example.com",
            "first_name": "Nina",
            "last_name": "Roux",
            "password": "a-long-enough-password-2026",
            "node": str(node.public_id),
            "role": str(role.pk),
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors
    assert not User.objects.filter(email="nouveau@example.com").exists()
    assert (User.objects.count(), AuditEvent.objects.count()) == (users_before, audit_before)


def test_the_user_service_refuses_both_writes_together(world):
    with pytest.raises(ValidationError):
        network_services.user_create_with_membership(
            actor=world.hq_admin,
            email="nouveau@example.com",
            node=world.region_a,
            role=Role.objects.get(key="unit_manager"),
        )
    assert not User.objects.filter(email="nouveau@example.com").exists()
    user = network_services.user_create_with_membership(
        actor=world.hq_admin,
        email="nouveau@example.com",
        node=world.unit_a,
        role=Role.objects.get(key="unit_manager"),
    )
    assert Membership.objects.filter(user=user, node=world.unit_a).count() == 1


class Boom(Exception):
    pass


def _boom(*args, **kwargs):
    raise Boom


def test_open_tracking_choice_and_its_ledger_event_are_written_together(world):
    contact = ContactFactory(unit=world.unit_a, email="a@example.com")
    with mock.patch.object(Contact.objects, "filter", side_effect=_boom), pytest.raises(Boom):
        contact_services.open_tracking_record(contact=contact, granted=True, source="form")
    assert ConsentEvent.objects.filter(contact=contact).count() == 0


def test_tags_are_replaced_all_or_nothing(world):
    from enseigne.contacts.models import ContactTagging

    contact = ContactFactory(unit=world.unit_a, email="a@example.com")
    contact_services.contact_set_tags(contact=contact, tags=["vip", "lyon"])
    with (
        mock.patch.object(ContactTagging.objects, "bulk_create", side_effect=_boom),
        pytest.raises(Boom),
    ):
        contact_services.contact_set_tags(contact=contact, tags=["new"])
    assert ContactTagging.objects.filter(contact=contact).count() == 2


def test_guardrails_change_and_its_audit_line_are_written_together(world):
    from enseigne.brand import services as brand_services
    from enseigne.brand.models import Guardrails

    with mock.patch.object(brand_services, "audit", side_effect=_boom), pytest.raises(Boom):
        brand_services.guardrails_update(
            actor=world.hq_admin, node=world.root, restricted_patterns=["gratuit"]
        )
    assert not Guardrails.objects.filter(node=world.root, restricted_patterns=["gratuit"]).exists()


def test_a_late_campaigns_flag_and_its_audit_line_are_written_together(world):
    from enseigne.campaigns import services as campaign_services
    from tests.campaign_helpers import local_campaign

    campaign = local_campaign(world)
    campaign_services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    send_at = timezone.now() + dt.timedelta(minutes=1)
    campaign_services.campaign_schedule(actor=world.hq_admin, campaign=campaign, send_at=send_at)
    campaign.refresh_from_db()
    with (
        mock.patch.object(campaign_services, "audit", side_effect=_boom),
        mock.patch.object(campaign_services, "content_problems", return_value=[]),
        pytest.raises(Boom),
    ):
        campaign_services.campaign_wake(campaign=campaign, now=send_at + dt.timedelta(days=2))
    campaign.refresh_from_db()
    assert campaign.needs_confirmation is False


def test_a_complaint_pause_and_its_audit_line_are_written_together(world):
    from enseigne.campaigns import pausing
    from enseigne.campaigns import selectors as campaign_selectors
    from enseigne.campaigns import services as campaign_services
    from tests.campaign_helpers import local_campaign

    campaign = local_campaign(world)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    with (
        mock.patch.object(campaign_selectors, "complaint_counts", return_value=(500, 100_000)),
        mock.patch.object(pausing, "audit", side_effect=_boom),
        pytest.raises(Boom),
    ):
        campaign_services.complaints_check(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_an_asset_and_its_audit_line_are_written_together(world):
    from enseigne.brand import asset_services
    from enseigne.brand.models import Asset

    with mock.patch.object(asset_services, "audit", side_effect=_boom), pytest.raises(Boom):
        asset_services.asset_create(
            actor=world.hq_admin,
            node=world.root,
            own=False,
            kind="text",
            name="Bonjour",
            data={"text": "Bonjour"},
        )
    assert Asset.objects.count() == 0


# -- CSV exports ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "＝1+1",  # fullwidth equals
        "＋33 6 12 34 56 78",  # fullwidth plus
        "－2+3",  # fullwidth hyphen-minus
        "＠SUM(A1:A2)",  # fullwidth commercial at
        "﹦1+1",  # small equals
        "﹢1",  # small plus
        "\u200b=1+1",  # zero-width space
        "\u200c+1",  # zero-width non-joiner
        "\u200d-1",  # zero-width joiner
        "\u2060@A1",  # word joiner
        '\ufeff=HYPERLINK("http://x")',  # byte-order mark
        "\u200e=1",  # left-to-right mark
        "\u200f=1",  # right-to-left mark
        "\u202a=1",  # left-to-right embedding
        "\u202e=1",  # right-to-left override
        "\u2066=1",  # left-to-right isolate
        "\u2067＝1",  # right-to-left isolate then fullwidth
        "\u200b\u200b\u202e＋1",  # several
        "\u200bBonjour",  # invisible start, however harmless it looks
        " =1+1",  # a space first
        "\n=1+1",  # a line break first
        "\u2212 1",  # the minus sign
    ],
)
def test_csv_cells_with_disguised_formula_starts_are_neutralised(value):
    assert neutralise(value) == "'" + value


@pytest.mark.parametrize(
    "value",
    ["Jean", "Île-de-France", "+33612345678", "+33 6 12 34 56 78", "Zoë", "12", "a=b", "x＠y"],
)
def test_csv_cells_that_are_plain_text_stay_as_they_are(value):
    assert neutralise(value) == value


def test_contact_export_neutralises_fullwidth_and_hidden_starts(world, client):
    ContactFactory(unit=world.unit_a, first_name="＝cmd|'/c calc'!A1", last_name="\u202e=1+1")
    client.force_login(world.manager_a)
    response = client.get("/contacts/export.csv")
    rows = export_dicts(response)
    assert (rows[0]["First name"], rows[0]["Last name"]) == (
        "'＝cmd|'/c calc'!A1",
        "'\u202e=1+1",
    )


# -- Workers see what they work on -----------------------------------------------------------------


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_a_fresh_connection_sends_a_campaign_that_rls_now_covers():
    """A Huey worker's connection has no scope of its own; the pipeline reads the campaign's
    status outside its scoped blocks too. Run the task on a new thread (a new connection,
    like a worker's) and it must finish, not spin on a campaign it cannot see."""
    import threading

    from enseigne.campaigns import services as campaign_services
    from enseigne.campaigns.models import Recipient
    from enseigne.delivery.tasks import send_campaign
    from tests.campaign_helpers import contacts, local_campaign
    from tests.factories import build_world

    world = build_world()
    with db_scope(ALL):
        contacts(world.unit_a, 3)
        campaign = local_campaign(world)
        campaign_services.campaign_submit(actor=world.hq_admin, campaign=campaign)
    with db_scope([world.unit_a.path]), mock.patch("django.db.transaction.on_commit"):
        campaign_services.campaign_launch(actor=world.manager_a, campaign=campaign)
    done = []

    def worker():
        try:
            assert _scalar("SELECT coalesce(current_setting('enseigne.scope', true), '')") == ""
            send_campaign(campaign.pk)
            done.append(_scalar("SELECT coalesce(current_setting('enseigne.scope', true), '')"))
        finally:
            connection.close()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the worker never finished the campaign"
    assert done == [""]  # the task's system scope ends with the task
    with db_scope(ALL):
        assert (
            sorted(Recipient.objects.filter(campaign=campaign).values_list("status", flat=True))
            == ["sent"] * 3
        )
        assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.FINISHED
