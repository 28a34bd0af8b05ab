"""What starts a journey, read from the database (the DB is the truth: no signals, no hooks
in earlier apps). Each run's reading goes on from where it stopped (``JourneyRun``'s
``events_read_at`` and ``days_read_on``), under a row lock another worker skips.

**When.** The minute's tick reads every trigger (``tasks.journeys_tick``); between two
ticks, quick passes every ``tasks.QUICK_EVERY`` seconds read only what a person waits on
(``QUICK_KINDS``: a consent, a purchase, a click), so one of them enters and takes its first
step within seconds, not at the next minute. Segment triggers are read every
``SEGMENT_EVERY`` (a whole segment is compiled and listed each time).

**Nothing missed, nothing twice.** Rows that record a moment (consents, orders, clicks) are
read again over a margin before the last pass — ``MARGIN`` at the minute's tick, so a
transaction that committed up to ten minutes late is still seen, ``QUICK_MARGIN`` at a
quick pass, which keeps those cheap — and the enrollment's occurrence (the consent event,
the order, the message) keeps a row read twice from entering twice. Only what happened
after the run was activated enters: activating a journey does not replay the past.

- **consent**: a marketing consent for the run's channel recorded by the store, for
  records whose consent is still valid now (occurrence: the consent event).
- **date**: once per local day of the store, the records whose date (the birthday or a date
  attribute written YYYY-MM-DD) falls on that day, shifted by the trigger's offset (−7: a week
  before). The occurrence is the date's year: a birthday enters once a year, whatever the
  passes. 29 February is celebrated on 28 February in other years. Days missed while no
  worker ran are read on the next pass, up to ``CATCH_UP_DAYS``.
- **inactivity**: once per local day, the records of the store whose last order was exactly
  N days before that day (occurrence: that last order's day), so each lapse enters once.
- **event**: orders the store recorded (``created_at``) — ``purchase``: an order of the
  record totalling more than zero (the segment conditions' purchase: a return or an order
  of returns never enters; occurrence: the order); ``first_purchase``: the record's first
  such order in the store (occurrence ``first``: once); ``category_purchase``: such an order
  with a sold line in the trigger's category, case-blind (occurrence: the order). A
  purchase that took place more than ``LATE_PURCHASE`` before the store reported it (a
  file of last month's sales) does not enter. ``click``: a person's click (never a
  machine's: scanners, prefetch) on a message of the store, of the trigger's campaign or of
  any campaign but the journey's own (occurrence: the message, so three links clicked in
  one e-mail enter once). A record's several events read in one pass enter once (its latest).
- **segment**: entering the trigger's segment (its rules, a saved segment shared with the
  store, RFM groups or personas — the segment builder's own conditions, read as the
  version's publisher's, like a condition step). Each pass lists the members now against the
  run's snapshot of the previous pass (``SegmentMember``): the records that were not
  members enter (occurrence: the day they entered, on the store's clock), the records that
  left lose their row, so leaving and coming back later enters again. **The first pass
  after activation only records the members**, entering nobody: activating a journey on a
  segment does not send to the whole segment. A new version whose trigger follows another
  segment takes a new snapshot the same way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, Max, Min, OuterRef, Q
from django.utils import timezone

from enseigne.campaigns.models import Campaign, Recipient
from enseigne.commerce.models import Order, OrderLine
from enseigne.commerce.segment_fields import purchases
from enseigne.contacts.models import VALID_CONSENT, ConsentEvent, Contact, Segment
from enseigne.delivery.models import Event
from enseigne.journeys import engine
from enseigne.journeys import flow as flows
from enseigne.journeys.models import JourneyRun, JourneySend, SegmentMember
from enseigne.journeys.timing import local_moment
from enseigne.lib.ids import parse_uuid
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.selectors import unit_time_zone

logger = logging.getLogger(__name__)
MARGIN = dt.timedelta(minutes=10)
QUICK_MARGIN = dt.timedelta(seconds=30)
QUICK_KINDS = ("consent", "event")
SEGMENT_EVERY = dt.timedelta(minutes=5)
LATE_PURCHASE = dt.timedelta(days=7)
CATCH_UP_DAYS = 7
CHUNK = 5000
MARKETING = ConsentEvent._meta.get_field("purpose").default
ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def run_triggers(now: dt.datetime | None = None, *, quick: bool = False) -> int:
    """One pass over every running journey's trigger (``quick``: only ``QUICK_KINDS``, over
    ``QUICK_MARGIN``); returns how many records entered."""
    now = now or timezone.now()
    margin = QUICK_MARGIN if quick else MARGIN
    entered = 0
    with db_scope(ALL):
        runs = list(
            JourneyRun.objects.filter(status=JourneyRun.Status.ACTIVE).select_related(
                "template__created_by", "version__published_by", "unit__profile"
            )
        )
        for run in runs:
            try:
                trigger = flows.parse(run.version.flow).trigger
            except ValidationError:
                logger.error("Journey run %s: its version no longer reads", run.pk)
                continue
            if quick and trigger["kind"] not in QUICK_KINDS:
                continue
            zone = ZoneInfo(unit_time_zone(run.unit))
            today = now.astimezone(zone).date()
            if today < run.starts_on:
                continue
            with transaction.atomic():
                progress = (
                    JourneyRun.objects.select_for_update(skip_locked=True)
                    .filter(pk=run.pk, status=JourneyRun.Status.ACTIVE)
                    .values("events_read_at", "days_read_on")
                    .first()
                )
                if progress is None:
                    continue  # another worker is reading this run's trigger, or it stopped
                run.events_read_at = progress["events_read_at"]
                run.days_read_on = progress["days_read_on"]
                entered += _read(run, trigger, now, zone, today, margin)
    return entered


def _read(
    run: JourneyRun,
    trigger: Mapping[str, Any],
    now: dt.datetime,
    zone: ZoneInfo,
    today: dt.date,
    margin: dt.timedelta,
) -> int:
    kind = trigger["kind"]
    if kind == "consent":
        return _enter_read(run, _consents(run, trigger["channel"], _since(run, margin), now), now)
    if kind == "event":
        since = _since(run, margin)
        read = _clicks if trigger["event"] == "click" else _purchases
        return _enter_read(run, read(run, trigger, since, now), now)
    if kind == "segment":
        return _segment(run, trigger, now, today)
    if kind not in ("date", "inactivity"):
        return 0
    first = today if run.days_read_on is None else run.days_read_on + dt.timedelta(days=1)
    first = max(first, today - dt.timedelta(days=CATCH_UP_DAYS - 1), run.starts_on)
    entered, day = 0, first
    while day <= today:
        if kind == "date":
            entered += _dates(run, trigger, day, now)
        else:
            entered += _lapses(run, int(trigger["days"]), day, zone, now)
        day += dt.timedelta(days=1)
    JourneyRun.objects.filter(pk=run.pk).update(days_read_on=today)
    return entered


def _since(run: JourneyRun, margin: dt.timedelta) -> dt.datetime:
    """Where a reading of recorded moments starts: the last pass less the margin, never
    before the run was activated."""
    return max(run.created_at, (run.events_read_at or run.created_at) - margin)


def _enter_read(run: JourneyRun, occurrences: dict[int, str], now: dt.datetime) -> int:
    """Enter each record with its occurrence (all in one go: bench/journeys.py, 6,000
    consents one call each made the pass 7 s), then move the run's reading to ``now``."""
    entered = engine.enroll_each(run, occurrences, now=now) if occurrences else 0
    JourneyRun.objects.filter(pk=run.pk).update(events_read_at=now)
    return entered


