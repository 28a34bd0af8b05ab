"""Daily rollups of the events log, refreshed incrementally.

A pass rebuilds only the days from ``RollupState.dirty_from`` on (normally today, and
yesterday just after midnight): its cost follows the day's events, not the log's size.
Sales reported late (a conversions import) send the pass back to their day by
themselves; other events written with an old date call ``touch(when)`` (or
``enseigne refresh_stats --from``). Days are counted in the
network's time zone (``TIME_ZONE``).

A pass counts the events that occurred up to ten minutes before it (``cutoff``); the
campaign report adds the raw events since (``selectors.campaign_rows``), so a click shows
up at once and a report reads at most a few minutes of raw events.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from enseigne.analytics import people
from enseigne.analytics.models import DailyStat, RollupState, UnitDay
from enseigne.campaigns import pricing
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.campaigns.selectors import policy_for
from enseigne.contacts.models import VALID_CONSENT, Channel, ConsentEvent, Contact
from enseigne.delivery.models import Event
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import path_filter
from enseigne.network.models import OrgNode
from enseigne.network.selectors import network_root
from enseigne.tracking.models import Conversion

# Events reach the table up to one writer interval (and one hand-off transaction) after
# they occurred: the next pass starts this much before the last one to catch them.
LAG = dt.timedelta(minutes=10)
K = Event.Kind
COUNTED = {
    K.SENT: "sent",
    K.DELIVERED: "delivered",
    K.OPENED: "opened",
    K.CLICKED: "clicks",
    K.UNSUBSCRIBED: "unsubscribed",
    K.BOUNCED: "bounced",
    K.COMPLAINED: "complained",
    K.CONVERTED: "conversions",
}
Key = tuple[dt.date, int | None, int, str, str]  # day, campaign, unit, unit path, channel


@dataclass
class Counters:
    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicks: int = 0
    clickers: int = 0
    unsubscribed: int = 0
    bounced: int = 0
    complained: int = 0
    conversions: int = 0
    revenue: Decimal = field(default_factory=Decimal)
    cost: Decimal = field(default_factory=Decimal)

    def add(self, other: Counters) -> None:
        for name in COUNTER_FIELDS:  # not fields(): the dashboards add thousands of these
            setattr(self, name, getattr(self, name) + getattr(other, name))


COUNTER_FIELDS = [f.name for f in fields(Counters)]


def local_midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(
        dt.datetime.combine(day, dt.time.min), timezone.get_default_timezone()
    )


def aggregate(
    start: dt.datetime,
    *,
    until: dt.datetime | None = None,
    campaign_id: int | None = None,
    unit_paths: Iterable[str] | None = None,
) -> dict[Key, Counters]:
    """Counters per (day, campaign, unit, channel) for the events from ``start`` (to ``until``).

    Machine opens and clicks are not counted. ``unit_paths`` keeps only those units' rows.
    """
    tz = timezone.get_default_timezone()
    events = _window(Event.objects.filter(machine=False), start, until, campaign_id, unit_paths)
    out: dict[Key, Counters] = defaultdict(Counters)
    rows = (
        events.annotate(day=TruncDate("occurred_at", tzinfo=tz))
        .values_list("day", "campaign_id", "unit_id", "unit_path", "channel", "kind")
        .annotate(n=Count("id"), amount=Sum("amount"))
        .order_by()
    )
    for day, campaign, unit, path, channel, kind, n, amount in rows:
        if unit is None or kind not in COUNTED:
            continue
        counters = out[(day, campaign, unit, path, channel)]
        setattr(counters, COUNTED[kind], getattr(counters, COUNTED[kind]) + n)
        if amount:
            counters.revenue += amount
    for key, n in _first_clicks(start, until, campaign_id, unit_paths):
        out[key].clickers += n
    _add_costs(out)
    return out


def _window(events, start, until, campaign_id, unit_paths):
    """``events`` from ``start`` (to ``until``), of one campaign and of some units if given."""
    events = events.filter(occurred_at__gte=start)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    if campaign_id is not None:
        events = events.filter(campaign_id=campaign_id)
    if unit_paths is not None:
        events = events.filter(path_filter(unit_paths))
    return events


def _first_clicks(start, until, campaign_id, unit_paths):
    """((day, campaign, unit, path, channel), n): recipients whose first counted click fell that day.

    A click is a first click when the same recipient has no earlier counted click on the
    campaign (an index probe on ``event_campaign_kind`` per recent click), so the
    database returns counts, not one row per clicker.
    """
    clicks = Event.objects.filter(kind=K.CLICKED, machine=False, recipient_id__isnull=False)
    recent = _window(clicks, start, until, campaign_id, unit_paths)
    earlier = clicks.filter(
        campaign_id=OuterRef("campaign_id"), recipient_id=OuterRef("recipient_id")
    ).filter(
        Q(occurred_at__lt=OuterRef("occurred_at"))
        | Q(occurred_at=OuterRef("occurred_at"), id__lt=OuterRef("id"))
    )
    rows = (
        recent.filter(~Exists(earlier))
        .annotate(day=TruncDate("occurred_at", tzinfo=timezone.get_default_timezone()))
        .values_list("day", "campaign_id", "unit_id", "unit_path", "channel")
        .annotate(n=Count("id"))
        .order_by()
    )
    for day, campaign, unit, path, channel, n in rows:
        yield (day, campaign, unit, path, channel), n


def _add_costs(out: dict[Key, Counters]) -> None:
    """The unit's share of what its sent messages cost, at the network's current prices."""
    campaign_ids = {key[1] for key, c in out.items() if c.sent and key[1] is not None}
    if not campaign_ids:
        return
    root = network_root()
    if root is None:
        return
    policy = policy_for(root)
    national = set(
        Campaign.objects.filter(pk__in=campaign_ids, kind=Campaign.Kind.NATIONAL).values_list(
            "pk", flat=True
        )
    )
    sms_keys = {(key[1], key[2]) for key, c in out.items() if c.sent and key[4] == Channel.SMS}
    segments: dict[tuple[int, int], int] = {}
    if sms_keys:
        # The pipeline gives every row of a (campaign, unit) the same segment count.
        segments = {
            (c, u): s
            for c, u, s in Recipient.objects.filter(
                campaign_id__in={c for c, _u in sms_keys},
                channel=Channel.SMS,
                status=Recipient.Status.SENT,
            )
            .values_list("campaign_id", "unit_id")
            .annotate(s=Max("segments"))
            .order_by()
        }
    for (_day, campaign, unit, _path, channel), counters in out.items():
        if not counters.sent or campaign is None:
            continue
        each = (
            pricing.billed_segments(segments.get((campaign, unit))) if channel == Channel.SMS else 0
        )
        counters.cost = pricing.paid_by_unit(
            policy,
            channel=channel,
            messages=counters.sent,
            segments=each * counters.sent,
            national=campaign in national,
        ).quantize(Decimal("0.0001"))


# -- the pass ----------------------------------------------------------------------------------


def refresh(now: dt.datetime | None = None) -> dict[str, int]:
    """Rebuild the rollups from the dirty day on; returns what it wrote."""
    now = now or timezone.now()
    with transaction.atomic(), db_scope(ALL):
        state = _state(lock=True)
        since = state.dirty_from
        if since is None:  # first pass: from the first event
            since = Event.objects.aggregate(first=Min("occurred_at"))["first"] or now
        elif (
            state.refreshed_at is not None
        ):  # sales reported since the last pass may be older than it
            late = Conversion.objects.filter(created_at__gte=state.refreshed_at - LAG).aggregate(
                first=Min("occurred_at")
            )["first"]
            since = min(since, late) if late else since
        first_day = timezone.localtime(since).date()
        start = local_midnight(first_day)
        # The rollups hold exactly the events before ``cutoff``; the campaign report reads the
        # raw events from there on, so the two never overlap.
        cutoff = now - LAG
        stats = aggregate(start, until=cutoff)
        DailyStat.objects.filter(day__gte=first_day).delete()
        DailyStat.objects.bulk_create(
            [
                DailyStat(
                    day=day,
                    campaign_id=campaign,
                    unit_id=unit,
                    unit_path=path,
                    channel=channel,
                    **{name: getattr(c, name) for name in COUNTER_FIELDS},
                )
                for (day, campaign, unit, path, channel), c in stats.items()
            ],
            batch_size=2000,
        )
        bases = snapshot_bases(timezone.localtime(now).date())
        # People, not records (issue 20): the network's figures and the reach of the
        # campaigns that sent in the rebuilt days.
        people.count_people(now, {key[1] for key, c in stats.items() if c.sent and key[1]})
        # A ``touch`` waiting on this row's lock applies after the commit, to the new value.
        state.dirty_from = cutoff
        state.refreshed_at = now
        state.save()
    return {
        "days": (timezone.localtime(now).date() - first_day).days + 1,
        "rows": len(stats),
        "units": bases,
    }


def _state(*, lock: bool = False) -> RollupState:
    rows = RollupState.objects.select_for_update() if lock else RollupState.objects
    state = rows.filter(pk=1).first()
    if state is None:
        state, _ = RollupState.objects.get_or_create(pk=1)
    return state


def touch(when: dt.datetime) -> None:
    """Events dated ``when`` were just written: the next pass must go back to that day."""
    with db_scope(ALL):
        state = _state()
        if state.dirty_from is not None and when < state.dirty_from:
            RollupState.objects.filter(pk=state.pk, dirty_from__gt=when).update(dirty_from=when)


# The state row has no unit path and no row-level policy: pages read it in their own scope,
# in one query, and a missing row reads as "no pass yet".


def covered_until() -> dt.datetime | None:
    """The rollups hold the events that occurred before this (None: no pass yet)."""
    return RollupState.objects.filter(pk=1).values_list("dirty_from", flat=True).first()


def refreshed_at() -> dt.datetime | None:
    """When the last pass ran (None: no pass yet)."""
    return RollupState.objects.filter(pk=1).values_list("refreshed_at", flat=True).first()


def snapshot_bases(day: dt.date) -> int:
    """Each unit's contact base today (rewritten on every pass; earlier days stay as they were)."""
    rows = (
        Contact.objects.values_list("unit_id", "unit_path")
        .annotate(
            n=Count("id"),
            email=Count("id", filter=Q(email_consent__in=VALID_CONSENT)),
            sms=Count("id", filter=Q(sms_consent__in=VALID_CONSENT)),
        )
        .order_by()
    )
    snapshot = [
        UnitDay(day=day, unit_id=unit, unit_path=path, contacts=n, email_ok=email, sms_ok=sms)
        for unit, path, n, email, sms in rows
    ]
    units = OrgNode.objects.filter(kind=OrgNode.Kind.UNIT).exclude(
        pk__in=[s.unit_id for s in snapshot]
    )
    snapshot += [UnitDay(day=day, unit_id=u.pk, unit_path=u.path) for u in units.only("pk", "path")]
    UnitDay.objects.filter(day=day).delete()
    UnitDay.objects.bulk_create(snapshot, batch_size=2000)
    return len(snapshot)


