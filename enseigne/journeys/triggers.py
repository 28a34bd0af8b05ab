"""What starts a journey, read from the database every minute (the DB is the truth: no
signals, no hooks in earlier apps).

- **consent**: a consent for the run's channel recorded by the store since the last pass
  (read again over a margin, ``MARGIN``, so a transaction that committed a little late is
  still seen; the enrollment's occurrence, the consent event, keeps it from entering twice),
  for records whose consent is still valid now. Only consents recorded after the run was
  activated: activating a welcome journey does not welcome the whole base.
- **date**: once per local day of the store, the records whose date (the birthday or a date
  attribute written YYYY-MM-DD) falls on that day, shifted by the trigger's offset (−7: a week
  before). The occurrence is the date's year: a birthday enters once a year, whatever the
  passes. 29 February is celebrated on 28 February in other years. Days missed while no
  worker ran are read on the next pass, up to ``CATCH_UP_DAYS``.
- **inactivity**: once per local day, the records of the store whose last order was exactly
  N days before that day (occurrence: that last order's day), so each lapse enters once.

Events (a purchase, a click) and entering a segment, an RFM group or a persona are not
read yet (docs/decisions.md, "Journeys").
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from enseigne.commerce.models import Order
from enseigne.contacts.models import VALID_CONSENT, ConsentEvent, Contact
from enseigne.journeys import engine
from enseigne.journeys import flow as flows
from enseigne.journeys.models import JourneyRun
from enseigne.journeys.timing import local_moment
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.selectors import unit_time_zone

logger = logging.getLogger(__name__)
MARGIN = dt.timedelta(minutes=10)
CATCH_UP_DAYS = 7
ATTRIBUTE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def run_triggers(now: dt.datetime | None = None) -> int:
    """One pass over every running journey's trigger; returns how many records entered."""
    now = now or timezone.now()
    entered = 0
    with db_scope(ALL):
        runs = list(
            JourneyRun.objects.filter(status=JourneyRun.Status.ACTIVE).select_related(
                "template", "version", "unit__profile"
            )
        )
        for run in runs:
            try:
                trigger = flows.parse(run.version.flow).trigger
            except ValidationError:
                logger.error("Journey run %s: its version no longer reads", run.pk)
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
                entered += _read(run, trigger, now, zone, today)
    return entered


def _read(run: JourneyRun, trigger, now: dt.datetime, zone: ZoneInfo, today: dt.date) -> int:
    kind = trigger["kind"]
    if kind == "consent":
        return _consents(run, trigger["channel"], now)
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


def _consents(run: JourneyRun, channel: str, now: dt.datetime) -> int:
    since = max(run.created_at, (run.events_read_at or run.created_at) - MARGIN)
    events = (
        ConsentEvent.objects.filter(
            unit_path=run.unit_path,
            channel=channel,
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
    # Each consent event is its own occurrence; all enter in one go (bench/journeys.py:
    # 6,000 consents, one call each, made the pass 7 s).
    entered = engine.enroll_each(
        run,
        {
            contact_id: str(event_id)
            for contact_id, event_id in by_contact.items()
            if contact_id in valid
        },
        now=now,
    )
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
