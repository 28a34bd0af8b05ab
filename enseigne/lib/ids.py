"""Public ids are UUIDs; anything else in a URL or a payload names no object."""

from __future__ import annotations

import uuid


def parse_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
