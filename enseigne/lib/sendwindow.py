"""When a marketing SMS may leave: a weekly window in the recipient's time zone, minus public holidays.

The default is the strictest reading of the French operators' charter (COMPLIANCE.md):
Monday to Saturday, 08:00 to 20:00 local time, never on a Sunday or a public holiday.
Times are compared in the recipient's zone, so a DST change moves the UTC window with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

DEFAULT_DAYS = (0, 1, 2, 3, 4, 5)  # Monday..Saturday
MAX_LOOKAHEAD_DAYS = 60


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@dataclass(frozen=True)
class SendWindow:
    days: tuple[int, ...] = DEFAULT_DAYS
    start: dt.time = dt.time(8, 0)
    end: dt.time = dt.time(20, 0)
    holiday_country: str = "FR"
    _days: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if not self.start < self.end:
            raise ValueError("The window must start before it ends.")
        object.__setattr__(self, "_days", frozenset(self.days))

    def is_holiday(self, day: dt.date) -> bool:
        return bool(self.holiday_country) and day in _holidays(self.holiday_country, day.year)

    def _open_day(self, day: dt.date) -> bool:
        return day.weekday() in self._days and not self.is_holiday(day)

    def allows(self, moment: dt.datetime, time_zone: str) -> bool:
        local = moment.astimezone(_zone(time_zone))
        return (
            self._open_day(local.date())
            and self.start <= local.time().replace(tzinfo=None) < self.end
        )

    def next_allowed(self, moment: dt.datetime, time_zone: str) -> dt.datetime:
        """``moment`` itself when it is inside the window, else the next opening (as UTC)."""
        if self.allows(moment, time_zone):
            return moment
        zone = _zone(time_zone)
        local = moment.astimezone(zone)
        for offset in range(MAX_LOOKAHEAD_DAYS):
            day = local.date() + dt.timedelta(days=offset)
            if not self._open_day(day):
                continue
            opening = dt.datetime.combine(day, self.start, tzinfo=zone)
            if opening >= local:
                return opening.astimezone(dt.UTC)
        raise ValueError("The sending window never opens in the next 60 days.")
