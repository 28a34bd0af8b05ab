"""Public ids are UUIDs; anything else in a URL or a payload names no object."""

from __future__ import annotations

import datetime
import uuid


def parse_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def time_ordered_prefix(moment: datetime.datetime | None = None) -> str:
    """The first 15 characters of a time-ordered UUID (the layout of RFC 9562's version 7):
    the Unix time in milliseconds on 48 bits, then the version digit 7."""
    moment = moment or datetime.datetime.now(datetime.UTC)
    millis = int(moment.timestamp() * 1000) & 0xFFFF_FFFF_FFFF
    digits = f"{millis:012x}"
    return f"{digits[:8]}-{digits[8:]}-7"


def time_ordered_uuid() -> uuid.UUID:
    """A UUID whose order follows its creation time (version 7: 74 random bits after the
    time). Ids written one after the other land side by side in a unique index instead of
    on a random page each. In SQL: ``time_ordered_prefix()`` followed by the last 21
    characters of ``gen_random_uuid()::text`` (its random bits and variant)."""
    return uuid.UUID(time_ordered_prefix() + str(uuid.uuid4())[15:])
