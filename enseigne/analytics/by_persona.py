"""Campaign results among the recipients of one persona (issue 21): the campaign report's
and the gallery's persona filter.

The daily rollups have no persona, so these counters are read from the events log itself,
for the ledger rows whose record has the persona now (``PersonaRecord``, the latest
assignment, not the one at sending time). The same events as the rollups count
(``rollups.COUNTED``, machine events left out); a unique clicker is a recipient with a
counted click. Opens carry a recipient only where per-person open tracking was accepted
(COMPLIANCE.md): they are left out here rather than shown too low.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Count, QuerySet, Sum

from enseigne.analytics.rollups import COUNTED, Counters
from enseigne.campaigns.models import Recipient
from enseigne.delivery.models import Event
from enseigne.personas.models import Persona, PersonaRecord

K = Event.Kind
# Below this many messages delivered to a persona, the report says its rates say little.
FEW_DELIVERED = 100


def persona_counters(
    events: QuerySet[Event], campaign_ids: Iterable[int], persona: Persona | None
) -> dict[int, Counters]:
    """Per campaign of ``campaign_ids``: the counters of ``events`` (already narrowed to the
    reader's units and period) whose recipient's record has ``persona`` — every recipient's
    for None, counted the same way, to set beside it. One grouped query."""
    ids = list(campaign_ids)
    events = events.filter(machine=False, campaign_id__in=ids)
    if persona is not None:
        events = events.filter(
            recipient_id__in=Recipient.objects.filter(
                campaign_id__in=ids,
                contact_id__in=PersonaRecord.objects.filter(persona=persona).values("contact_id"),
            ).values("pk")
        )
    rows = (
        events.exclude(kind=K.OPENED)
        .values_list("campaign_id", "kind")
        .annotate(n=Count("id"), people=Count("recipient_id", distinct=True), amount=Sum("amount"))
        .order_by()
    )
    out: dict[int, Counters] = defaultdict(Counters)
    for campaign_id, kind, n, people, amount in rows:
        if kind not in COUNTED:
            continue
        counters = out[campaign_id]
        setattr(counters, COUNTED[kind], n)
        if kind == K.CLICKED:
            counters.clickers = people
        if amount:
            counters.revenue += amount
    return dict(out)


def events_since(since: dt.datetime) -> QuerySet[Event]:
    return Event.objects.filter(occurred_at__gte=since)
