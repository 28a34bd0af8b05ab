"""Segment conditions for the person: "someone who clicked in any store" (issue 21).

Every condition the apps before identity offer on a record (received, opened, clicked…)
whose meaning carries over (``ExtraField.per_person``; not the figures summed over a
record's orders) gets a person twin, ``person.<field>``: a record matches when any record of its person
matches the record condition — its own included, so a record not linked yet counts as its
own person. A negative operator ("none within the last 30 days") is the person-level
denial of the positive one: none of the person's records did it.

Only HQ sees these conditions: they read other stores' records (row-level security would
hide them from a store anyway, which would silently change the meaning), and in a
franchise network a store must learn nothing of another store's relationship.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Contact
from enseigne.contacts.segments import ExtraField
from enseigne.network.access import access_for
from enseigne.network.models import OrgNode, User

from .models import RecordLink

PREFIX = "person."


def is_hq(user: User) -> bool:
    return any(
        len(g.path) == OrgNode.steplen and g.role_level == "hq" for g in access_for(user).grants
    )


def for_person(record_condition: Q) -> Q:
    """Records whose person has a record matching ``record_condition`` (itself included)."""
    matching = Contact.objects.filter(record_condition).values("pk")
    persons = RecordLink.objects.filter(contact_id__in=matching).values("person_id")
    # Semi-joins (negated: anti-joins), not NOT IN over every matching record.
    return Q(Exists(RecordLink.objects.filter(contact=OuterRef("pk"), person_id__in=persons))) | (
        record_condition
    )


def person_rows(rows: QuerySet) -> Q:
    """Records whose person has a row in ``rows`` (a table keyed by ``person`` or, for a
    record not linked yet, by its own ``contact``: the network's RFM scores, personas)."""
    persons = rows.filter(person__isnull=False).values("person_id")
    return Q(Exists(RecordLink.objects.filter(contact=OuterRef("pk"), person_id__in=persons))) | Q(
        Exists(rows.filter(contact=OuterRef("pk")))
    )


def _lift(extra: ExtraField):
    def compile_condition(user: User, op: str, value, where: str, days: int | None) -> Q:
        positive = extra.negations.get(op)
        if positive is None:
            return for_person(extra.compile(user, op, value, where, days))
        return ~for_person(extra.compile(user, positive, value, where, days))

    return compile_condition


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [
        ExtraField(
            field=f"{PREFIX}{extra.field}",
            label=format_lazy("{} · {}", _("Person, any store"), extra.label),
            ops=extra.ops,
            compile=_lift(extra),
            choices=extra.choices,
            available=is_hq,
            negations=extra.negations,
        )
        for extra in before
        if extra.per_person and not extra.field.startswith(PREFIX)
    ]
