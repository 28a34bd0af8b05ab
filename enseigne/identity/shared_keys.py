"""Keys several records share: the groups they join, and keys shared too widely to join anyone.

Matching joins the records that share an e-mail or phone key (``Groups``). A key typed on
``shared_key_cap()`` records or more (a shop's phone on every card, a test address) joins
nobody: the first batch that finds it so tells HQ once (a review-queue row, ``alerted_keys``)
and undoes the joins it had made (``detach_shared``), as an audited change HQ may reverse.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db.models import Q

from .models import IdentityChange, LinkMethod, MatchCandidate, RecordLink

KIND_COLUMN = {"email": "email_key", "phone": "phone_key"}


def shared_key_cap() -> int:
    return int(getattr(settings, "ENSEIGNE_IDENTITY_SHARED_KEY_CAP", 10))


class Groups:
    """Union-find over the batch's records, joined by the keys they share."""

    def __init__(self, ids: Iterable[int]):
        self.parent = {i: i for i in ids}

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def shared_kind(members: list[int], keys: dict[int, dict[str, str | None]]) -> str:
    emails = [keys[m]["email"] for m in members if keys[m]["email"] is not None]
    return LinkMethod.EMAIL if len(set(emails)) < len(emails) else LinkMethod.PHONE


def alerted_keys(shared: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """The shared keys HQ was already told of."""
    if not shared:
        return set()
    told = MatchCandidate.objects.filter(
        reason=MatchCandidate.Reason.SHARED_KEY, detail__key__in=[key for _, key in shared]
    ).values_list("detail__kind", "detail__key")
    return {(kind, key) for kind, key in told}


def detach_shared(root: str, found: set[tuple[str, str]], shared: set[tuple[str, str]]) -> None:
    """Keys just found shared (a shop's phone or address typed on many cards) had joined
    records only because they were typed on them: each person they hold together is split
    back into the groups its records' other keys join — no shared key, no key HQ was already
    told is shared. The person keeps the group of its oldest record and the records HQ or
    the model linked; the others leave, by the system, in one audited change HQ may undo
    (``services.detach``)."""
    from .services import detach

    holding = Q()
    for kind, key in found:
        holding |= Q(**{KIND_COLUMN[kind]: key})
    persons = set(
        RecordLink.objects.filter(holding, unit_path__startswith=root)
        .values_list("person_id", flat=True)
        .distinct()
    )
    rows_of: dict[int, list[tuple[int, str, str | None, str | None]]] = defaultdict(list)
    for contact_id, person_id, method, email_key, phone_key in RecordLink.objects.filter(
        person_id__in=persons
    ).values_list("contact_id", "person_id", "method", "email_key", "phone_key"):
        # The key columns read as uuids; the batch's keys are their 32 hex digits.
        rows_of[person_id].append(
            (
                contact_id,
                method,
                email_key.hex if email_key else None,
                phone_key.hex if phone_key else None,
            )
        )
    held = {
        (kind, value)
        for rows in rows_of.values()
        for _c, _m, email_key, phone_key in rows
        for kind, value in (("email", email_key), ("phone", phone_key))
        if value is not None
    }
    ignored = shared | found | alerted_keys(held)
    groups_out: list[list[int]] = []
    keys_of: dict[int, dict[str, str | None]] = {}
    for rows in rows_of.values():
        if len(rows) < 2:
            continue
        groups = Groups(c for c, *_ in rows)
        anchor = min(c for c, *_ in rows)
        holders: dict[tuple[str, str], list[int]] = defaultdict(list)
        for contact_id, method, email_key, phone_key in rows:
            keys_of[contact_id] = {"email": email_key, "phone": phone_key}
            if method in (LinkMethod.MANUAL, LinkMethod.MODEL):
                groups.union(anchor, contact_id)
            for k, value in (("email", email_key), ("phone", phone_key)):
                if value is not None and (k, value) not in ignored:
                    holders[k, value].append(contact_id)
        for members in holders.values():
            for other in members[1:]:
                groups.union(members[0], other)
        components: dict[int, list[int]] = defaultdict(list)
        for contact_id, *_ in rows:
            components[groups.find(contact_id)].append(contact_id)
        groups_out += [m for top, m in components.items() if top != groups.find(anchor)]
    if groups_out:
        detach(
            root=root,
            groups=groups_out,
            methods=[
                LinkMethod.ALONE if len(m) == 1 else shared_kind(m, keys_of) for m in groups_out
            ],
            reason=IdentityChange.SHARED_KEY_REASON,
        )
