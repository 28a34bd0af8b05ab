"""The port through which later apps learn of records written, in the writer's transaction.

Contacts come before identity in the dependency order, yet a new record must join its
person in the transaction that writes it (issue 20). Rather than a signal, the writers
call ``records_written`` explicitly and settings name who is told (``ENSEIGNE_RECORD_HOOKS``, dotted paths to
objects with ``written(records)``, ``changed(records)`` and ``erased(contact ids)``): the wiring is in config,
readable in one place, and contacts imports no later app (docs/decisions.md, "Records tell
identity through a port").
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Record:
    """What a later app needs of a contact record just written."""

    contact_id: int
    unit_path: str
    email: str | None
    phone: str | None
    birthday: datetime.date | None = None


class RecordHook(Protocol):
    def written(self, records: Sequence[Record]) -> object: ...

    def changed(self, records: Sequence[Record]) -> object: ...

    def erased(self, contact_ids: Sequence[int]) -> object: ...


@cache
def _hooks() -> tuple[RecordHook, ...]:
    return tuple(import_string(path) for path in getattr(settings, "ENSEIGNE_RECORD_HOOKS", ()))


def records_written(records: Sequence[Record]) -> None:
    """Tell every hook of new records; call inside the transaction that wrote them."""
    if records:
        for hook in _hooks():
            hook.written(records)


def records_changed(records: Sequence[Record]) -> None:
    """Tell every hook that these records' e-mail or phone changed (same transaction)."""
    if records:
        for hook in _hooks():
            hook.changed(records)


def record_of(contact) -> Record:
    return Record(contact.pk, contact.unit_path, contact.email, contact.phone, contact.birthday)


# What later apps hold about a record (its purchases, the messages it was sent), for the
# GDPR export: settings ``ENSEIGNE_RECORD_EXPORT_PARTS`` name callables taking a contact and
# returning {section: data}. The store's per-record export and HQ's per-person export both
# go through ``contacts.selectors.contact_data_export``, so both hold the same sections.
ExportPart = Callable[[object], dict]


@cache
def _export_parts() -> tuple[ExportPart, ...]:
    return tuple(
        import_string(path) for path in getattr(settings, "ENSEIGNE_RECORD_EXPORT_PARTS", ())
    )


def export_parts(contact) -> dict:
    """Every later app's sections about ``contact``, merged in the settings' order."""
    sections: dict = {}
    for part in _export_parts():
        sections.update(part(contact))
    return sections


def records_erased(contact_ids: Sequence[int]) -> None:
    """Tell every hook of records about to be erased; call inside the erasing transaction,
    before the delete: rows a later app keeps about the record that the eraser's scope
    cannot see (HQ's review queue) would otherwise outlive it."""
    if contact_ids:
        for hook in _hooks():
            hook.erased(contact_ids)


@cache
def _person_lookup() -> Callable[[object, object], object] | None:
    path = getattr(settings, "ENSEIGNE_PERSON_LOOKUP", "")
    return import_string(path) if path else None


def person_id_for(user, contact):
    """The public id of the person behind ``contact`` as ``user`` may learn it, or None
    (a later app answers, named in settings ``ENSEIGNE_PERSON_LOOKUP``: identity decides
    what the network's mode allows)."""
    lookup = _person_lookup()
    return lookup(user, contact) if lookup is not None else None
