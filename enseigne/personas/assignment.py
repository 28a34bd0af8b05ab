"""Who is which persona: each record the first persona (by position) whose rules it
matches, each person the first persona any of its records has. Set-based: one
``INSERT … SELECT`` per persona for the records (those not placed by an earlier persona)
and one per persona for the persons, then the month's counts.

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
    # Anti-joins, not NOT IN over the persons placed so far (rescanned for every row).
    person_placed = Exists(
        PersonaPerson.objects.filter(unit_path=root, person_id=OuterRef("person_id"))
    )
    unlinked = ~Exists(RecordLink.objects.filter(contact=OuterRef("contact_id")))
    for persona in personas:
        mine = PersonaRecord.objects.filter(persona=persona, unit_path__startswith=root)
        people = (
            RecordLink.objects.filter(contact_id__in=mine.values("contact_id"))
            .exclude(person_placed)
            .values_list("person_id", Value(persona.pk), Value(root))
            .distinct()
        )
        insert_select(PersonaPerson, ("person", "persona", "unit_path"), people)
        alone = mine.filter(unlinked).values_list("contact_id", Value(persona.pk), Value(root))
        insert_select(PersonaPerson, ("contact", "persona", "unit_path"), alone)
    _count_month(root, month_of(as_of) if as_of else None)
    return skipped


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
