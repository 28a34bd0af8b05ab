"""Every URL and API route × method × persona × own/other object.

A route with no row here fails ``test_every_route_has_a_row``. Statuses are exact:
another unit's object answers 404 exactly like a missing one; a role that may see an
object but not act on it gets 403; anonymous browsers are sent to the login page and
anonymous API calls get 401. Every denied write is checked to have changed nothing.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from enseigne.api.api import api
from enseigne.brand.asset_services import asset_upload
from enseigne.brand.models import Asset, Guardrails, LocalVersion, Template, TemplateVersion
from enseigne.brand.services import local_version_save, template_create
from enseigne.campaigns.models import Campaign, Recipient, Relay
from enseigne.campaigns.services import campaign_create_local, campaign_submit
from enseigne.commerce.models import CatalogueImport, Order, OrderImport, OrderLine
from enseigne.contacts.models import ConsentEvent, Contact, ContactImport, Segment
from enseigne.contacts.services import segment_save
from enseigne.delivery.models import Link, OutboxMessage
from enseigne.identity import services as identity_services
from enseigne.identity.models import (
    IdentityChange,
    IdentityPolicy,
    KeptApart,
    MatchCandidate,
    ModelRun,
    Person,
    RecordLink,
)
from enseigne.lib.signing import sign_id, sign_ids, webhook_key
from enseigne.network.models import AuditEvent, OrgNode, User
from enseigne.network.tokens import token_create
from enseigne.personas.services import persona_save
from enseigne.tracking.models import Conversion
from tests.factories import PASSWORD, ContactFactory, build_world

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS"
    b"\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00"
    b"\x00IEND\xaeB`\x82"
)
MATRIX_TEMPLATE = (
    '<mjml><mj-body><mj-section><mj-column><mj-text><ens-zone name="headline" kind="text">H</ens-zone>'
    "</mj-text></mj-column></mj-section></mj-body></mjml>"
)
OUTBOX_RAW = (
    "From: x@example.com\r\nSubject: S\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n"
    "\r\n<p>Bonjour</p>\r\n"
)
PERSONAS = ("anon", "hq_admin", "region_manager", "manager_a", "staff_a", "manager_b")
NO_OBJECT = None

# (route, method): (object kind, "own statuses for PERSONAS", "other statuses" or None)
# Other-unit statuses are for the personas that have another unit to try (not anon/HQ).
MATRIX: dict[tuple[str, str], tuple[str | None, str, str | None]] = {
    ("login/", "GET"): (NO_OBJECT, "200 302 302 302 302 302", None),
    ("logout/", "POST"): (NO_OBJECT, "302 302 302 302 302 302", None),
    (".well-known/security.txt", "GET"): (NO_OBJECT, "200 200 200 200 200 200", None),
    ("i18n/setlang/", "POST"): (NO_OBJECT, "302 302 302 302 302 302", None),
    ("", "GET"): (NO_OBJECT, "302 302 302 302 302 302", None),
    ("hq/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("hq/nodes/new/", "POST"): (NO_OBJECT, "302 302 403 403 403 403", None),
    ("hq/users/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("hq/users/", "POST"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("hq/users/<uuid:public_id>/", "GET"): ("user", "302 200 403 403 403 403", None),
    ("hq/users/<uuid:public_id>/", "POST"): ("user", "302 200 403 403 403 403", None),
    ("hq/roles/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("hq/roles/", "POST"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("hq/audit/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    # Everyone's own profile and tokens; another user's token id is not found.
    ("profile/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("profile/", "POST"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("profile/tokens/<uuid:public_id>/revoke/", "POST"): (
        "user",
        "302 404 404 404 404 404",
        None,
    ),
    ("profile/tokens/<uuid:public_id>/revoke/", "GET"): (
        "user",
        "302 405 405 405 405 405",
        None,
    ),
    ("units/<uuid:public_id>/", "GET"): ("unit", "302 200 200 200 200 200", "404 404 404 404"),
    ("units/<uuid:public_id>/edit/", "GET"): ("unit", "302 200 403 403 403 403", "404 404 404 404"),
    ("units/<uuid:public_id>/edit/", "POST"): (
        "unit",
        "302 200 403 403 403 403",
        "404 404 404 404",
    ),
    # HQ's mother base: for a store or a region it does not exist (404, as a missing object).
    # Empty POSTs from HQ are refused with a message on the page they came from (302).
    ("hq/people/", "GET"): (NO_OBJECT, "302 200 404 404 404 404", None),
    ("hq/people/merge/", "POST"): (NO_OBJECT, "302 302 404 404 404 404", None),
    ("hq/people/merge/", "GET"): (NO_OBJECT, "302 405 405 405 405 405", None),
    ("hq/people/review/", "GET"): (NO_OBJECT, "302 200 404 404 404 404", None),
    ("hq/people/review/<int:pk>/", "POST"): ("candidate", "302 302 404 404 404 404", None),
    ("hq/people/history/", "GET"): (NO_OBJECT, "302 200 404 404 404 404", None),
    ("hq/people/history/<int:pk>/undo/", "POST"): ("change", "302 302 404 404 404 404", None),
    ("hq/people/settings/", "GET"): (NO_OBJECT, "302 200 404 404 404 404", None),
    ("hq/people/settings/", "POST"): (NO_OBJECT, "302 200 404 404 404 404", None),
    # The model's thresholds and a run: HQ's empty POST is refused on the page (200) or
    # queues a run (302); the schedule's form is POST only.
    ("hq/people/settings/matching/", "POST"): (NO_OBJECT, "302 200 404 404 404 404", None),
    ("hq/people/settings/matching/", "GET"): (NO_OBJECT, "302 405 405 405 405 405", None),
    ("hq/people/settings/run/", "POST"): (NO_OBJECT, "302 302 404 404 404 404", None),
    ("hq/people/settings/run/", "GET"): (NO_OBJECT, "302 405 405 405 405 405", None),
    ("hq/people/<uuid:public_id>/", "GET"): (
        "person",
        "302 200 404 404 404 404",
        "404 404 404 404",
    ),
    ("hq/people/<uuid:public_id>/split/", "POST"): (
        "person",
        "302 302 404 404 404 404",
        "404 404 404 404",
    ),
    ("contacts/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("contacts/new/", "GET"): (NO_OBJECT, "302 200 403 200 200 200", None),
    ("contacts/new/", "POST"): (NO_OBJECT, "302 200 403 200 200 200", None),
    ("contacts/export.csv", "GET"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("contacts/<uuid:public_id>/", "GET"): (
        "contact",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("contacts/<uuid:public_id>/edit/", "GET"): (
        "contact",
        "302 200 403 200 200 200",
        "404 404 404 404",
    ),
    ("contacts/<uuid:public_id>/edit/", "POST"): (
        "contact",
        "302 200 403 200 200 200",
        "404 404 404 404",
    ),
    ("contacts/<uuid:public_id>/consent/", "POST"): (
        "contact",
        "302 302 403 302 302 302",
        "404 404 404 404",
    ),
    ("contacts/<uuid:public_id>/data.json", "GET"): (
        "contact",
        "302 200 403 200 403 200",
        "404 404 404 404",
    ),
    ("contacts/<uuid:public_id>/erase/", "GET"): (
        "contact",
        "302 200 403 200 403 200",
        "404 404 404 404",
    ),
    ("contacts/<uuid:public_id>/erase/", "POST"): (
        "contact",
        "302 302 403 302 403 302",
        "404 404 404 404",
    ),
    ("imports/", "GET"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("imports/", "POST"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("imports/<uuid:public_id>/", "GET"): ("import", "302 200 404 200 404 200", "404 404 404 404"),
    ("imports/<uuid:public_id>/", "POST"): ("import", "302 200 404 200 404 200", "404 404 404 404"),
    ("imports/<uuid:public_id>/progress/", "GET"): (
        "import",
        "302 200 404 200 404 200",
        "404 404 404 404",
    ),
    ("imports/<uuid:public_id>/rejections.csv", "GET"): (
        "import",
        "302 200 404 200 404 200",
        "404 404 404 404",
    ),
    # Sales imports: whoever may record a unit's sales (HQ, store managers); the page is
    # also its own progress (htmx) and an empty POST on a finished import changes nothing.
    ("sales/imports/", "GET"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("sales/imports/", "POST"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("sales/imports/<uuid:public_id>/", "GET"): (
        "order_import",
        "302 200 404 200 404 200",
        "404 404 404 404",
    ),
    ("sales/imports/<uuid:public_id>/", "POST"): (
        "order_import",
        "302 200 404 200 404 200",
        "404 404 404 404",
    ),
    # HQ's product catalogue, into the library (manage_assets).
    ("sales/catalogue/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("sales/catalogue/", "POST"): (NO_OBJECT, "302 200 403 403 403 403", None),
    # A catalogue import is seen only by whoever manages the library's assets where its
    # products are shared: HQ; a store or a region gets 404 (as for any other's import).
    ("sales/catalogue/<uuid:public_id>/", "GET"): (
        "catalogue_import",
        "302 200 404 404 404 404",
        "404 404 404 404",
    ),
    ("sales/catalogue/<uuid:public_id>/", "POST"): (
        "catalogue_import",
        "302 200 404 404 404 404",
        "404 404 404 404",
    ),
    ("sales/catalogue/<uuid:public_id>/report.csv", "GET"): (
        "catalogue_import",
        "302 200 404 404 404 404",
        "404 404 404 404",
    ),
    ("sales/imports/<uuid:public_id>/report.csv", "GET"): (
        "order_import",
        "302 200 404 200 404 200",
        "404 404 404 404",
    ),
    ("segments/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("segments/new/", "GET"): (NO_OBJECT, "302 200 200 200 403 200", None),
    ("segments/new/", "POST"): (NO_OBJECT, "302 200 200 200 403 200", None),
    ("segments/count/", "POST"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("segments/<uuid:public_id>/", "GET"): (
        "segment",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("segments/<uuid:public_id>/", "POST"): (
        "segment",
        "302 200 200 200 403 200",
        "404 404 404 404",
    ),
    ("segments/<uuid:public_id>/delete/", "POST"): (
        "segment",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("brand/assets/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("brand/assets/", "POST"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("brand/assets/new/<slug:kind>/", "GET"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("brand/assets/new/<slug:kind>/", "POST"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("brand/assets/<uuid:public_id>/", "GET"): (
        "asset",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("brand/assets/<uuid:public_id>/", "POST"): (
        "asset",
        "302 302 403 302 403 302",
        "404 404 404 404",
    ),
    ("brand/assets/<uuid:public_id>/delete/", "POST"): (
        "asset",
        "302 302 403 302 403 302",
        "404 404 404 404",
    ),
    ("media/assets/<path:path>", "GET"): ("asset", "200 200 200 200 200 200", None),
    ("brand/templates/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("brand/templates/new/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("brand/templates/new/", "POST"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("brand/templates/preview/", "POST"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("brand/templates/<uuid:public_id>/", "GET"): (
        "template",
        "302 200 403 403 403 403",
        "404 404 404 404",
    ),
    ("brand/templates/<uuid:public_id>/", "POST"): (
        "template",
        "302 200 403 403 403 403",
        "404 404 404 404",
    ),
    ("brand/templates/<uuid:public_id>/personalise/", "GET"): (
        "template",
        "302 200 200 200 403 200",
        "404 404 404 404",
    ),
    ("brand/templates/<uuid:public_id>/personalise/", "POST"): (
        "template",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("brand/templates/<uuid:public_id>/preview/", "POST"): (
        "template",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("brand/templates/<uuid:public_id>/sms-length/", "POST"): (
        "sms_template",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("brand/local/<uuid:public_id>/", "GET"): (
        "local",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("brand/local/<uuid:public_id>/", "POST"): (
        "local",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("campaigns/new/", "GET"): (NO_OBJECT, "302 200 200 200 403 200", None),
    ("campaigns/new/", "POST"): (NO_OBJECT, "302 200 200 200 403 200", None),
    # Free campaigns: only HQ admins by default; HQ widens it with a capability rule.
    ("campaigns/new/free/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("campaigns/new/free/", "POST"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("campaigns/approvals/", "GET"): (NO_OBJECT, "302 200 200 403 403 403", None),
    ("campaigns/calendar/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("campaigns/calendar/events/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    # Everyone reads the sending rules; only HQ (manage sending rules) changes them. An
    # empty form from HQ is a 400 (nothing saved).
    ("campaigns/rules/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("campaigns/rules/", "POST"): (NO_OBJECT, "302 400 403 403 403 403", None),
    ("campaigns/<uuid:public_id>/", "GET"): (
        "campaign",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/audience/", "GET"): (
        "campaign",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/message/", "GET"): (
        "campaign",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/progress/", "GET"): (
        "campaign",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/report/", "GET"): (
        "campaign",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/report.csv", "GET"): (
        "campaign",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/report/", "POST"): (
        "campaign",
        "302 405 405 405 405 405",
        "405 405 405 405",
    ),
    # HQ and regions get the network dashboard; a unit's people are sent to their unit's.
    ("results/", "GET"): (NO_OBJECT, "302 200 200 302 302 302", None),
    ("gallery/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    # Every unit learns from every other: the gallery's campaigns are no unit's secret.
    ("gallery/<uuid:public_id>/preview/", "GET"): (
        "gallery",
        "302 200 200 200 200 200",
        "200 200 200 200",
    ),
    # Copying needs a unit to copy into: HQ and a region name it (none given here: 403).
    ("gallery/<uuid:public_id>/copy/", "POST"): (
        "gallery",
        "302 403 403 302 403 302",
        "403 302 403 302",
    ),
    ("gallery/<uuid:public_id>/promote/", "POST"): (
        "gallery",
        "302 302 403 403 403 403",
        "403 403 403 403",
    ),
    ("results/sales/", "GET"): (NO_OBJECT, "302 200 403 200 403 200", None),
    ("results/units/<uuid:public_id>/", "GET"): (
        "unit",
        "302 200 200 200 200 200",
        "404 404 404 404",
    ),
    # The matrix's campaigns are submitted: editing answers with the reason (a redirect to
    # the campaign page); a duplicate is a new draft of the same owner.
    ("campaigns/<uuid:public_id>/edit/", "GET"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/edit/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/duplicate/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/submit/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/approve/", "POST"): (
        "campaign",
        "302 302 302 403 403 403",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/reject/", "POST"): (
        "campaign",
        "302 302 302 403 403 403",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/schedule/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/cancel/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/reopen/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/relay/", "POST"): (
        "campaign",
        "302 403 403 403 403 403",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/move/", "POST"): (
        "campaign",
        "302 400 400 400 403 400",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/launch/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/pause/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("campaigns/<uuid:public_id>/resume/", "POST"): (
        "campaign",
        "302 302 302 302 403 302",
        "404 404 404 404",
    ),
    ("outbox/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("outbox/<int:pk>/", "GET"): ("outbox", "302 200 200 200 200 200", "404 404 404 404"),
    ("outbox/<int:pk>/body/", "GET"): ("outbox", "302 200 200 200 200 200", "404 404 404 404"),
    # Public: a signed token, no session.
    ("u/<str:token>/", "GET"): ("recipient", "200 200 200 200 200 200", None),
    ("u/<str:token>/", "POST"): ("recipient", "200 200 200 200 200 200", None),
    # Public: click redirects and the open pixel (signed tokens; GET and HEAD only).
    ("c/<str:token>", "GET"): ("link", "302 302 302 302 302 302", None),
    ("c/<str:token>", "POST"): ("link", "405 405 405 405 405 405", None),
    ("o/<str:token>.gif", "GET"): ("recipient", "200 200 200 200 200 200", None),
    ("o/<str:token>.gif", "POST"): ("recipient", "405 405 405 405 405 405", None),
    # Public: the MTA posts bounce reports to a secret URL; the ESP webhook exists only when
    # that ESP is configured with a webhook secret (not in the tests' settings).
    ("hooks/bounces/<str:key>/", "POST"): (NO_OBJECT, "202 202 202 202 202 202", None),
    ("hooks/bounces/<str:key>/", "GET"): (NO_OBJECT, "405 405 405 405 405 405", None),
    # No sender in the (empty) body: refused before anything is looked at.
    ("hooks/sms/<str:key>/", "POST"): (NO_OBJECT, "400 400 400 400 400 400", None),
    ("hooks/sms/<str:key>/", "GET"): (NO_OBJECT, "405 405 405 405 405 405", None),
    ("hooks/esp/<slug:esp>/", "POST"): (NO_OBJECT, "404 404 404 404 404 404", None),
    ("brand/guardrails/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    ("brand/guardrails/", "POST"): (NO_OBJECT, "302 200 403 403 403 403", None),
    # API v1: bearer tokens only.
    ("api/v1/openapi.json", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/docs", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
    ("api/v1/units", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/units/{unit_id}", "GET"): ("unit", "401 200 200 200 200 200", "404 404 404 404"),
    ("api/v1/contacts", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/contacts", "POST"): ("unit", "401 201 403 201 201 201", "404 404 404 404"),
    ("api/v1/contacts/{contact_id}", "GET"): (
        "contact",
        "401 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/contacts/{contact_id}", "PATCH"): (
        "contact",
        "401 200 403 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/contacts/{contact_id}", "DELETE"): (
        "contact",
        "401 204 403 204 403 204",
        "404 404 404 404",
    ),
    ("api/v1/contacts/{contact_id}/consent-events", "GET"): (
        "contact",
        "401 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/contacts/{contact_id}/consent-events", "POST"): (
        "contact",
        "401 201 403 201 201 201",
        "404 404 404 404",
    ),
    # The customer base: HQ tokens only; a store's token finds nothing there (404).
    ("api/v1/people", "GET"): (NO_OBJECT, "401 200 404 404 404 404", None),
    ("api/v1/people/{person_id}", "GET"): (
        "person",
        "401 200 404 404 404 404",
        "404 404 404 404",
    ),
    ("api/v1/imports", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/imports", "POST"): ("unit", "401 201 403 201 403 201", "404 404 404 404"),
    ("api/v1/imports/{import_id}", "GET"): ("import", "401 200 404 200 404 200", "404 404 404 404"),
    ("api/v1/imports/{import_id}/rejections", "GET"): (
        "import",
        "401 200 404 200 404 200",
        "404 404 404 404",
    ),
    ("api/v1/conversions", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/segments", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/segments/{segment_id}", "GET"): (
        "segment",
        "401 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/campaigns", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/conversions", "POST"): ("unit", "401 201 403 201 403 201", "404 404 404 404"),
    ("api/v1/orders/batch", "POST"): ("unit", "401 200 403 200 403 200", "404 404 404 404"),
    ("api/v1/segments/count", "POST"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/assets", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/assets", "POST"): ("unit", "401 201 403 201 403 201", "404 404 404 404"),
    ("api/v1/assets/{asset_id}", "GET"): ("asset", "401 200 200 200 200 200", "404 404 404 404"),
    ("api/v1/assets/{asset_id}", "DELETE"): ("asset", "401 204 403 204 403 204", "404 404 404 404"),
    ("api/v1/templates", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/templates/{template_id}", "GET"): (
        "template",
        "401 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/templates/{template_id}/versions", "POST"): (
        "template",
        "401 201 403 403 403 403",
        "404 404 404 404",
    ),
    ("api/v1/templates/{template_id}/preview", "POST"): (
        "template",
        "401 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/local-versions", "GET"): (NO_OBJECT, "401 200 200 200 200 200", None),
    ("api/v1/local-versions", "POST"): ("template", "401 201 201 201 403 201", "404 404 404 404"),
    ("api/v1/local-versions/{local_id}", "GET"): (
        "local",
        "401 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/local-versions/{local_id}", "PUT"): (
        "local",
        "401 200 200 200 403 200",
        "404 404 404 404",
    ),
    ("api/v1/campaigns", "POST"): ("campaign", "401 201 201 201 403 201", "404 404 404 404"),
    ("api/v1/campaigns/{campaign_id}", "GET"): (
        "campaign",
        "401 200 200 200 200 200",
        "404 404 404 404",
    ),
    ("api/v1/campaigns/{campaign_id}/submit", "POST"): (
        "campaign",
        "401 422 422 422 403 422",
        "404 404 404 404",
    ),
    ("api/v1/campaigns/{campaign_id}/approve", "POST"): (
        "campaign",
        "401 200 200 403 403 403",
        "404 404 404 404",
    ),
    ("api/v1/campaigns/{campaign_id}/reject", "POST"): (
        "campaign",
        "401 200 200 403 403 403",
        "404 404 404 404",
    ),
    ("api/v1/campaigns/{campaign_id}/schedule", "POST"): (
        "campaign",
        "401 422 422 422 403 422",
        "404 404 404 404",
    ),
    ("api/v1/campaigns/{campaign_id}/launch", "POST"): (
        "campaign",
        "401 422 422 422 403 422",
        "404 404 404 404",
    ),
    ("api/v1/campaigns/{campaign_id}/pause", "POST"): (
        "campaign",
        "401 422 422 422 403 422",
        "404 404 404 404",
    ),
    ("api/v1/campaigns/{campaign_id}/resume", "POST"): (
        "campaign",
        "401 422 422 422 403 422",
        "404 404 404 404",
    ),
}


# Issue 20, HQ's GDPR rights per person (enseigne/identity/urls_gdpr.py, included under
# hq/people/): HQ only; every store or region user gets 404, whichever person it names.
# Then HQ's people analytics (enseigne/analytics/people.py).
MATRIX.update(
    {
        ("hq/people/<uuid:public_id>/export.json", "GET"): (
            "gdpr_person",
            "302 200 404 404 404 404",
            "404 404 404 404",
        ),
        ("hq/people/<uuid:public_id>/erase/", "GET"): (
            "gdpr_person",
            "302 200 404 404 404 404",
            "404 404 404 404",
        ),
        ("hq/people/<uuid:public_id>/erase/", "POST"): (
            "gdpr_person",
            "302 302 404 404 404 404",
            "404 404 404 404",
        ),
        # The cross-shopping matrix and the base in people: HQ's analytics only.
        ("results/people/", "GET"): (NO_OBJECT, "302 200 403 403 403 403", None),
    }
)

# Issue 21, personas and the RFM pages: one row a route (each row is six cases of a built
# world). Everyone reads the counts of the units they see; only HQ edits (a store's
# ``?unit=`` of another unit answers 404: tests/test_personas.py).
MATRIX.update(
    {
        ("personas/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
        # "Recompute now": HQ's alone.
        ("personas/", "POST"): (NO_OBJECT, "302 302 404 404 404 404", None),
        ("hq/personas/new/", "GET"): (NO_OBJECT, "302 200 404 404 404 404", None),
        ("hq/personas/<uuid:public_id>/", "POST"): ("persona", "302 200 404 404 404 404", None),
        ("rfm/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
        ("hq/rfm/", "POST"): (NO_OBJECT, "302 200 404 404 404 404", None),
    }
)

# Issue 22, journeys: HQ designs (every other user 404), stores run (a store's staff may
# read its run, not act on it; another unit's run is 404).
MATRIX.update(
    {
        ("hq/journeys/", "GET"): (NO_OBJECT, "302 200 404 404 404 404", None),
        ("hq/journeys/", "POST"): (NO_OBJECT, "302 200 404 404 404 404", None),
        ("hq/journeys/<uuid:public_id>/", "GET"): ("journey", "302 200 404 404 404 404", None),
        ("hq/journeys/<uuid:public_id>/", "POST"): ("journey", "302 200 404 404 404 404", None),
        ("journeys/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
        ("journeys/", "POST"): (NO_OBJECT, "302 200 200 200 403 200", None),
        ("journeys/runs/<uuid:public_id>/", "GET"): (
            "journey_run",
            "302 200 200 200 200 200",
            "404 404 404 404",
        ),
        ("journeys/runs/<uuid:public_id>/", "POST"): (
            "journey_run",
            "302 302 302 302 403 302",
            "404 404 404 404",
        ),
        # A journey's report over the runs the user sees (the matrix's journey runs in the
        # side's store): a user who sees no run of it gets 404; read only.
        ("journeys/<uuid:public_id>/report/", "GET"): (
            "journey_report",
            "302 200 200 200 200 200",
            "404 404 404 404",
        ),
        ("journeys/<uuid:public_id>/report/", "POST"): (
            "journey_report",
            "302 405 405 405 405 405",
            "405 405 405 405",
        ),
        ("journeys/calendar/", "GET"): (NO_OBJECT, "302 200 200 200 200 200", None),
        ("journeys/calendar/", "POST"): (NO_OBJECT, "302 405 405 405 405 405", None),
        # The store's texts in its run's messages: its staff read them, do not choose them.
        ("journeys/runs/<uuid:public_id>/texts/", "GET"): (
            "journey_run",
            "302 200 200 200 200 200",
            "404 404 404 404",
        ),
        ("journeys/runs/<uuid:public_id>/texts/", "POST"): (
            "journey_run",
            "302 302 302 302 403 302",
            "404 404 404 404",
        ),
    }
)


def _django_routes(patterns=None, prefix: str = "") -> set[str]:
    routes = set()
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            if prefix + str(pattern.pattern) == "api/v1/":
                continue
            routes |= _django_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            routes.add(prefix + str(pattern.pattern))
    return routes


def _api_routes() -> set[tuple[str, str]]:
    routes = {("api/v1/openapi.json", "GET"), ("api/v1/docs", "GET")}
    for path, operations in api.get_openapi_schema()["paths"].items():
        for method in operations:
            routes.add((path.replace("/api/v1/", "api/v1/", 1).lstrip("/"), method.upper()))
    return routes


def test_every_route_has_a_row():
    # Each listing once: building the OpenAPI schema per matrix row took half a minute.
    django_routes, api_routes = _django_routes(), _api_routes()
    routes_in_matrix = {route for route, _ in MATRIX}
    missing_django = django_routes - routes_in_matrix
    missing_api = api_routes - set(MATRIX)
    assert not missing_django, (
        f"routes without an authorization-matrix row: {sorted(missing_django)}"
    )
    assert not missing_api, (
        f"API operations without an authorization-matrix row: {sorted(missing_api)}"
    )
    stale = {key for key in MATRIX if key[0].startswith("api/") and key not in api_routes}
    stale |= {
        key for key in MATRIX if not key[0].startswith("api/") and key[0] not in django_routes
    }
    assert not stale, f"matrix rows for routes that no longer exist: {sorted(stale)}"


def _cases():
    for (route, method), (kind, own, other) in MATRIX.items():
        for persona, status in zip(PERSONAS, own.split(), strict=True):
            yield pytest.param(
                route,
                method,
                kind,
                persona,
                "own",
                int(status),
                id=f"{method} {route} {persona} own",
            )
        if other:
            for persona, status in zip(PERSONAS[2:], other.split(), strict=True):
                yield pytest.param(
                    route,
                    method,
                    kind,
                    persona,
                    "other",
                    int(status),
                    id=f"{method} {route} {persona} other",
                )


class Objects:
    def __init__(self, world):
        self.world = world
        self.asset, self.template, self.sms_template, self.local = {}, {}, {}, {}
        for side, unit, region, manager in (
            ("a", world.unit_a, world.region_a, world.manager_a),
            ("b", world.unit_b, world.region_b, world.manager_b),
        ):
            self.asset[side] = asset_upload(
                actor=manager,
                node=unit,
                own=True,
                kind="image",
                name=f"Own {side}",
                file_name="own.png",
                data=PNG,
            )
            self.template[side] = template_create(
                actor=world.hq_admin,
                shared_with=region,
                channel="email",
                name=f"T {side}",
                source=MATRIX_TEMPLATE,
            )
            self.sms_template[side] = template_create(
                actor=world.hq_admin,
                shared_with=region,
                channel="sms",
                name=f"S {side}",
                source='<ens-zone name="m" kind="text">Hi</ens-zone>',
                sms_stop="STOP 36111",
            )
            self.local[side] = local_version_save(
                actor=manager,
                unit=unit,
                template=self.template[side],
                values={"headline": f"Local {side}"},
            )
        self.campaign = {}
        for side, unit, manager in (
            ("a", world.unit_a, world.manager_a),
            ("b", world.unit_b, world.manager_b),
        ):
            segment = segment_save(
                actor=None, owner=unit, name=f"Campaign {side}", rules={"match": "all", "rules": []}
            )
            campaign = campaign_create_local(
                actor=manager,
                unit=unit,
                channel="email",
                name=f"C {side}",
                template=self.template[side],
                # Its own version: a submitted campaign's version can no longer be edited,
                # and the matrix edits ``self.local``.
                local_version=local_version_save(
                    actor=manager,
                    unit=unit,
                    template=self.template[side],
                    values={"headline": f"Campaign {side}"},
                    name=f"Campaign version {side}",
                ),
                segment=segment,
            )
            self.campaign[side] = campaign_submit(actor=manager, campaign=campaign)
        # The gallery shows finished local campaigns of every unit (content and results only).
        self.gallery = {}
        for side, unit, manager in (
            ("a", world.unit_a, world.manager_a),
            ("b", world.unit_b, world.manager_b),
        ):
            shown = campaign_create_local(
                actor=manager,
                unit=unit,
                channel="email",
                name=f"G {side}",
                template=self.template[side],
                local_version=self.local[side],
            )
            Campaign.objects.filter(pk=shown.pk).update(status=Campaign.Status.FINISHED)
            self.gallery[side] = shown
        self.contact = {
            "a": ContactFactory(unit=world.unit_a, phone="+33612345678"),
            "b": ContactFactory(unit=world.unit_b),
        }
        self.imports = {
            key: ContactImport.objects.create(
                unit=unit,
                unit_path=unit.path,
                file_name="f.csv",
                file_path="/nonexistent.csv",
                file_sha256="0" * 64,
                columns=["email"],
                mapping={"email": "email"},
                status=ContactImport.Status.DONE,
                total_rows=0,
            )
            for key, unit in (("a", world.unit_a), ("b", world.unit_b))
        }
        self.order_imports = {
            key: OrderImport.objects.create(
                unit=unit,
                unit_path=unit.path,
                file_name="ventes.csv",
                file_path="/nonexistent.csv",
                file_sha256="0" * 64,
                columns=["order_id"],
                mapping={"order_id": "order_id"},
                status=OrderImport.Status.DONE,
                total_rows=0,
            )
            for key, unit in (("a", world.unit_a), ("b", world.unit_b))
        }
        self.catalogue_imports = {
            key: CatalogueImport.objects.create(
                node=node,
                unit_path=node.path,
                file_name="catalogue.csv",
                file_path="/nonexistent.csv",
                file_sha256="0" * 64,
                columns=["sku"],
                mapping={"sku": "sku"},
                status=CatalogueImport.Status.DONE,
                total_rows=0,
            )
            for key, node in (("a", world.root), ("b", world.region_b))
        }
        self.recipient = {
            side: Recipient.objects.create(
                campaign=self.campaign[side],
                contact=self.contact[side],
                unit=self.contact[side].unit,
                unit_path=self.contact[side].unit_path,
                channel="email",
                status="sent",
            )
            for side in ("a", "b")
        }
        self.link = {
            side: Link.objects.create(
                campaign=self.campaign[side],
                unit=unit,
                unit_path=unit.path,
                url=f"https://maison.example/{side}",
                url_hash=side,
            )
            for side, unit in (("a", world.unit_a), ("b", world.unit_b))
        }
        for side, link in self.link.items():
            link.matrix_recipient = self.recipient[side].pk
        self.outbox = {
            side: OutboxMessage.objects.create(
                channel="email",
                unit_path=unit.path,
                sender="x@example.com",
                recipient="y@example.com",
                subject="S",
                raw=OUTBOX_RAW,
            )
            for side, unit in (("a", world.unit_a), ("b", world.unit_b))
        }
        rules = {"match": "all", "rules": [{"field": "consent_email", "op": "is_valid"}]}
        self.segment = {
            "a": segment_save(actor=None, owner=world.unit_a, name="A", rules=rules),
            "b": segment_save(actor=None, owner=world.unit_b, name="B", rules=rules),
        }

    def journey(self, kind: str, unit):
        from enseigne.journeys import services as journeys
        from tests.campaign_helpers import email_template

        hello = email_template(self.world, "Journey")
        template = journeys.journey_template_create(
            actor=self.world.hq_admin, owner=self.world.root, name="Bienvenue"
        )
        journeys.journey_publish(
            actor=self.world.hq_admin,
            template=template,
            flow={
                "trigger": {"kind": "consent", "channel": "email"},
                "start": "hello",
                "steps": {"hello": {"kind": "send_email", "template": str(hello.public_id)}},
            },
        )
        if kind == "journey":
            return template
        run = journeys.journey_activate(
            actor=self.world.hq_admin, template=template, unit=unit, starts_on=date.today()
        )
        return template if kind == "journey_report" else run

    def side(self, persona: str, which: str) -> str:
        home = "b" if persona == "manager_b" else "a"
        return home if which == "own" else ("a" if home == "b" else "b")

    def target(self, kind: str, persona: str, which: str):
        side = self.side(persona, which)
        if kind in ("person", "candidate", "change"):
            return self.identity(kind, side)
        unit = self.world.unit_a if side == "a" else self.world.unit_b
        if kind == "gdpr_person":  # issue 20: the person of the side's contact
            return Person.objects.get(links__contact=self.contact[side])
        if kind in ("journey", "journey_run", "journey_report"):  # HQ's, run by the side's store
            return self.journey(kind, unit)
        if kind == "persona":  # HQ's, for the whole network
            return persona_save(
                actor=self.world.hq_admin,
                name="Clients",
                rules={"match": "all", "rules": [{"field": "is_customer", "op": "is_true"}]},
            )
        return {
            "unit": unit,
            "contact": self.contact[side],
            "import": self.imports[side],
            "order_import": self.order_imports[side],
            "catalogue_import": self.catalogue_imports[side],
            "segment": self.segment[side],
            "asset": self.asset[side],
            "template": self.template[side],
            "sms_template": self.sms_template[side],
            "local": self.local[side],
            "campaign": self.campaign[side],
            "recipient": self.recipient[side],
            "outbox": self.outbox[side],
            "link": self.link[side],
            "gallery": self.gallery[side],
            "user": self.world.manager_a,
        }[kind]

    def identity(self, kind: str, side: str):
        """A person of the side's contact, a review entry, a merge: made only when asked."""
        left, right = sorted((self.contact["a"], self.contact["b"]), key=lambda c: c.pk)
        if kind == "person":
            return RecordLink.objects.get(contact=self.contact[side]).person
        if kind == "candidate":
            return MatchCandidate.objects.create(
                left=left, right=right, reason=MatchCandidate.Reason.MODEL, score=0.7
            )
        return identity_services.merge(actor=self.world.hq_admin, records=[left, right])


