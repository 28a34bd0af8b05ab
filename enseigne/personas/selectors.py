"""Scoped reads of personas and their counts.

HQ (managing the customer base) edits its network's personas; every user reads the
names of their network's personas and the counts of the units they see."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import QuerySet, Sum
from django.http import Http404

from enseigne.identity.selectors import get_identity_root_for_user
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for
from enseigne.network.models import OrgNode, User

from .models import Persona, PersonaCount


def personas_of_root(root: str) -> QuerySet[Persona]:
    return Persona.objects.filter(network__node__path=root).order_by("position", "pk")


def personas_of_user_network(user: User) -> QuerySet[Persona]:
    """The personas of the networks the user belongs to (names only are shared)."""
    roots = {grant.path[: OrgNode.steplen] for grant in access_for(user).grants}
    return Persona.objects.filter(network__node__path__in=roots).order_by("position", "pk")


def get_personas_root_for_user(user: User) -> str:
    """The network whose personas ``user`` edits: 404 for anyone but HQ."""
    return get_identity_root_for_user(user)


def get_persona_for_user(user: User, public_id) -> Persona:
    root = get_personas_root_for_user(user)
    persona = (
        personas_of_root(root).filter(public_id=public_id).first()
        if parse_uuid(public_id)
        else None
    )
    if persona is None:
        raise Http404("No such persona.")
    return persona


@dataclass
class Evolution:
    months: list[dt.date]
    # persona pk → count per month (0 where the persona had no row that month)
    counts: dict[int, list[int]]

    def latest(self, persona: Persona) -> int:
        counts = self.counts.get(persona.pk)
        return counts[-1] if counts else 0

    def series(self, personas: list[Persona]) -> dict:
        """The chart's data (``static/charts.js``): bars while one month alone would be a
        line of single invisible points."""
        return {
            "kind": "line" if len(self.months) > 1 else "bar",
            "x": [month.strftime("%Y-%m") for month in self.months],
            "series": [
                {"name": p.name, "data": self.counts.get(p.pk, [0] * len(self.months))}
                for p in personas
            ],
        }


def evolution(paths: list[str], level: str = PersonaCount.Level.RECORD, months: int = 13):
    """Each persona's records in the units ``paths`` per month (``PERSON`` level: the
    network's persons, ``paths`` the root's), the last ``months`` months with a snapshot.
    Callers pass units the user sees."""
    rows = PersonaCount.objects.filter(level=level, unit_path__in=paths)
    recent = sorted(set(rows.values_list("month", flat=True).distinct()))[-months:]
    totals = (
        rows.filter(month__in=recent).values("month", "persona_id").annotate(total=Sum("count"))
    )
    by_persona: dict[int, dict[dt.date, int]] = defaultdict(dict)
    for row in totals:
        by_persona[row["persona_id"]][row["month"]] = row["total"]
    return Evolution(
        months=recent,
        counts={p: [m.get(month, 0) for month in recent] for p, m in by_persona.items()},
    )


def unit_counts(paths: list[str]) -> tuple[dt.date | None, dict[tuple[str, int], int]]:
    """The latest month counted for the units ``paths`` (None before any assignment) and
    its (unit path, persona pk) → records."""
    rows = PersonaCount.objects.filter(level=PersonaCount.Level.RECORD, unit_path__in=paths)
    latest = rows.order_by("-month").values_list("month", flat=True).first()
    if latest is None:
        return None, {}
    return latest, {
        (path, persona): count
        for path, persona, count in rows.filter(month=latest).values_list(
            "unit_path", "persona_id", "count"
        )
    }


def network_unit_counts(root: str) -> tuple[dt.date | None, dict[str, dict[int, int]]]:
    """The network's latest month counted and, per store, its records per persona that month
    (one query for the month, one grouped read). A system read (run it in a scope that sees
    the network): callers show a store its own row and aggregates (medians) over the others."""
    rows = PersonaCount.objects.filter(level=PersonaCount.Level.RECORD, unit_path__startswith=root)
    latest = rows.order_by("-month").values_list("month", flat=True).first()
    counts: dict[str, dict[int, int]] = {}
    if latest is None:
        return None, counts
    for path, persona, count in rows.filter(month=latest).values_list(
        "unit_path", "persona_id", "count"
    ):
        counts.setdefault(path, {})[persona] = count
    return latest, counts


def persona_of_user_network(user: User, public_id) -> Persona | None:
    """The persona ``public_id`` if it is one of the user's network's (its name is shared
    with every unit), else None: a filter on an unknown or another network's persona is
    ignored by the caller, with a message."""
    wanted = parse_uuid(public_id) if public_id else None
    if wanted is None:
        return None
    return personas_of_user_network(user).filter(public_id=wanted).first()
