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
from functools import cache
from typing import NamedTuple, Protocol

from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string

from enseigne.lib.rowsecurity import ALL, db_scope


class Record(NamedTuple):
    """What a later app needs of a contact record just written.

    A tuple, not a dataclass: an import makes one a row, and a frozen dataclass cost 1 µs
    of the writer's thread each (docs/benchmarks.md, "Person matching at write time")."""

    contact_id: int
    unit_path: str
    email: str | None
    phone: str | None
    birthday: datetime.date | None = None
    # What each hook prepared for this record before it was written (``records_preparer``),
    # in the hooks' order; empty when nothing was.
    prepared: tuple = ()


Address = tuple[str | None, str | None]  # (e-mail, phone), as the contact will hold them


class RecordHook(Protocol):
    def written(
        self, records: Sequence[Record], prepared: Sequence[object] | None = None
    ) -> object: ...

    def changed(self, records: Sequence[Record]) -> object: ...

    def erased(self, contact_ids: Sequence[int]) -> object: ...

    # Optional: ``preparer(unit_path)``, read by ``records_preparer``.


@cache
def _hooks() -> tuple[RecordHook, ...]:
    return tuple(import_string(path) for path in getattr(settings, "ENSEIGNE_RECORD_HOOKS", ()))


def records_written(records: Sequence[Record]) -> None:
    """Tell every hook of new records; call inside the transaction that wrote them.

    A hook that prepared the records (``records_preparer``) gets what it prepared beside
    them, one item a record (None where the record was not prepared)."""
    if records:
        prepared = any(r.prepared for r in records)
        for index, hook in enumerate(_hooks()):
            if prepared:
                hook.written(records, [r.prepared[index] if r.prepared else None for r in records])
            else:
                hook.written(records)


Preparer = Callable[[Sequence[Address]], list[tuple]]


def records_preparer(unit_path: str) -> Preparer | None:
    """A function preparing, with no database, records about to be written in a unit.

    A writer of many records (the import) calls this once, where it may read the database,
    and the function it returns on each batch before writing it, in a thread with no
    database connection (the import validates the next batch in a helper thread that is
    idle most of the time): each hook with a ``preparer(unit_path)`` does there the pure
    computation it would otherwise do in the writer's thread (identity: the records'
    matching keys). The function takes the records' (e-mail, phone) and returns one tuple
    a record, an item per hook, to pass as the ``prepared`` of its ``Record``. A hook must
    check what it is handed still holds (the record's addresses, its own settings) and
    compute again where not: preparing is an optimisation, never a source of truth. None
    when no hook prepares anything."""
    hooks = _hooks()
    preparers = [hook.preparer(unit_path) if hasattr(hook, "preparer") else None for hook in hooks]
    if not any(preparers):
        return None

    def prepare(addresses: Sequence[Address]) -> list[tuple]:
        columns = [
            preparer(addresses) if preparer is not None else [None] * len(addresses)
            for preparer in preparers
        ]
        return list(zip(*columns, strict=True))

    return prepare


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


class HqRowsEraser:
    """A record hook for a later app whose rows about a record are HQ's (the network root's
    scope only: a person's RFM score or persona kept for a record not linked yet): the store
    erasing the record cannot see them, so Django's cascade would leave them. They go as
    system work in the erasing transaction. ``models`` are "app_label.Model" names with a
    ``contact`` field."""

    def __init__(self, *models: str) -> None:
        self.models = models

    def written(self, records: Sequence[Record], prepared: Sequence[object] | None = None) -> None:
        return None

    def changed(self, records: Sequence[Record]) -> None:
        return None

    def erased(self, contact_ids: Sequence[int]) -> None:
        with db_scope(ALL):
            for label in self.models:
                apps.get_model(label).objects.filter(contact_id__in=list(contact_ids)).delete()


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
