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

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.contacts.segment_choices import ChoiceCondition, has_row
from enseigne.contacts.segments import ExtraField
from enseigne.identity.segment_fields import is_hq, person_rows
from enseigne.network.models import User

from .groups import Group
from .models import PersonScore, RecordScore


def _choices(user: User) -> list[list[str]]:
    return [[key, str(label)] for key, label in Group.choices]


GROUPS = ChoiceCondition(
    choices=_choices,
    refusal=lambda where: (
        _("%(where)s: choose RFM groups among %(groups)s.")
        % {"where": where, "groups": ", ".join(Group.values)}
    ),
)


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        GROUPS.field(
            "rfm_group",
            gettext_lazy("RFM group in the store"),
            lambda keys, days: has_row(RecordScore.objects.filter(group__in=keys)),
        )
    ]


def network_fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        GROUPS.field(
            "network_rfm_group",
            gettext_lazy("RFM group in the network (person)"),
            lambda keys, days: person_rows(PersonScore.objects.filter(group__in=keys)),
            available=is_hq,
        )
    ]