def _url(route: str, target) -> str:
    url = "/" + route.replace("<slug:kind>", "offer").replace(
        "<str:key>", webhook_key("sms" if route.startswith("hooks/sms/") else "bounces")
    )
    url = url.replace("<slug:esp>", "postmark")
    if route.startswith("media/"):
        return "/media/" + target.thumbnail.name
    if route.startswith("c/"):
        return url.replace("<str:token>", sign_ids("click", target.matrix_recipient, target.pk))
    if route.startswith("o/"):
        return url.replace("<str:token>", sign_ids("open", target.campaign_id, target.unit_id, 0))
    if "<str:token>" in route:
        return url.replace("<str:token>", sign_id("unsubscribe", target.pk))
    if "<int:pk>" in route:
        return url.replace("<int:pk>", str(target.pk))
    if target is not None:
        public_id = str(target.public_id)
        for placeholder in (
            "<uuid:public_id>",
            "{unit_id}",
            "{contact_id}",
            "{import_id}",
            "{asset_id}",
            "{template_id}",
            "{local_id}",
            "{campaign_id}",
            "{segment_id}",
            "{person_id}",
        ):
            url = url.replace(placeholder, public_id)
    return url


def _snapshot():
    return (
        Contact.objects.count(),
        ConsentEvent.objects.count(),
        Segment.objects.count(),
        ContactImport.objects.count(),
        sorted(OrderImport.objects.values_list("pk", "status")),
        sorted(CatalogueImport.objects.values_list("pk", "status")),
        OrgNode.objects.count(),
        User.objects.count(),
        sorted(Contact.objects.values_list("first_name", "email_consent")),
        AuditEvent.objects.exclude(action__startswith="contacts.export").count(),
        sorted(Asset.objects.values_list("name", "folder")),
        Template.objects.count(),
        TemplateVersion.objects.count(),
        sorted(LocalVersion.objects.values_list("name", "values", "status")),
        Guardrails.objects.count(),
        sorted(Campaign.objects.values_list("name", "status", "send_at")),
        Recipient.objects.count(),
        Relay.objects.count(),
        OutboxMessage.objects.count(),
        Conversion.objects.count(),
        Order.objects.count(),
        OrderLine.objects.count(),
        sorted(RecordLink.objects.values_list("contact_id", "person_id", "method")),
        sorted(MatchCandidate.objects.values_list("pk", "status")),
        IdentityChange.objects.count(),
        KeptApart.objects.count(),
        sorted(
            IdentityPolicy.objects.values_list(
                "mode",
                "gmail_rules",
                "match_threshold",
                "review_threshold",
                "model_schedule",
                "model_weekday",
            )
        ),
        ModelRun.objects.count(),
    )


