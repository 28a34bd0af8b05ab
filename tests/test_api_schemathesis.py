"""The whole API through schemathesis: no server error, and every answer as the schema says.

The schema comes from the application itself and the calls go through its WSGI handler (every
middleware included), as a store manager and as HQ. Derandomized with a bounded number of
examples per operation, so CI runs the same cases every time in well under a minute and a
half per database.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from enseigne.api.api import api
from enseigne.network.tokens import token_create
from tests.campaign_helpers import email_template, local_campaign
from tests.factories import ContactFactory

pytestmark = pytest.mark.slow

# Valid input (the operations' own paths) as both personas; invalid input (every 4xx in its
# shape) once, as the store manager: a refusal of malformed input does not depend on the role.
POSITIVE = (GenerationMode.POSITIVE, 8)
NEGATIVE = (GenerationMode.NEGATIVE, 4)
MODES = {"manager_a": (POSITIVE, NEGATIVE), "hq_admin": (POSITIVE,)}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def connection_kept():
    """Django's test client keeps the test's connection (and its transaction) across a
    request by unhooking ``close_old_connections``; calls through the bare WSGI handler
    need the same, or the first request's end closes the connection under the test."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _schema():
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    schema.app = get_wsgi_application()
    return schema


def _exercise(operation, headers: dict, mode: GenerationMode, examples: int) -> str | None:
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Exception as failure:  # noqa: BLE001 - each operation's failure is reported
        return f"{operation.label} ({mode.value}): {failure}"
    return None


@pytest.mark.parametrize("persona", sorted(MODES))
def test_every_operation_answers_as_its_schema_says(
    world, persona, settings, tmp_path, connection_kept
):
    settings.MEDIA_ROOT = tmp_path
    template = email_template(world)
    local_campaign(world, unit=world.unit_a, template=template)
    ContactFactory.create_batch(3, unit=world.unit_a)
    _, key = token_create(user=getattr(world, persona))
    headers = {"Authorization": f"Bearer {key}"}
    failures = []
    operations = [result.ok() for result in _schema().get_all_operations()]
    assert len(operations) >= 35
    for operation in operations:
        for mode, examples in MODES[persona]:
            failure = _exercise(operation, headers, mode, examples)
            if failure:
                failures.append(failure)
    assert not failures, "\n\n".join(failures)
