"""API tokens carry exactly their user's scope; PostgreSQL RLS is a second wall."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from enseigne.contacts.models import Contact
from enseigne.lib.rowsecurity import db_scope
from enseigne.network.tokens import token_create
from tests.factories import ContactFactory


def bearer(user):
    _, key = token_create(user=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_token_scope_lists_only_own_unit(world, client):
    ContactFactory.create_batch(2, unit=world.unit_a)
    ContactFactory.create_batch(3, unit=world.unit_b)
    data = client.get("/api/v1/contacts", **bearer(world.manager_b)).json()
    assert data["count"] == 3
    assert {c["unit"] for c in data["results"]} == {str(world.unit_b.public_id)}
    units = client.get("/api/v1/units", **bearer(world.region_manager)).json()
    assert sorted(u["code"] for u in units["results"]) == ["grenoble", "lyon"]


def test_invalid_token_is_401_and_session_is_not_enough_for_the_api(world, client):
    assert client.get("/api/v1/contacts", HTTP_AUTHORIZATION="Bearer ens_nope").status_code == 401
    client.force_login(world.manager_a)
    assert client.get("/api/v1/contacts").status_code == 401


def test_api_create_validation_names_the_field(world, client):
    response = client.post(
        "/api/v1/contacts",
        {"unit": str(world.unit_a.public_id), "email": "x@", "phone": "1"},
        content_type="application/json",
        **bearer(world.manager_a),
    )
    assert response.status_code == 422
    assert sorted(response.json()["error"]["fields"]) == ["email", "phone"]
    assert Contact.objects.count() == 0


def test_api_patch_and_consent(world, client):
    contact = ContactFactory(unit=world.unit_a, email="c@example.com")
    headers = bearer(world.staff_a)
    response = client.patch(
        f"/api/v1/contacts/{contact.public_id}",
        {"first_name": "Camille", "tags": ["vip"]},
        content_type="application/json",
        **headers,
    )
    assert (response.status_code, response.json()["first_name"], response.json()["tags"]) == (
        200,
        "Camille",
        ["vip"],
    )
    response = client.post(
        f"/api/v1/contacts/{contact.public_id}/consent-events",
        {"channel": "email", "status": "granted", "wording_version": "app-v2"},
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 201
    contact.refresh_from_db()
    assert contact.email_consent == "granted"
    assert contact.consent_events.get().source_ref == f"api-user:{world.staff_a.public_id}"


def test_openapi_schema_is_served_to_signed_in_users(world, client):
    assert client.get("/api/v1/openapi.json").status_code == 401
    client.force_login(world.staff_a)
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/contacts/{contact_id}" in schema["paths"]
    assert set(schema["paths"]["/api/v1/contacts/{contact_id}"]) == {"get", "patch", "delete"}


def test_create_token_command_prints_a_working_token(world, client, capsys):
    call_command("create_token", world.manager_a.email)
    key = capsys.readouterr().out.strip()
    assert key.startswith("ens_")
    assert client.get("/api/v1/units", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_contact_list_page_uses_a_fixed_number_of_queries(world, client):
    client.force_login(world.manager_a)
    ContactFactory.create_batch(5, unit=world.unit_a)
    with CaptureQueriesContext(connection) as small:
        assert client.get("/contacts/").status_code == 200
    ContactFactory.create_batch(60, unit=world.unit_a)
    with CaptureQueriesContext(connection) as large:
        assert client.get("/contacts/?page=2").status_code == 200
    assert len(small.captured_queries) == len(large.captured_queries)
    # session, user, memberships+grants (2), rules, count, page, units filter
    # session, user, memberships, grants, HQ rules, count, units filter, units with
    # capability, page; on PostgreSQL the scope adds savepoint, set, restore, release.
    assert len(large.captured_queries) == 9 + (4 if connection.vendor == "postgresql" else 0)


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row-level security exists only on PostgreSQL; CI runs this file on both",
)


@postgres_only
def test_the_app_acts_as_an_unprivileged_role(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert cursor.fetchone() == (settings.DATABASE_APP_ROLE, False, False)
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'contacts_%%' AND relkind = 'r' "
            "AND NOT (relrowsecurity AND relforcerowsecurity) ORDER BY relname"
        )
        assert [r[0] for r in cursor.fetchall()] == ["contacts_customattribute", "contacts_tag"]
        # HQ-owned brand tables are shared by design; unit-owned ones are protected (templates
        # by the path they are shared with). test_data_isolation.py checks every table.
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'brand_%%' AND relkind = 'r' "
            "AND (relrowsecurity AND relforcerowsecurity) ORDER BY relname"
        )
        assert [r[0] for r in cursor.fetchall()] == [
            "brand_asset",
            "brand_localversion",
            "brand_template",
        ]


@postgres_only
def test_rls_hides_other_units_rows_even_from_raw_sql(world):
    ContactFactory.create_batch(2, unit=world.unit_a)
    ContactFactory.create_batch(3, unit=world.unit_b)
    with db_scope([world.unit_a.path]), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_contact")
        assert cursor.fetchone() == (2,)
        cursor.execute(
            "SELECT count(*) FROM contacts_contact WHERE unit_path = %s", [world.unit_b.path]
        )
        assert cursor.fetchone() == (0,)
    with db_scope([]), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_contact")
        assert cursor.fetchone() == (0,)
    with db_scope([world.region_a.path]), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM contacts_contact")
        assert cursor.fetchone() == (2,)


@postgres_only
def test_rls_refuses_writes_into_another_unit(world):
    from django.db import DatabaseError, transaction

    with (
        pytest.raises(DatabaseError, match="row-level security"),
        db_scope([world.unit_a.path]),
        transaction.atomic(),
    ):
        Contact.objects.create(
            unit=world.unit_b, unit_path=world.unit_b.path, email="x@example.com"
        )
