"""The named RFM groups and the R×F grid that assigns one to each (recency, frequency) cell.

A grid maps the 25 cells ``r1f1`` … ``r5f5`` to a group key; HQ may adjust its network's
grid (``services.rfm_policy_update``), every cell must name a known group. The default is
the usual one: recent and frequent buyers are Champions, buyers who bought often but long
ago are the ones not to lose, and so on.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

SCORES = range(1, 6)


class Group(models.TextChoices):
    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALISTS = "potential_loyalists", _("Potential loyalists")
    NEW_CUSTOMERS = "new_customers", _("New customers")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to sleep")
    AT_RISK = "at_risk", _("At risk")
    CANNOT_LOSE = "cannot_lose", _("Can't lose them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


def cell(recency: int, frequency: int) -> str:
    return f"r{recency}f{frequency}"


CELLS = tuple(cell(r, f) for r in SCORES for f in SCORES)

_G = Group
# Rows: recency 5 (bought most recently) down to 1; columns: frequency 1 to 5.
_DEFAULT_ROWS = {
    5: (
        _G.NEW_CUSTOMERS,
        _G.POTENTIAL_LOYALISTS,
        _G.POTENTIAL_LOYALISTS,
        _G.CHAMPIONS,
        _G.CHAMPIONS,
    ),
    4: (_G.PROMISING, _G.POTENTIAL_LOYALISTS, _G.POTENTIAL_LOYALISTS, _G.LOYAL, _G.LOYAL),
    3: (_G.ABOUT_TO_SLEEP, _G.ABOUT_TO_SLEEP, _G.NEED_ATTENTION, _G.LOYAL, _G.LOYAL),
    2: (_G.HIBERNATING, _G.HIBERNATING, _G.AT_RISK, _G.AT_RISK, _G.CANNOT_LOSE),
    1: (_G.LOST, _G.LOST, _G.AT_RISK, _G.AT_RISK, _G.CANNOT_LOSE),
}
DEFAULT_GRID: dict[str, str] = {
    cell(r, f): _DEFAULT_ROWS[r][f - 1].value for r in SCORES for f in SCORES
}


def validate_grid(grid: object) -> dict[str, str]:
    """The grid as stored, or a ValidationError naming the first wrong cell."""
    if not isinstance(grid, Mapping):
        raise ValidationError(
            gettext("The grid must map each of the 25 cells (r1f1 to r5f5) to a group.")
        )
    for key in grid:
        if key not in CELLS:
            raise ValidationError(
                gettext("%(cell)r is not a cell of the grid: cells go from r1f1 to r5f5.")
                % {"cell": key}
            )
    known = set(Group.values)
    for key in CELLS:
        if key not in grid:
            raise ValidationError(
                gettext("Cell %(cell)s (recency %(r)s, frequency %(f)s) has no group.")
                % {"cell": key, "r": key[1], "f": key[3]}
            )
        if grid[key] not in known:
            raise ValidationError(
                gettext(
                    "Cell %(cell)s (recency %(r)s, frequency %(f)s): %(group)r is not a group "
                    "(one of %(groups)s)."
                )
                % {
                    "cell": key,
                    "r": key[1],
                    "f": key[3],
                    "group": grid[key],
                    "groups": ", ".join(known_sorted()),
                }
            )
    return {key: str(grid[key]) for key in CELLS}


def known_sorted() -> list[str]:
    return list(Group.values)


def group_label(key: str | None) -> str:
    return str(Group(key).label) if key in Group.values else ""
