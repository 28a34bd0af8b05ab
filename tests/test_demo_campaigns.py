"""The demo's campaigns serve the README's steps: every gallery entry is a starting point a
store can give an audience and a date; the calendar has dated drafts to drag."""

from __future__ import annotations

import pytest
from django.urls import reverse

from enseigne.analytics import selectors as analytics
from enseigne.campaigns.models import Campaign
from enseigne.contacts.models import Segment
from enseigne.demo import seed
from enseigne.network.models import OrgNode

pytestmark = pytest.mark.slow  # seeds the demo


def test_every_demo_gallery_entry_becomes_a_lyon_draft_with_audience_and_date(client, db):
    seed.seed(contacts_total=3000, purchases=False)
    entries = analytics.gallery()
    assert len(entries) >= 10
    lyon = OrgNode.objects.get(code="lyon")
    segment = Segment.objects.filter(owner=lyon).first()
    assert client.login(username="lyon@maison-lumiere.test", password=seed.PASSWORD)
    failures = []
    for entry in entries:
        source = entry["campaign"]
        before = set(Campaign.objects.filter(owner=lyon).values_list("pk", flat=True))
        response = client.post(reverse("gallery_copy", args=[source.public_id]))
        made = Campaign.objects.filter(owner=lyon).exclude(pk__in=before)
        if response.status_code != 302 or made.count() != 1:
            failures.append((source.name, response.status_code, made.count()))
            continue
        draft = made.get()
        assert response["Location"] == reverse("campaign_edit", args=[draft.public_id])
        edit = client.post(
            response["Location"],
            {
                "name": draft.name,
                "channel": draft.channel,
                "template": draft.template_id,
                "local_version": draft.local_version_id,
                "segment": segment.pk,
                "send_at": "2099-05-02T10:00",
            },
        )
        if edit.status_code != 302:
            failures.append((source.name, "edit", edit.context["form"].errors))
            continue
        draft.refresh_from_db()
        assert (draft.status, draft.segment_id, draft.send_at.year) == ("draft", segment.pk, 2099)
        # The copied words are complete: it can be sent for approval as it is.
        assert draft.local_version.is_usable, (source.name, draft.local_version.problems)
    assert failures == []


def test_the_demo_has_dated_drafts_for_the_calendar(db):
    seed.seed(contacts_total=300, purchases=False)
    drafts = Campaign.objects.filter(status=Campaign.Status.DRAFT, send_at__isnull=False)
    by_name = {c.name: c for c in drafts}
    assert {"Flash samedi Lyon", "Nocturne déco Lyon", "Rentrée des luminaires"} <= set(by_name)
    assert by_name["Flash samedi Lyon"].send_at.weekday() == 5  # a Saturday, as its name says
    national = by_name["Rentrée des luminaires"]
    assert national.relay_deadline < national.send_at
