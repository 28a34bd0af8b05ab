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

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.contacts.segment_choices import ChoiceCondition, has_row
from enseigne.contacts.segments import ExtraField
from enseigne.identity.segment_fields import is_hq, person_rows
from enseigne.network.models import User

from .models import Persona, PersonaPerson, PersonaRecord
from .selectors import personas_of_user_network


def _choices(user: User) -> list[list[str]]:
    return [[str(p.public_id), p.name] for p in personas_of_user_network(user)]


def _ids(keys: list[str]) -> list[int]:
    """The chosen personas' ids (the keys were checked against the user's network)."""
    return list(Persona.objects.filter(public_id__in=keys).values_list("pk", flat=True))


PERSONAS = ChoiceCondition(
    choices=_choices,
    refusal=lambda where: (
        _("%(where)s: choose personas among those HQ defined for the network.") % {"where": where}
    ),
)


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        PERSONAS.field(
            "persona",
            gettext_lazy("Persona in the store"),
            lambda keys, days: has_row(PersonaRecord.objects.filter(persona_id__in=_ids(keys))),
        )
    ]


def network_fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        PERSONAS.field(
            "network_persona",
            gettext_lazy("Persona in the network (person)"),
            lambda keys, days: person_rows(PersonaPerson.objects.filter(persona_id__in=_ids(keys))),
            available=is_hq,
        )
    ]