def _api_body(route: str, method: str, kind: str | None, target, unit, objects):
    if route == "api/v1/contacts" and method == "POST":
        return {"unit": str(target.public_id), "email": "new.person@example.com"}
    if route.endswith("{contact_id}") and method == "PATCH":
        return {"first_name": "Changé"}
    if route.endswith("consent-events") and method == "POST":
        return {"channel": "email", "status": "granted", "wording_version": "api-v1"}
    if route.endswith("/versions"):
        return {"source": MATRIX_TEMPLATE.replace(">H<", ">H2<")}
    if route.endswith("/preview"):
        return {"unit": str(unit.public_id), "values": {"headline": "x"}}
    if route == "api/v1/local-versions" and method == "POST":
        return {
            "template": str(target.public_id),
            "unit": str(unit.public_id),
            "values": {"headline": "New"},
        }
    if route.endswith("{local_id}") and method == "PUT":
        return {"name": "Changed", "values": {"headline": "Changed"}}
    if route == "api/v1/campaigns" and method == "POST":
        side = "a" if unit.pk == objects.world.unit_a.pk else "b"
        return {
            "kind": "local",
            "channel": "email",
            "template": str(objects.template[side].public_id),
            "unit": str(unit.public_id),
            "segment": str(objects.segment[side].public_id),
            "local_version": str(objects.local[side].public_id),
        }
    if route.endswith("/reject"):
        return {"comment": "Pas maintenant."}
    if route.endswith("/schedule"):
        return {"send_at": "2099-01-01T10:00:00+01:00"}
    if route == "api/v1/conversions" and method == "POST":
        return {"order_id": "M-1", "unit": str(target.public_id), "amount": "10.00"}
    if route == "api/v1/orders/batch":
        return {
            "unit": str(target.public_id),
            "orders": [{"order_id": "M-1", "lines": [{"sku": "S", "amount": "10.00"}]}],
        }
    if route.endswith("segments/count"):
        return {"rules": {"match": "all", "rules": []}}
    return None


