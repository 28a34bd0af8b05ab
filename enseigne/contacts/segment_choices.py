"""Choice conditions for the segment builder: "the record's (or the person's) *thing* is one
of these" — an RFM group, a persona, a preferred channel. Each app declares what its values
are and which records have one; this module builds the ``ExtraField`` the same way for all:
the value is a key or a list of keys among the user's choices (anything else is refused,
naming the rule), "is" selects the records that have one of them and "is not" the others —
a record with none of them (no group, no persona, no preference) included.

The record's and the person's conditions of one thing share their choices and refusal: one
``ChoiceCondition`` gives both (``field``), each with its own matching rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.functional import Promise

from enseigne.contacts.segments import CHOICE_NEGATIONS, CHOICE_OPS, WITH_DAYS, ExtraField
from enseigne.network.models import User

# The records that have one of ``keys`` (within the last ``days`` days, for a condition that
# takes them).
Matching = Callable[[list[str], int | None], Q]


def has_row(rows: QuerySet) -> Q:
    """The records with a row in ``rows`` (a table with a ``contact``), as a semi-join:
    negated, an anti-join."""
    return Q(Exists(rows.filter(contact=OuterRef("pk"))))


def _everyone(user: User) -> bool:
    return True


@dataclass(frozen=True)
class ChoiceCondition:
    """What one kind of choice condition shares: the ``[key, label]`` values a user may pick,
    the sentence refusing anything else (given where the rule is), whether it also takes a
    number of days ("… in the last N days"), and its help text."""

    choices: Callable[[User], list[list[str]]]
    refusal: Callable[[str], str]
    with_days: bool = False
    help: str | Promise = ""

    def keys(self, user: User, value, where: str) -> list[str]:
        known = {str(key) for key, _label in self.choices(user)}
        keys = [str(key) for key in (value if isinstance(value, list) else [value])]
        if not keys or any(key not in known for key in keys):
            raise ValidationError(self.refusal(where))
        return keys

    def field(
        self,
        field: str,
        label: str | Promise,
        matching: Matching,
        *,
        available: Callable[[User], bool] = _everyone,
        per_person: bool = True,
    ) -> ExtraField:
        """The condition ``field``: the records ``matching`` selects for the chosen keys."""

        def compile_condition(user: User, op: str, value, where: str, days: int | None) -> Q:
            found = matching(self.keys(user, value, where), days)
            return ~found if op in CHOICE_NEGATIONS else found

        ops = (
            {op: kind + WITH_DAYS for op, kind in CHOICE_OPS.items()}
            if self.with_days
            else dict(CHOICE_OPS)
        )
        shared = {"choices": self.choices, "negations": CHOICE_NEGATIONS, "help": self.help}
        return ExtraField(
            field,
            label,
            ops,
            compile_condition,
            available=available,
            per_person=per_person,
            **shared,
        )
