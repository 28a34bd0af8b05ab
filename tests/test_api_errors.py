"""Every 4xx of the API in one shape, in the caller's language, and documented in OpenAPI."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from enseigne.api.api import api
from enseigne.api.errors import ERROR_STATUSES
from enseigne.contacts.models import Contact
from enseigne.lib.errorshape import ErrorCode, is_error_body
from enseigne.network.models import ApiToken
from enseigne.network.tokens import token_create
from enseigne.tracking.models import Conversion
from tests.campaign_helpers import email_template
from tests.factories import ContactFactory


def bearer(user, **kwargs):
    _, key = token_create(user=user, **kwargs)
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def post(client, url, body, headers, **extra):
    return client.post(url, json.dumps(body), content_type="application/json", **headers, **extra)


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert "json" in response["Content-Type"]
    data = response.json()
    assert is_error_body(data), data
    assert data["error"]["message"]
    return data["error"]


@pytest.mark.parametrize(
    ("language", "message"),
    [("fr", "Certains champs ne sont pas valides."), ("en", "Some fields are not valid.")],
)
def test_validation_errors_name_fields_in_the_callers_language(client, world, language, message):
    response = post(
        client,
        "/api/v1/contacts",
        {"unit": "not-a-uuid", "first_name": "x" * 101, "birthday": "demain"},
        bearer(world.manager_a),
        HTTP_ACCEPT_LANGUAGE=language,
    )
    error = error_of(response, 422)
    assert (error["code"], error["message"]) == ("validation_failed", message)
    assert sorted(error["fields"]) == ["birthday", "first_name", "unit"]
    too_long = {"fr": "100 caractères au plus.", "en": "At most 100 characters."}[language]
    assert error["fields"]["first_name"] == [too_long]
    assert Contact.objects.count() == 0


def test_a_services_validation_error_keeps_its_fields(client, world):
    response = post(
        client,
        "/api/v1/contacts",
        {"unit": str(world.unit_a.public_id), "email": "x@", "phone": "1"},
        bearer(world.manager_a),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    error = error_of(response, 422)
    assert error["code"] == "validation_failed"
    assert sorted(error["fields"]) == ["email", "phone"]


@pytest.mark.parametrize(
    ("url", "body", "field", "limit"),
    [
        ("/api/v1/contacts", {"first_name": "é"}, "first_name", 100),
        ("/api/v1/contacts", {"last_name": "n"}, "last_name", 100),
        ("/api/v1/contacts", {"language": "f"}, "language", 8),
        ("/api/v1/contacts", {"tags": ["t"]}, "tags[0]", 50),
        ("/api/v1/conversions", {"order_id": "7"}, "order_id", 100),
        ("/api/v1/campaigns", {"name": "C"}, "name", 200),
        ("/api/v1/local-versions", {"name": "V"}, "name", 200),
    ],
)
def test_over_long_strings_are_refused_not_cut(client, world, url, body, field, limit):
    template = email_template(world)
    base = {
        "/api/v1/contacts": {"unit": str(world.unit_a.public_id), "email": "a@example.com"},
        "/api/v1/conversions": {"unit": str(world.unit_a.public_id), "amount": "10"},
        "/api/v1/campaigns": {"channel": "email", "template": str(template.public_id)},
        "/api/v1/local-versions": {
            "template": str(template.public_id),
            "unit": str(world.unit_a.public_id),
        },
    }[url]
    ((key, value),) = body.items()
    over = [value[0] * (limit + 1)] if isinstance(value, list) else value * (limit + 1)
    before = (Contact.objects.count(), Conversion.objects.count())
    response = post(client, url, {**base, key: over}, bearer(world.hq_admin))
    error = error_of(response, 422)
    assert list(error["fields"]) == [field]
    assert (Contact.objects.count(), Conversion.objects.count()) == before
    if field in ("first_name", "last_name", "tags[0]", "order_id"):
        exact = [value[0] * limit] if isinstance(value, list) else value * limit
        response = post(client, url, {**base, key: exact}, bearer(world.hq_admin))
        assert response.status_code == 201, response.content


def test_not_found_forbidden_and_unknown_addresses(client, world):
    contact = ContactFactory(unit=world.unit_a)
    other = error_of(
        client.get(f"/api/v1/contacts/{contact.public_id}", **bearer(world.manager_b)), 404
    )
    assert other["code"] == "not_found"
    forbidden = error_of(
        client.delete(f"/api/v1/contacts/{contact.public_id}", **bearer(world.staff_a)), 403
    )
    assert forbidden["code"] == "permission_denied"
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert error_of(client.get("/api/v1/nowhere", **bearer(world.staff_a)), 404)["code"] == (
        "not_found"
    )
    response = client.put("/api/v1/contacts", **bearer(world.hq_admin))
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_unreadable_json_is_a_400(client, world):
    response = client.post(
        "/api/v1/contacts", "{not json", content_type="application/json", **bearer(world.hq_admin)
    )
    assert error_of(response, 400)["code"] == "bad_request"


@pytest.mark.parametrize("language", ["fr", "en"])
def test_authentication_errors(client, world, language):
    headers = {"HTTP_ACCEPT_LANGUAGE": language}
    assert error_of(client.get("/api/v1/units", **headers), 401)["code"] == (
        "authentication_required"
    )
    assert error_of(client.get("/api/v1/openapi.json", **headers), 401)["code"] == (
        "authentication_required"
    )
    bad = client.get("/api/v1/units", HTTP_AUTHORIZATION="Bearer ens_nope", **headers)
    assert error_of(bad, 401)["code"] == "token_invalid"
    token, key = token_create(user=world.staff_a)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    expired = client.get("/api/v1/units", HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
    error = error_of(expired, 401)
    assert error["code"] == "token_expired"
    assert ("profil" in error["message"]) is True


def test_too_many_bad_tokens_is_a_429_in_the_shape(client, world, settings):
    settings.TOKEN_FAILURE_LIMIT = 2
    for _ in range(2):
        client.get("/api/v1/units", HTTP_AUTHORIZATION="Bearer ens_nope")
    response = client.get("/api/v1/units", HTTP_AUTHORIZATION="Bearer ens_nope")
    assert error_of(response, 429)["code"] == "too_many_requests"
    assert response["Retry-After"] == str(settings.TOKEN_FAILURE_WINDOW)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_the_limit_is_a_json_413(client, world, settings, content_type):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"unit": str(world.unit_a.public_id), "first_name": "x" * 2000})
    response = client.post(
        "/api/v1/contacts", body, content_type=content_type, **bearer(world.hq_admin)
    )
    assert error_of(response, 413)["code"] == "body_too_large"
    assert Contact.objects.count() == 0
    small = client.post(
        "/api/v1/contacts",
        json.dumps({"unit": str(world.unit_a.public_id), "email": "a@example.com"}),
        content_type="application/json",
        **bearer(world.hq_admin),
    )
    assert small.status_code == 201


def test_the_ui_keeps_djangos_own_answers(client, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client.force_login(world.manager_a)
    response = client.post("/contacts/new/", {"first_name": "x" * 2000})
    assert response.status_code == 400
    assert "json" not in response["Content-Type"]


def test_every_operation_documents_its_client_errors():
    schema = api.get_openapi_schema()
    error_ref = "#/components/schemas/ErrorOut"
    missing = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status in ERROR_STATUSES:
                content = operation["responses"].get(
                    str(status), operation["responses"].get(status)
                )
                ref = (content or {}).get("content", {}).get("application/json", {}).get("schema")
                if ref != {"$ref": error_ref}:
                    missing.append(f"{method.upper()} {path} {status}")
    assert not missing, missing
    detail = schema["components"]["schemas"]["ErrorDetail"]
    assert set(detail["required"]) == {"code", "message", "fields"}


def test_codes_are_stable_snake_case():
    assert all(code.value == code.value.lower() and " " not in code.value for code in ErrorCode)
