"""The main pages of each persona, shared by the accessibility checks (tests/test_accessibility.py
parses their HTML; tests/test_browser_accessibility.py runs axe-core over them in Chromium)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.urls import reverse
from django.utils import timezone

from enseigne.campaigns import services
from enseigne.contacts.import_services import import_prepare
from enseigne.identity.models import RecordLink
from enseigne.lib.rowsecurity import ALL, db_scope
from tests.campaign_helpers import email_template, local_campaign
from tests.factories import ContactFactory

PERSONAS = ("hq_admin", "hq_marketer", "region_manager", "manager_a", "staff_a")

# Pages a persona's role may not open answer the error page, checked like any other: 403, or
# 404 for an object its role may not read at all.
# HQ's customer base does not exist for a region or a store (404).
CUSTOMER_BASE = (
    "customer base",
    "person card",
    "review queue",
    "identity history",
    "identity settings",
)
NOT_OPEN = {
    "hq_marketer": {"import": 403, "import detail": 404, "personalise": 403},
    "region_manager": {"import": 403, "import detail": 404, **dict.fromkeys(CUSTOMER_BASE, 404)},
    "manager_a": dict.fromkeys(CUSTOMER_BASE, 404),
    "staff_a": {
        "import": 403,
        "import detail": 404,
        "personalise": 403,
        **dict.fromkeys(CUSTOMER_BASE, 404),
    },
}


def expected_status(persona: str, page: Page) -> int:
    return NOT_OPEN.get(persona, {}).get(page.name, 200)


@dataclass(frozen=True)
class Page:
    name: str
    url: str


def main_pages(world) -> list[Page]:
    """Builds one of each object the pages show, in unit A (Lyon), and lists the pages."""
    with db_scope(ALL):
        contact = ContactFactory(unit=world.unit_a, first_name="Léa", last_name="Dupré")
        # One woman in two stores, and a pair waiting for review (e-mail and phone disagree).
        ContactFactory(unit=world.unit_a, email="lea.dupre@orange.fr", first_name="Léa")
        ContactFactory(unit=world.unit_a2, email=None, phone="+33698765432", first_name="Léa")
        shared = ContactFactory(
            unit=world.unit_b, email="lea.dupre@orange.fr", phone="+33698765432", first_name="Léa"
        )
        person = RecordLink.objects.get(contact=shared).person
        contact_import = import_prepare(
            actor=world.manager_a,
            unit=world.unit_a,
            file_name="clients.csv",
            content="Prénom;Nom;Email;Mobile\nLéa;Martin;lea@example.com;0612345678\n".encode(),
        )
        template = email_template(world)
        campaign = local_campaign(world, template=template)
        segment = campaign.segment
        scheduled = local_campaign(world, template=template)
        services.campaign_submit(actor=world.hq_admin, campaign=scheduled)
        services.campaign_schedule(
            actor=world.hq_admin, campaign=scheduled, send_at=timezone.now() + dt.timedelta(days=3)
        )
        journey = _journey_with_history(world, template)
    return [
        Page("home", reverse("home")),
        Page("contacts", reverse("contact_list")),
        Page("contact detail", reverse("contact_detail", args=[contact.public_id])),
        Page("import", reverse("import_list")),
        Page("import detail", reverse("import_detail", args=[contact_import.public_id])),
        Page("segments", reverse("segment_list")),
        Page("segment builder", reverse("segment_detail", args=[segment.public_id])),
        Page("templates", reverse("template_list")),
        Page("personalise", reverse("template_personalise", args=[template.public_id])),
        Page("campaigns", reverse("campaign_list")),
        Page("campaign detail", reverse("campaign_detail", args=[campaign.public_id])),
        Page("scheduled campaign", reverse("campaign_detail", args=[scheduled.public_id])),
        Page("calendar", reverse("campaign_calendar")),
        Page("rules", reverse("sending_rules")),
        Page("results", reverse("results")),
        Page("profile", reverse("profile")),
        Page("customer base", reverse("person_search") + "?q=lea"),
        Page("person card", reverse("person_detail", args=[person.public_id])),
        Page("review queue", reverse("review_queue")),
        Page("identity history", reverse("change_history")),
        Page("identity settings", reverse("identity_settings")),
        Page("journey report", reverse("journey_report", args=[journey.public_id])),
    ]


def _journey_with_history(world, template):
    """HQ's journey with a control group, run in unit A for two months: 120 entries whose
    window is over (every third held out), some with a purchase, and a few still waiting,
    so the report draws its steps, its lift with intervals and the network's beside it."""
    from enseigne.commerce.models import Order
    from enseigne.journeys import services as journeys
    from enseigne.journeys.models import Enrollment, JourneyRun
    from tests.campaign_helpers import contacts

    journey = journeys.journey_template_create(
        actor=world.hq_admin, owner=world.root, name="Bienvenue", holdout_percent=30
    )
    journeys.journey_publish(
        actor=world.hq_admin,
        template=journey,
        flow={
            "trigger": {"kind": "consent", "channel": "email"},
            "goal": {"kind": "purchase"},
            "start": "hello",
            "steps": {
                "hello": {"kind": "send_email", "template": str(template.public_id), "next": "out"},
                "out": {"kind": "exit"},
            },
        },
    )
    run = journeys.journey_activate(
        actor=world.hq_admin, template=journey, unit=world.unit_a, starts_on=timezone.localdate()
    )
    JourneyRun.objects.filter(pk=run.pk).update(
        starts_on=timezone.localdate() - dt.timedelta(days=60)
    )
    now = timezone.now()
    entries, orders = [], []
    for i, person in enumerate(contacts(world.unit_a, 125, start=9000)):
        entered = now - dt.timedelta(days=40 if i < 120 else 2)
        entries.append(
            Enrollment(
                run=run,
                version_id=run.version_id,
                contact=person,
                unit_path=run.unit_path,
                occurrence="",
                step="out",
                status=Enrollment.Status.DONE,
                held_out=i % 3 == 0,
                entered_at=entered,
                updated_at=entered,
            )
        )
        if i % 4 == 0:
            orders.append(
                Order(
                    unit=world.unit_a,
                    unit_path=world.unit_a.path,
                    external_id=f"J{i}",
                    contact=person,
                    occurred_at=entered + dt.timedelta(days=3),
                    total=20 + i % 13,
                    source=Order.Source.DEMO,
                )
            )
    Enrollment.objects.bulk_create(entries)
    Order.objects.bulk_create(orders)
    return journey


LOGIN = Page("login", "/login/")
