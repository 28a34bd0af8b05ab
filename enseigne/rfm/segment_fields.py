"""Segment conditions on RFM groups (issue 21), through ``contacts.segments.ExtraField``.

- ``rfm_group``: the record's group among its store's buyers; identity gives it a person
  twin for HQ ("any record of the person is in the group in its store");
- ``network_rfm_group`` (HQ only): the person's group among the network's buyers (a record
  not linked yet is its own person). Declared after identity's provider, so it gets no twin:
  it is a person's condition already.

The value is a group key or a list of them ("in any of these groups"). A record that bought
nothing in the window has no group: it is in none, so "is not" selects it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.contacts.segments import CHOICE_NEGATIONS, CHOICE_OPS, ExtraField
from enseigne.identity.segment_fields import is_hq, person_rows
from enseigne.network.models import User

from .groups import Group
from .models import PersonScore, RecordScore


def _groups(value, where: str) -> list[str]:
    keys = value if isinstance(value, list) else [value]
    if not keys or any(key not in Group.values for key in keys):
        raise ValidationError(
            _("%(where)s: choose RFM groups among %(groups)s.")
            % {"where": where, "groups": ", ".join(Group.values)}
        )
    return [str(key) for key in keys]


def _record_group(user: User, op: str, value, where: str, days: int | None) -> Q:
    found = Q(
        Exists(RecordScore.objects.filter(group__in=_groups(value, where), contact=OuterRef("pk")))
    )
    return found if op == "equals" else ~found


def _network_group(user: User, op: str, value, where: str, days: int | None) -> Q:
    found = person_rows(PersonScore.objects.filter(group__in=_groups(value, where)))
    return found if op == "equals" else ~found


def _choices(user: User) -> list[list[str]]:
    return [[key, str(label)] for key, label in Group.choices]


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        ExtraField(
            field="rfm_group",
            label=gettext_lazy("RFM group in the store"),
            ops=CHOICE_OPS,
            compile=_record_group,
            choices=_choices,
            negations=CHOICE_NEGATIONS,
        )
    ]


def network_fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        ExtraField(
            field="network_rfm_group",
            label=gettext_lazy("RFM group in the network (person)"),
            ops=CHOICE_OPS,
            compile=_network_group,
            choices=_choices,
            available=is_hq,
            negations=CHOICE_NEGATIONS,
        )
    ]
