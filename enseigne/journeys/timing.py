"""When a waiting step wakes, on the store's clock (DST-safe).

Days are counted on the store's calendar: a wait of one day from 10:00 wakes at 10:00 the
next day on the store's clock, even across a change of time (23 or 25 elapsed hours).
Hours and minutes are elapsed time. "Until" waits for the next such weekday and local time
strictly after now. A local time that does not exist (the hour skipped in spring) is read
with the offset before the change (02:30 in Paris's skipped hour wakes at 03:30, summer
time); one that happens twice (autumn) as its first occurrence.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from enseigne.journeys.flow import Wait

UTC = dt.UTC


def local_moment(day: dt.date, moment: dt.time, zone: ZoneInfo) -> dt.datetime:
    """``day`` at ``moment`` on the store's clock, as UTC (gaps and folds as above)."""
    naive = dt.datetime.combine(day, moment)
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def wake_at(wait: Wait, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """When a row that starts waiting at ``now`` (aware) wakes up, in UTC."""
    local = now.astimezone(zone)
    if wait.time is not None:
        for offset in range(8):
            day = local.date() + dt.timedelta(days=offset)
            if wait.weekday is not None and day.weekday() != wait.weekday:
                continue
            candidate = local_moment(day, wait.time, zone)
            if candidate > now.astimezone(UTC):
                return candidate
        raise AssertionError("a weekday comes back within 8 days")  # pragma: no cover
    moment = now.astimezone(UTC)
    if wait.days:
        day = local.date() + dt.timedelta(days=wait.days)
        moment = local_moment(day, local.time().replace(tzinfo=None), zone)
    return moment + dt.timedelta(hours=wait.hours, minutes=wait.minutes)