def _consents(
    run: JourneyRun, channel: str, since: dt.datetime, now: dt.datetime
) -> dict[int, str]:
    events = (
        ConsentEvent.objects.filter(
            unit_path=run.unit_path,
            channel=channel,
            purpose=MARKETING,
            status__in=VALID_CONSENT,
            recorded_at__gte=since,
            recorded_at__lte=now,
        )
        .order_by("id")
        .values_list("contact_id", "pk")
    )
    by_contact = dict(events)  # the latest consent event of each record
    valid = set(
        Contact.objects.filter(
            pk__in=list(by_contact), **{f"{channel}_consent__in": VALID_CONSENT}
        ).values_list("pk", flat=True)
    )
    return {
        contact_id: str(event_id)
        for contact_id, event_id in by_contact.items()
        if contact_id in valid
    }


def _purchases(
    run: JourneyRun, trigger: Mapping[str, Any], since: dt.datetime, now: dt.datetime
) -> dict[int, str]:
    """The store's purchases recorded in [since, now] that took place after the run's
    activation (and at most ``LATE_PURCHASE`` before they were recorded): record → order."""
    orders = (
        purchases()
        .filter(
            unit_id=run.unit_id,
            created_at__gte=since,
            created_at__lte=now,
            # (The bound on the index's time, then the rule on each order.)
            occurred_at__gte=max(run.created_at, since - LATE_PURCHASE),
        )
        .filter(occurred_at__gte=F("created_at") - LATE_PURCHASE)
    )
    event = trigger["event"]
    if event == "category_purchase":
        sold = OrderLine.objects.filter(
            order=OuterRef("pk"), is_return=False, category__iexact=trigger["category"].strip()
        )
        orders = orders.filter(Exists(sold))
    found = orders.order_by("id").values_list("contact_id", "pk", "occurred_at")
    if event != "first_purchase":
        return {contact_id: str(order_id) for contact_id, order_id, _at in found}
    earliest: dict[int, dt.datetime] = {}
    for contact_id, _order_id, at in found:
        earliest[contact_id] = min(at, earliest.get(contact_id, at))
    # The record's first purchase in the store is one of these: none took place before.
    firsts = (
        purchases()
        .filter(unit_id=run.unit_id, contact_id__in=list(earliest))
        .values("contact_id")
        .annotate(first=Min("occurred_at"))
        .order_by()
        .values_list("contact_id", "first")
    )
    return {contact_id: "first" for contact_id, first in firsts if first >= earliest[contact_id]}


