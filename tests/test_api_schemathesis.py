"""The whole API through schemathesis: no server error, and every answer as the schema says.

The schema comes from the application itself and the calls go through its WSGI handler (every
middleware included), as a store manager and as HQ. Derandomized with a bounded number of
examples per operation, so CI runs the same cases every time in well under a minute and a
half per database.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
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

EXAMPLES_PER_OPERATION = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _schema():
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    schema.app = get_wsgi_application()
    return schema


def _exercise(operation, headers: dict) -> str | None:
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(case=operation.as_strategy())
    def run(case):
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except Exception as failure:  # noqa: BLE001 - each operation's failure is reported
        return f"{operation.label}: {failure}"
    return None


@pytest.mark.parametrize("persona", ["manager_a", "hq_admin"])
def test_every_operation_answers_as_its_schema_says(world, persona, settings, tmp_path):
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
        failure = _exercise(operation, headers)
        if failure:
            failures.append(failure)
    assert not failures, "\n\n".join(failures)
