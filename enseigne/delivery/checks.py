"""The send gates at hand-off: the chunk's contacts locked, then the preview's own SQL.

The contacts are locked (``FOR SHARE``) until the hand-off's transaction ends, so an
unsubscribe (which updates the contact) commits either before this check (the message is
not sent) or after the message left: never "committed, then sent anyway". The gates are
then evaluated by ``audience.classified`` on exactly these contacts: the same declaration
the audience preview and the freeze use (``campaigns.gates``).
"""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection

from enseigne.campaigns.audience import classified
from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Campaign
from enseigne.contacts.models import Contact
from enseigne.lib.sendwindow import SendWindow

# What composing a message reads of a contact.
COLUMNS = [
    "id",
    "unit_id",
    "unit_path",
    "email",
    "phone",
    "first_name",
    "last_name",
    "language",
    "attributes",
    "open_tracking",
]


def lock_contacts(contact_ids: list[int]) -> dict[int, dict]:
    """The chunk's contacts, locked against changes until the hand-off commits (on SQLite
    the hand-off holds the database's one write lock, which does the same)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM {Contact._meta.db_table} "  # noqa: S608
                "WHERE id = ANY(%s) FOR SHARE",
                [contact_ids],
            )
            found = {}
            for values in cursor.fetchall():
                row = dict(zip(COLUMNS, values, strict=True))
                if isinstance(row["attributes"], str):
                    row["attributes"] = json.loads(row["attributes"])
                found[row["id"]] = row
            return found
    return {c["id"]: c for c in Contact.objects.filter(pk__any=contact_ids).values(*COLUMNS)}


def verdicts(
    *,
    campaign: Campaign,
    rows: list[dict],
    contacts: dict[int, dict],
    now: dt.datetime,
    window: SendWindow,
    time_zone_of,
) -> dict[int, str | dt.datetime | None]:
    """Per ledger row: None = send it, a ``Reason`` = end it so, a datetime = not before."""
    found: dict[int, str | dt.datetime | None] = {}
    known = [r for r in rows if r["contact_id"] in contacts]
    reasons: dict[int, str] = {}
    if known:
        ids = sorted({r["contact_id"] for r in known})
        gate = classified(campaign, Contact.objects.filter(pk__any=ids), now, handoff_ids=ids)
        with connection.cursor() as cursor:
            cursor.execute(
                f"{gate.ctes}SELECT c.id, c.reason FROM ({gate.sql}) c",  # noqa: S608
                [*gate.cte_params, *gate.params],
            )
            reasons = dict(cursor.fetchall())
    transactional = campaign.is_transactional
    for row in rows:
        if row["contact_id"] not in contacts:
            found[row["id"]] = Reason.CONTACT_ERASED
            continue
        reason = reasons.get(row["contact_id"], "")
        if reason:
            found[row["id"]] = reason
        elif campaign.channel != "email" and not transactional:
            time_zone = time_zone_of(row["unit_id"])
            found[row["id"]] = (
                None if window.allows(now, time_zone) else window.next_allowed(now, time_zone)
            )
        else:
            found[row["id"]] = None
    return found
