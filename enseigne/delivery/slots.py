"""Runner slots: how many workers send one campaign at once, and how a dead one is noticed.

A runner holds one of the campaign's ``SEND_RUNNERS_PER_CAMPAIGN`` slots for as long as it
runs. The slot is a lock that the system releases the moment its holder dies, so a
killed worker's place is free at once (a lease in a table had to expire first: five
minutes of silence after every crash):

- PostgreSQL: a session advisory lock on the runner's connection. The server drops it
  when the connection ends, SIGKILL included, whichever host the worker ran on.
- SQLite (one machine by nature): an ``flock`` on a file beside the database, which the
  kernel drops when the process ends.

Slots only bound how many runners share a campaign; correctness never depends on them
(the ledger's row leases and ``SKIP LOCKED`` claims keep two runners off the same row).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import zlib
from pathlib import Path

from django.conf import settings
from django.db import connection

# The advisory lock space is shared by the whole database: our keys carry this tag.
_NAMESPACE = zlib.crc32(b"enseigne.runner") & 0x7FFFFFFF
# Slots this process holds: PostgreSQL grants a session a lock it already has again.
_held: set[tuple[int, int]] = set()
_held_lock = threading.Lock()


class Slot:
    def __init__(self, campaign_id: int, number: int, handle=None):
        self.campaign_id = campaign_id
        self.number = number
        self._handle = handle

    def release(self) -> None:
        with _held_lock:
            _held.discard((self.campaign_id, self.number))
        if self._handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._handle, fcntl.LOCK_UN)
                self._handle.close()
            self._handle = None
            return
        if connection.vendor == "postgresql" and connection.connection is not None:
            with contextlib.suppress(Exception), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)",
                    [_NAMESPACE, _key(self.campaign_id, self.number)],
                )


def _key(campaign_id: int, number: int) -> int:
    # Two int4 keys: the namespace, and the campaign and slot folded together.
    return ((campaign_id * 64 + number) % 0x7FFFFFFF) or 1


def _lock_dir() -> Path:
    path = Path(settings.DATA_DIR) / "runners"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_here(campaign_id: int) -> bool:
    """Does this process already hold a slot of the campaign?"""
    with _held_lock:
        return any(held == campaign_id for held, _number in _held)


def take_slot(
    campaign_id: int, slots: int | None = None, *, one_per_process: bool = True
) -> Slot | None:
    """One free slot of the campaign, held until ``release`` or the holder's death; None
    when every slot is taken, or (``one_per_process``) when this process holds one already:
    a second runner in one interpreter adds no speed (one GIL) and doubles what a kill of
    the process leaves in doubt."""
    for number in range(slots or settings.SEND_RUNNERS_PER_CAMPAIGN):
        with _held_lock:
            if one_per_process and any(held == campaign_id for held, _n in _held):
                return None
            if (campaign_id, number) in _held:
                continue
            _held.add((campaign_id, number))
        slot = _take(campaign_id, number)
        if slot is not None:
            return slot
        with _held_lock:
            _held.discard((campaign_id, number))
    return None


def _take(campaign_id: int, number: int) -> Slot | None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", [_NAMESPACE, _key(campaign_id, number)]
            )
            return Slot(campaign_id, number) if cursor.fetchone()[0] else None
    handle = open(_lock_dir() / f"campaign-{campaign_id}-{number}.lock", "a+")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    os.set_inheritable(handle.fileno(), False)
    return Slot(campaign_id, number, handle)


def runners_holding(campaign_id: int, slots: int | None = None) -> int:
    """How many slots of the campaign are held right now (for the page and the tests)."""
    held = 0
    for number in range(slots or settings.SEND_RUNNERS_PER_CAMPAIGN):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND classid = %s AND objid = %s AND objsubid = 2",
                    [_NAMESPACE, _key(campaign_id, number)],
                )
                held += cursor.fetchone()[0]
            continue
        path = _lock_dir() / f"campaign-{campaign_id}-{number}.lock"
        if not path.exists():
            continue
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                held += 1
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
    return held