@pytest.mark.parametrize(
    ("route", "method", "kind", "persona", "which", "expected"), list(_cases())
)
def test_matrix(client, db, settings, tmp_path, route, method, kind, persona, which, expected):
    settings.MEDIA_ROOT = tmp_path
    world = build_world()
    objects = Objects(world)
    target = objects.target(kind, persona, which) if kind else None
    url = _url(route, target)
    headers = {}
    if persona != "anon":
        user = getattr(world, persona)
        if route.startswith("api/"):
            _, key = token_create(user=user)
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        else:
            assert client.login(username=user.email, password=PASSWORD)
    before = _snapshot()
    if route.startswith("api/"):
        side_unit = world.unit_b if objects.side(persona, which) == "b" else world.unit_a
        body = _api_body(route, method, kind, target, side_unit, objects)
        if route == "api/v1/assets" and method == "POST":
            response = client.post(
                url,
                {
                    "kind": "text",
                    "node": str(target.public_id),
                    "own_unit": "true",
                    "data": json.dumps({"text": "Bonjour"}),
                },
                **headers,
            )
        elif route == "api/v1/imports" and method == "POST":
            from django.core.files.uploadedfile import SimpleUploadedFile

            upload = SimpleUploadedFile(
                "c.csv", b"email\nnew.import@example.com\n", content_type="text/csv"
            )
            response = client.post(url, {"file": upload, "unit": str(target.public_id)}, **headers)
        else:
            response = client.generic(
                method,
                url,
                json.dumps(body) if body is not None else "",
                content_type="application/json",
                **headers,
            )
    elif method == "GET":
        response = client.get(url, **headers)
    else:
        response = client.post(url, {}, **headers)
    assert response.status_code == expected, (
        f"{method} {url} as {persona} ({which}): {response.status_code}, expected {expected}"
    )
    if expected in (401, 403, 404) and route not in {"login/", "logout/", "i18n/setlang/"}:
        assert _snapshot() == before, "a denied call changed something"
