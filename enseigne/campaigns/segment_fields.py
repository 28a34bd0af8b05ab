"""Segment conditions on what a record received, opened and clicked (issue 21).

Offered to the segment builder through ``contacts.segments.ExtraField`` (settings
``ENSEIGNE_SEGMENT_FIELDS``). Each compiles to "the contact's id is among the contacts of
these ledger rows", read through the reader's row-level scope like every other query:

- *received*: the ledger row was sent;
- *opened*: an open event names the ledger row (only where the contact accepted per-person
  open tracking, so the label says "where recorded"); machine opens never count;
- *clicked*: a click event names the ledger row; machine clicks never count.

"This campaign" takes a campaign the reader can see; "within the last N days" counts the
send's or the event's time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.contacts.segments import CHOICE, NUMBER, ExtraField, days_value
from enseigne.delivery.models import Event
from enseigne.lib.ids import parse_uuid
from enseigne.network.models import User

from .models import Campaign, Recipient
from .selectors import campaigns_for_user

OPS = {
    "campaign": CHOICE,
    "not_campaign": CHOICE,
    "any_in_last_days": NUMBER,
    "none_in_last_days": NUMBER,
}
NEGATIONS = {"not_campaign": "campaign", "none_in_last_days": "any_in_last_days"}
# The campaigns the builder lists (the latest launched); any visible one compiles.
CHOICES_SHOWN = 200


def _campaign(user: User, value, where: str) -> Campaign:
    found = campaigns_for_user(user).filter(public_id=value).first() if parse_uuid(value) else None
    if found is None:
        raise ValidationError(_("%(where)s: unknown campaign.") % {"where": where})
    return found


def _campaign_choices(user: User) -> list[list[str]]:
    launched = (
        campaigns_for_user(user)
        .filter(launched_at__isnull=False)
        .order_by("-launched_at", "-pk")[:CHOICES_SHOWN]
    )
    return [[str(c.public_id), f"{c.name} ({c.launched_at:%Y-%m-%d})"] for c in launched]


def _ledger_rows(kind: int | None, campaign: Campaign | None, since: dt.datetime | None):
    """The ledger rows that were sent (``kind`` None) or have a human event of ``kind``."""
    rows: QuerySet = Recipient.objects.filter(contact__isnull=False)
    if kind is None:
        rows = rows.filter(status=Recipient.Status.SENT)
        if campaign is not None:
            rows = rows.filter(campaign=campaign)
        if since is not None:
            rows = rows.filter(sent_at__gte=since)
        return rows
    events = Event.objects.filter(kind=kind, machine=False, recipient_id__isnull=False)
    if campaign is not None:
        events = events.filter(campaign_id=campaign.pk)
        rows = rows.filter(campaign=campaign)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    return rows.filter(pk__in=events.values("recipient_id"))


def _compiler(kind: int | None):
    def compile_condition(user: User, op: str, value, where: str, days: int | None) -> Q:
        campaign, since = None, None
        if op in {"campaign", "not_campaign"}:
            campaign = _campaign(user, value, where)
        else:
            since = timezone.now() - dt.timedelta(days=days_value(value, where))
        did = Q(Exists(_ledger_rows(kind, campaign, since).filter(contact=OuterRef("pk"))))
        return ~did if op in NEGATIONS else did

    return compile_condition


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        ExtraField(
            field="received",
            label=gettext_lazy("Received a campaign"),
            ops=OPS,
            compile=_compiler(None),
            choices=_campaign_choices,
            negations=NEGATIONS,
        ),
        ExtraField(
            field="opened",
            label=gettext_lazy("Opened a campaign (where recorded)"),
            ops=OPS,
            compile=_compiler(Event.Kind.OPENED),
            choices=_campaign_choices,
            negations=NEGATIONS,
        ),
        ExtraField(
            field="clicked",
            label=gettext_lazy("Clicked in a campaign"),
            ops=OPS,
            compile=_compiler(Event.Kind.CLICKED),
            choices=_campaign_choices,
            negations=NEGATIONS,
        ),
    ]