def _clicks(
    run: JourneyRun, trigger: Mapping[str, Any], since: dt.datetime, now: dt.datetime
) -> dict[int, str]:
    """People's clicks (not machines') on the store's messages in [since, now]: record →
    message (the ledger row)."""
    clicks = Event.objects.filter(
        kind=Event.Kind.CLICKED,
        machine=False,
        unit_id=run.unit_id,
        occurred_at__gte=since,
        occurred_at__lte=now,
        recipient_id__isnull=False,
    )
    public_id = parse_uuid(trigger.get("campaign")) if trigger.get("campaign") else None
    if public_id is not None:
        campaign = Campaign.objects.filter(public_id=public_id)
        clicks = clicks.filter(campaign_id__in=list(campaign.values_list("pk", flat=True)))
    # A click on the journey's own message does not enter it again.
    own = JourneySend.objects.filter(run=run).values_list("campaign_id", flat=True)
    clicks = clicks.exclude(campaign_id__in=list(own))
    messages = sorted({m for m in clicks.values_list("recipient_id", flat=True) if m is not None})
    found = (
        Recipient.objects.filter(pk__in=messages, unit_id=run.unit_id, contact__isnull=False)
        .order_by("pk")
        .values_list("contact_id", "pk")
    )
    return {contact_id: str(message_id) for contact_id, message_id in found}


def trigger_key(trigger: Mapping[str, Any]) -> str:
    return hashlib.blake2b(
        json.dumps(trigger, sort_keys=True, default=str).encode(), digest_size=16
    ).hexdigest()


