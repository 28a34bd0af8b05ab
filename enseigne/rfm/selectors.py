"""Scoped reads for the RFM pages: a unit's (or region's) R×F heat map and the
month-to-month migration between groups. Callers pass the paths of units the user sees;
row-level security narrows the reads again on PostgreSQL."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Exists, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from .groups import Group, cell, group_label
from .models import GroupSnapshot, RecordScore, RfmPolicy
from .scoring import frame_for
from .snapshots import previous_month


def grid_of(root: str) -> dict[str, str]:
    """The network's R×F grid (HQ's, or the default), as scoring reads it."""
    return frame_for(root).grid


def policy_of(root: str) -> RfmPolicy | None:
    """HQ's RFM settings for the network, if HQ changed any."""
    return RfmPolicy.objects.filter(network__node__path=root).first()


def window_months_of(root: str) -> int:
    """The network's window in months (HQ's, or the default)."""
    return frame_for(root).window_months


def window_start_of(root: str) -> dt.datetime:
    """The start of the network's window now: the purchases the scores count are after it."""
    return frame_for(root).window_start


@dataclass
class HeatCell:
    recency: int
    frequency: int
    group: str
    records: int
    revenue: Decimal
    share: float  # of the largest cell, 0…1: the colour's strength

    @property
    def label(self) -> str:
        return group_label(self.group)


def heat_map(paths: list[str], root: str) -> list[list[HeatCell]]:
    """Rows recency 5 (most recent) to 1, columns frequency 1 to 5: the buyers of the units
    ``paths`` in each cell, their net amount, and the cell's group."""
    grid = grid_of(root)
    totals = {
        (row["recency"], row["frequency"]): (row["n"], row["net"])
        for row in RecordScore.objects.filter(unit_path__in=paths)
        .values("recency", "frequency")
        .annotate(n=Count("pk"), net=Sum("net"))
    }
    largest = max((n for n, _net in totals.values()), default=0) or 1
    rows = []
    for r in range(5, 0, -1):
        row = []
        for f in range(1, 6):
            n, net = totals.get((r, f), (0, Decimal(0)))
            row.append(HeatCell(r, f, grid[cell(r, f)], n, net or Decimal(0), n / largest))
        rows.append(row)
    return rows


def snapshot_months(paths: list[str]) -> list[dt.date]:
    """The months with a picture of these units' groups. DISTINCT in the database: the
    table holds a row per buyer and month (millions for HQ), the page needs a dozen dates."""
    return list(
        GroupSnapshot.objects.filter(unit_path__in=paths)
        .order_by("month")
        .values_list("month", flat=True)
        .distinct()
    )


@dataclass
class Migration:
    month: dt.date
    before: dt.date
    # (group before or "" for a new buyer, group after or "" for one who left) → records
    moves: dict[tuple[str, str], int]

    def matrix(self) -> list[dict]:
        """Rows: the group a month earlier (then "not a buyer"); columns: the group now."""
        keys = [*Group.values, ""]
        return [
            {
                "group": source,
                "label": group_label(source),
                "cells": [self.moves.get((source, target), 0) for target in keys],
            }
            for source in keys
        ]

    def chart(self) -> dict:
        """Per group: the records that left it and those that joined it (``charts.js``)."""
        left = [
            sum(n for (a, b), n in self.moves.items() if a == g and b != g) for g in Group.values
        ]
        joined = [
            sum(n for (a, b), n in self.moves.items() if b == g and a != g) for g in Group.values
        ]
        return {
            "kind": "bar",
            "x": [str(label) for _key, label in Group.choices],
            "series": [
                {"name": str(_("left the group")), "data": left},
                {"name": str(_("joined the group")), "data": joined},
            ],
        }


def migration(paths: list[str], month: dt.date) -> Migration:
    """Who moved between groups from the month before ``month`` to ``month``: records of
    the units ``paths`` in either month's snapshot."""
    before = previous_month(month)
    rows = GroupSnapshot.objects.filter(unit_path__in=paths)
    earlier = rows.filter(month=before, contact=OuterRef("contact"))
    moves: dict[tuple[str, str], int] = {}
    now = (
        rows.filter(month=month)
        .annotate(source=Coalesce(Subquery(earlier.values("group")[:1]), Value("")))
        .values("source", "group")
        .annotate(n=Count("pk"))
    )
    for row in now:
        moves[(row["source"], row["group"])] = row["n"]
    later = rows.filter(month=month, contact=OuterRef("contact"))
    gone = rows.filter(month=before).exclude(Exists(later)).values("group").annotate(n=Count("pk"))
    for row in gone:
        moves[(row["group"], "")] = row["n"]
    return Migration(month, before, moves)


def group_counts_by_unit(root: str) -> dict[str, dict[str, int]]:
    """Per store of the network ``root``: its scored buyer records per group, in one grouped
    query. A system read (run it in a scope that sees the network): callers show a store its
    own row and aggregates over the others (medians), never another store's row."""
    counts: dict[str, dict[str, int]] = {}
    for path, group, n in (
        RecordScore.objects.filter(unit_path__startswith=root)
        .values_list("unit_path", "group")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        counts.setdefault(path, {})[group] = n
    return counts
