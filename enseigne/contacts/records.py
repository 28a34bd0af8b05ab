"""The port through which later apps learn of records written, in the writer's transaction.

Contacts come before identity in the dependency order, yet a new record must join its
person in the transaction that writes it (issue 20). Rather than a signal, the writers
call ``records_written`` explicitly and settings name who is told
(``ENSEIGNE_RECORD_HOOKS``, dotted paths to callables taking the list of records): the
wiring is in config, readable in one place, and contacts imports no later app
(docs/decisions.md, "Records tell identity through a port").
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

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


Hook = Callable[[Sequence[Record]], object]


@cache
def _hooks() -> tuple[Hook, ...]:
    return tuple(import_string(path) for path in getattr(settings, "ENSEIGNE_RECORD_HOOKS", ()))


def records_written(records: Sequence[Record]) -> None:
    """Tell every hook of new records; call inside the transaction that wrote them."""
    if records:
        for hook in _hooks():
            hook(records)


def record_of(contact) -> Record:
    return Record(contact.pk, contact.unit_path, contact.email, contact.phone, contact.birthday)


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