def segment_rules(trigger: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """A segment trigger's rules as seen from the node at ``path`` (a store running it, or
    the journey's owner publishing it): its own rules, or its saved segment's when that is
    shared with the node (owned by it or a node above it); None when there are none."""
    rules = flows.trigger_rules(trigger)
    if rules is not None:
        return rules
    public_id = parse_uuid(trigger.get("segment"))
    segment = (
        None
        if public_id is None
        else Segment.objects.filter(public_id=public_id).values_list("rules", "unit_path").first()
    )
    if segment is None or not path.startswith(segment[1]):
        return None
    return segment[0]


def segment_filter(run: JourneyRun, trigger: Mapping[str, Any]) -> Q | None:
    """The records a segment trigger follows, as a filter (None: its rules no longer read,
    its saved segment is gone or not shared with the run's store)."""
    rules = segment_rules(trigger, run.unit_path)
    return None if rules is None else engine.compile_rules(run.version, rules)


def _segment(run: JourneyRun, trigger: Mapping[str, Any], now: dt.datetime, today: dt.date) -> int:
    if run.events_read_at is not None and now - run.events_read_at < SEGMENT_EVERY:
        return 0
    matching = segment_filter(run, trigger)
    if matching is None:
        logger.warning("Journey run %s: its segment trigger no longer reads", run.pk)
        return 0
    members = set(
        Contact.objects.filter(matching, unit_path=run.unit_path).values_list("pk", flat=True)
    )
    key = trigger_key(trigger)
    snapshot = SegmentMember.objects.filter(run=run)
    known: set[int] = set()
    stale = False
    for contact_id, taken_for in snapshot.values_list("contact_id", "trigger_key"):
        known.add(contact_id)
        stale = stale or taken_for != key
    first = run.events_read_at is None or stale
    if stale:  # another segment: a new snapshot, nobody enters
        snapshot.delete()
        known = set()
    entering, leaving = sorted(members - known), sorted(known - members)
    for start in range(0, len(leaving), CHUNK):
        snapshot.filter(contact_id__in=leaving[start : start + CHUNK]).delete()
    SegmentMember.objects.bulk_create(
        (
            SegmentMember(
                run=run, contact_id=pk, unit_path=run.unit_path, since=now, trigger_key=key
            )
            for pk in entering
        ),
        batch_size=CHUNK,
        ignore_conflicts=True,
    )
    entered = 0
    if entering and not first:
        entered = engine.enroll(run, entering, occurrence=today.isoformat(), now=now)
    JourneyRun.objects.filter(pk=run.pk).update(events_read_at=now)
    return entered


def _dates(run: JourneyRun, trigger, day: dt.date, now: dt.datetime) -> int:
    """The records whose date falls ``day`` − offset (a 7-day-before trigger reads the dates
    of a week later)."""
    target = day - dt.timedelta(days=int(trigger.get("offset_days", 0) or 0))
    field = trigger["field"]
    days = [(target.month, target.day)]
    if (target.month, target.day) == (2, 28) and not _leap(target.year):
        days.append((2, 29))
    records = Contact.objects.filter(unit_path=run.unit_path)
    if field == "birthday":
        matching = Q()
        for month, number in days:
            matching |= Q(birthday__month=month, birthday__day=number)
    elif ATTRIBUTE.match(field):
        matching = Q()
        for month, number in days:
            matching |= Q(**{f"attributes__{field}__endswith": f"-{month:02d}-{number:02d}"})
    else:
        return 0
    ids = list(records.filter(matching).values_list("pk", flat=True))
    return engine.enroll(run, ids, occurrence=str(target.year), now=now) if ids else 0


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _lapses(run: JourneyRun, days: int, day: dt.date, zone: ZoneInfo, now: dt.datetime) -> int:
    """The records whose last order in the store was on ``day`` − ``days`` (store's clock)."""
    lapsed = day - dt.timedelta(days=days)
    start = local_moment(lapsed, dt.time(0, 0), zone)
    end = local_moment(lapsed + dt.timedelta(days=1), dt.time(0, 0), zone)
    ids = list(
        Order.objects.filter(unit_id=run.unit_id, contact__isnull=False)
        .values("contact_id")
        .annotate(last=Max("occurred_at"))
        .filter(last__gte=start, last__lt=end)
        .values_list("contact_id", flat=True)
    )
    return engine.enroll(run, ids, occurrence=lapsed.isoformat(), now=now) if ids else 0
