"""Calendar moves and changes to the sending rules do nothing heavy in the request (issue 19):
on a network of the demo's size (20,000 contacts) they make the same queries as on a small
one, none of them reads the contacts, and the audiences are counted by the worker."""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from enseigne.campaigns import services
from enseigne.campaigns.figures import figures_compute
from enseigne.contacts.models import ConsentStatus, Contact
from tests.campaign_helpers import contacts, email_template, local_campaign

pytestmark = pytest.mark.django_db

DEMO_CONTACTS = 20_000
HEAVY = ("enseigne.campaigns.audience.preview", "enseigne.campaigns.audience.freeze")


def _never(*args, **kwargs):
    raise AssertionError("an audience was counted in the request")


def _many_contacts(world, n: int) -> None:
    units = [world.unit_a, world.unit_a2, world.unit_b]
    Contact.objects.bulk_create(
        [
            Contact(
                unit=units[i % 3],
                unit_path=units[i % 3].path,
                email=f"bulk.{i}@example.com",
                first_name=f"Prénom{i}",
                email_consent=ConsentStatus.GRANTED,
            )
            for i in range(n)
        ],
        batch_size=2_000,
    )


def _setting(world):
    """A national draft and a scheduled national campaign (on the calendar), a scheduled
    store campaign, each counted once by the worker."""
    contacts(world.unit_a, 5)
    template = email_template(world)
    later = timezone.now() + dt.timedelta(days=10)
    draft = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Brouillon", template=template, send_at=later
    )
    scheduled = services.campaign_create_national(
        actor=world.hq_admin, channel="email", name="Programmée", template=template
    )
    services.campaign_submit(actor=world.hq_admin, campaign=scheduled)
    services.campaign_schedule(actor=world.hq_admin, campaign=scheduled, send_at=later)
    store = local_campaign(world, template=template)
    services.campaign_submit(actor=world.hq_admin, campaign=store)
    services.campaign_schedule(actor=world.hq_admin, campaign=store, send_at=later)
    for campaign in (draft, scheduled, store):
        figures_compute(campaign.pk)
    return draft, scheduled


def _writes(client, world, draft, scheduled, step: int) -> dict[str, list[str]]:
    """Each write as the people do it; the SQL each one ran, and the slowest time."""
    when = (timezone.now() + dt.timedelta(days=12 + step)).replace(microsecond=0)
    client.force_login(world.hq_admin)
    posts = {
        "move a draft": (f"/campaigns/{draft.public_id}/move/", {"send_at": when.isoformat()}),
        "move a scheduled campaign": (
            f"/campaigns/{scheduled.public_id}/move/",
            {"send_at": when.isoformat()},
        ),
        "pressure caps": (
            "/campaigns/rules/",
            {"part": "pressure", "channel_0": "email", "most_0": str(2 + step), "days_0": "7"},
        ),
        "policy": (
            "/campaigns/rules/",
            {
                "part": "policy",
                "sms_days": ["0", "1", "2", "3", "4", "5"],
                "sms_start": "08:00",
                "sms_end": f"{19 + step}:00",
                "sms_holiday_country": "FR",
                "pressure_priority": "national_first",
                "sms_segment_cost": "0.045",
                "email_thousand_cost": "0.8",
                "national_cofunding_percent": "50",
                "late_start_minutes": "60",
                "sms_stop_scope": "brand",
                "attribution_model": "last_click",
                "attribution_window_days": "30",
            },
        ),
        "budget": (
            "/campaigns/rules/",
            {
                "part": "budget",
                "unit": str(world.unit_a.pk),
                "starts_on": "2026-01-01",
                "ends_on": "2026-12-31",
                "amount": str(100 + step),
            },
        ),
    }
    queries = {}
    slowest = 0.0
    for name, (url, data) in posts.items():
        with (
            mock.patch(HEAVY[0], side_effect=_never),
            mock.patch(HEAVY[1], side_effect=_never),
            CaptureQueriesContext(connection) as captured,
        ):
            started = time.perf_counter()
            response = client.post(url, {**data, "confirm": "1"})
            slowest = max(slowest, time.perf_counter() - started)
        assert response.status_code in (200, 302), (name, response.content[:300])
        if url.endswith("/move/"):
            assert response.json()["moved"] is True, name
        else:
            assert response.status_code == 302, (name, response.content[:300])
        queries[name] = [q["sql"] for q in captured.captured_queries]
    queries["slowest"] = [f"{slowest:.3f}"]
    return queries


def test_moves_and_rule_changes_do_not_grow_with_the_contacts(world, client):
    draft, scheduled = _setting(world)
    _writes(client, world, draft, scheduled, 0)  # first times: the session, figures' rows
    small = _writes(client, world, draft, scheduled, 1)
    _many_contacts(world, DEMO_CONTACTS)
    assert Contact.objects.count() == DEMO_CONTACTS + 5
    demo = _writes(client, world, draft, scheduled, 2)
    for name, statements in demo.items():
        if name == "slowest":
            continue
        assert len(statements) == len(small[name]), name
        assert not [s for s in statements if '"contacts_contact"' in s], name
        # Bounded, whatever the network's size (the sessions, the audit line, the figures'
        # requests for the campaigns still to send).
        assert len(statements) < 80, (name, len(statements))
    # Not a benchmark: a request that counted 20,000 contacts would take seconds here.
    assert float(demo["slowest"][0]) < 2.0
