"""Segment conditions on personas, through ``contacts.segments.ExtraField``:

- ``persona``: the record's persona (identity gives it the person twin ``person.persona``
  for HQ: "any record of the person has this persona");
- ``network_persona`` (HQ only): the person's own persona, the first any of its records
  matches. Declared after identity's provider: a person's condition already.

The value is a persona's public id or a list of them. A record no persona matched is in
none, so "is not" selects it. A persona's own rules may not use these conditions
(``rules.check_persona_rules``): a persona cannot depend on the personas it decides.
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

from .models import PersonaPerson, PersonaRecord
from .selectors import personas_of_user_network


def _personas(user: User, value, where: str) -> list[int]:
    known = {str(p.public_id): p.pk for p in personas_of_user_network(user)}
    keys = value if isinstance(value, list) else [value]
    if not keys or any(str(key) not in known for key in keys):
        raise ValidationError(
            _("%(where)s: choose personas among those HQ defined for the network.")
            % {"where": where}
        )
    return [known[str(key)] for key in keys]


def _record_persona(user: User, op: str, value, where: str, days: int | None) -> Q:
    ids = _personas(user, value, where)
    found = Q(Exists(PersonaRecord.objects.filter(persona_id__in=ids, contact=OuterRef("pk"))))
    return found if op == "equals" else ~found


def _network_persona(user: User, op: str, value, where: str, days: int | None) -> Q:
    found = person_rows(PersonaPerson.objects.filter(persona_id__in=_personas(user, value, where)))
    return found if op == "equals" else ~found


def _choices(user: User) -> list[list[str]]:
    return [[str(p.public_id), p.name] for p in personas_of_user_network(user)]


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        ExtraField(
            field="persona",
            label=gettext_lazy("Persona in the store"),
            ops=CHOICE_OPS,
            compile=_record_persona,
            choices=_choices,
            negations=CHOICE_NEGATIONS,
        )
    ]


def network_fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        ExtraField(
            field="network_persona",
            label=gettext_lazy("Persona in the network (person)"),
            ops=CHOICE_OPS,
            compile=_network_persona,
            choices=_choices,
            available=is_hq,
            negations=CHOICE_NEGATIONS,
        )
    ]