def rebuild_base_history(first: dt.date, last: dt.date) -> int:
    """Each unit's base on every day from ``first`` to ``last``, rebuilt from the contacts' arrival
    dates and the consent ledger (for a new installation, or after importing an old base).
    Contacts erased since are not counted on any day."""
    days = (last - first).days + 1
    if days <= 0:
        return 0
    tz = timezone.get_default_timezone()

    def index(when: dt.datetime) -> int:
        return max(0, (timezone.localtime(when, tz).date() - first).days)

    changes: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0] * (days + 1))
    unit_of = {}
    for pk, unit, created in Contact.objects.values_list("pk", "unit_id", "created_at").iterator(
        chunk_size=20_000
    ):
        unit_of[pk] = unit
        changes[(unit, "contacts")][min(index(created), days)] += 1
    valid_since: dict[tuple[int, str], dt.datetime] = {}
    ledger = ConsentEvent.objects.values_list(
        "contact_id", "channel", "status", "occurred_at"
    ).order_by("contact_id", "channel", "occurred_at", "id")
    for contact, channel, status, at in ledger.iterator(chunk_size=20_000):
        unit = unit_of.get(contact)
        if unit is None:
            continue
        key = (contact, channel)
        if status in VALID_CONSENT:
            valid_since.setdefault(key, at)
        elif key in valid_since:
            start = valid_since.pop(key)
            changes[(unit, channel)][min(index(start), days)] += 1
            changes[(unit, channel)][min(index(at), days)] -= 1
    for (contact, channel), start in valid_since.items():
        changes[(unit_of[contact], channel)][min(index(start), days)] += 1
    paths = dict(OrgNode.objects.filter(kind=OrgNode.Kind.UNIT).values_list("pk", "path"))
    rows = []
    for unit, path in paths.items():
        running = {"contacts": 0, Channel.EMAIL: 0, Channel.SMS: 0}
        for offset in range(days):
            for name in running:
                running[name] += changes[(unit, name)][offset] if (unit, name) in changes else 0
            rows.append(
                UnitDay(
                    day=first + dt.timedelta(days=offset),
                    unit_id=unit,
                    unit_path=path,
                    contacts=running["contacts"],
                    email_ok=running[Channel.EMAIL],
                    sms_ok=running[Channel.SMS],
                )
            )
    with transaction.atomic(), db_scope(ALL):
        UnitDay.objects.filter(day__gte=first, day__lte=last).delete()
        UnitDay.objects.bulk_create(rows, batch_size=5000)
    return len(rows)
