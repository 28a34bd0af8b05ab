# The SQL here is assembled from the models' table names; every value is a parameter.
# ruff: noqa: S608

"""Who is which persona: each record the first persona (by position) whose rules it
matches, each person the first persona any of its records has. Set-based: one
``INSERT … SELECT`` per persona for the records (those not placed by an earlier persona),
then one for the persons (the least position among their records' personas) and one for
the records not linked, then the month's counts.

Run by the worker after the nightly RFM scores (``tasks.personas_nightly``) and on demand
from HQ's page (``tasks.personas_assign``); one network a transaction.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count, DateField, Exists, F, OuterRef, Q, Value

from enseigne.contacts.models import Contact
from enseigne.contacts.segments import SegmentCompiler
from enseigne.identity.models import RecordLink
from enseigne.lib.bulk import insert_select
from enseigne.network.models import OrgNode
from enseigne.rfm.snapshots import month_of

from .models import Persona, PersonaCount, PersonaPerson, PersonaRecord
from .selectors import personas_of_root

logger = logging.getLogger(__name__)

# Persona ids stay below 2**32: (position, id) travel as one integer through MIN().
_SHIFT = 2**32


def _lock_network(root: str) -> None:
    """One assignment of a network at a time (the nightly run and HQ's "recompute now")."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"personas:{root}"])


def _records_of(root: str):
    units = OrgNode.objects.filter(path__startswith=root, kind=OrgNode.Kind.UNIT)
    return Contact.objects.filter(unit__in=units.values("pk"))


@transaction.atomic
def assign_network(root: str, as_of: dt.datetime | None = None) -> list[str]:
    """Recompute the network's assignments and this month's counts. Returns the names of
    personas whose rules no longer compile (their author lost HQ's role, an attribute
    was removed): they are skipped, the next ones still place records."""
    _lock_network(root)
    PersonaRecord.objects.filter(unit_path__startswith=root).delete()
    PersonaPerson.objects.filter(unit_path=root).delete()
    personas = list(personas_of_root(root).select_related("updated_by"))
    skipped = []
    placed = Exists(PersonaRecord.objects.filter(contact=OuterRef("pk")))
    for persona in personas:
        condition = _condition(persona)
        if condition is None:
            skipped.append(persona.name)
            continue
        records = (
            _records_of(root)
            .filter(condition)
            .exclude(placed)
            .values_list("pk", Value(persona.pk), "unit_path")
        )
        insert_select(PersonaRecord, ("contact", "persona", "unit_path"), records)
    _place_persons(root)
    _count_month(root, month_of(as_of) if as_of else None)
    return skipped


def _place_persons(root: str) -> None:
    """Each person of the network's placed records gets the first of its records'
    personas: one GROUP BY person over the record rows, the least (position, id) encoded in
    one integer so that the same SQL runs on SQLite; records not linked are their own
    person."""
    q = connection.ops.quote_name
    record, person, persona, link = (
        q(PersonaRecord._meta.db_table),
        q(PersonaPerson._meta.db_table),
        q(Persona._meta.db_table),
        q(RecordLink._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {person} (person_id, persona_id, unit_path)
            SELECT l.person_id, MIN(p.position * {_SHIFT} + p.id) %% {_SHIFT}, %s
            FROM {record} r
            JOIN {link} l ON l.contact_id = r.contact_id
            JOIN {persona} p ON p.id = r.persona_id
            WHERE r.unit_path LIKE %s
            GROUP BY l.person_id
            """,
            [root, f"{root}%"],
        )
        cursor.execute(
            f"""
            INSERT INTO {person} (contact_id, persona_id, unit_path)
            SELECT r.contact_id, r.persona_id, %s
            FROM {record} r
            WHERE r.unit_path LIKE %s
              AND NOT EXISTS (SELECT 1 FROM {link} l WHERE l.contact_id = r.contact_id)
            """,
            [root, f"{root}%"],
        )


def _condition(persona: Persona) -> Q | None:
    """The persona's rules compiled as its author; None when they no longer compile (the
    author lost HQ's role or was deleted, an attribute was removed)."""
    if persona.updated_by is None:
        logger.warning("Persona %s skipped: its author was deleted", persona.pk)
        return None
    try:
        return SegmentCompiler(persona.updated_by).compile(persona.rules)
    except ValidationError:
        logger.warning("Persona %s skipped: its rules no longer compile", persona.pk)
        return None


def _count_month(root: str, month: dt.date | None) -> None:
    from django.utils import timezone

    month = month or month_of(timezone.now())
    PersonaCount.objects.filter(month=month, unit_path__startswith=root).delete()
    day = Value(month, output_field=DateField())
    fields = ("month", "level", "unit_path", "persona", "count")
    per_store = (
        PersonaRecord.objects.filter(unit_path__startswith=root)
        .values("unit_path", "persona_id")
        .annotate(n=Count("pk"))
        .values_list(day, Value(PersonaCount.Level.RECORD.value), "unit_path", "persona_id", "n")
    )
    insert_select(PersonaCount, fields, per_store)
    network = (
        PersonaPerson.objects.filter(unit_path=root)
        .values("persona_id")
        .annotate(n=Count("pk"))
        .values_list(day, Value(PersonaCount.Level.PERSON.value), Value(root), "persona_id", "n")
    )
    insert_select(PersonaCount, fields, network)


def networks_with_personas() -> list[str]:
    return sorted(set(Persona.objects.values_list(F("network__node__path"), flat=True).distinct()))
