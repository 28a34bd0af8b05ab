"""Two people, whatever anyone says: the rule that refuses a merge, declared once.

Records from two different groups (two persons, or the two sides of a pair) with different
valid e-mails AND different birthdays are two people. The merge refuses them
(``services.merge``) and the review queue never offers them (``batch``): it records the
pair as refused, with this reason, instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from enseigne.contacts.models import Contact

from .models import RecordLink


def contradiction(contact_ids: Sequence[Sequence[int]]) -> tuple[int, int] | None:
    """Two records from two different groups with different valid e-mails AND different
    birthdays: two people, whatever anyone says."""
    flat = [c for group in contact_ids for c in group]
    emails = dict(
        RecordLink.objects.filter(contact_id__in=flat).values_list("contact_id", "email_key")
    )
    birthdays = dict(Contact.objects.filter(pk__in=flat).values_list("pk", "birthday"))
    for group_a, group_b in combinations(contact_ids, 2):
        for a in group_a:
            for b in group_b:
                if (
                    emails.get(a)
                    and emails.get(b)
                    and emails[a] != emails[b]
                    and birthdays.get(a)
                    and birthdays.get(b)
                    and birthdays[a] != birthdays[b]
                ):
                    return a, b
    return None


def persons_contradict(pairs: Sequence[tuple[int, int]]) -> set[tuple[int, int]]:
    """The pairs of records (left, right) whose persons could not be merged: each side's
    whole person (a record not linked yet: itself), as the merge would see them."""
    ids = {c for pair in pairs for c in pair}
    person_of = dict(
        RecordLink.objects.filter(contact_id__in=ids).values_list("contact_id", "person_id")
    )
    persons = {p for p in person_of.values()}
    members: dict[int, list[int]] = {}
    for contact_id, person_id in RecordLink.objects.filter(person_id__in=persons).values_list(
        "contact_id", "person_id"
    ):
        members.setdefault(person_id, []).append(contact_id)

    def group(contact_id: int) -> list[int]:
        person = person_of.get(contact_id)
        return members.get(person, [contact_id]) if person is not None else [contact_id]

    return {pair for pair in pairs if contradiction([group(pair[0]), group(pair[1])])}
