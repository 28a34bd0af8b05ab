"""Deterministic matching at write time: a new record joins its person in its own transaction.

Whatever writes contact records (the import, the API, the form, the demo) hands the new
records to ``link_new_records`` through the contacts' record hooks (settings
``ENSEIGNE_RECORD_HOOKS``). For each record it computes its keys (``keys.record_keys``),
finds the persons whose records hold the same keys anywhere in the network, and writes
the link and the keys. The rules, in order:

- a key held by ``SHARED_KEY_CAP`` records or more (a shop's phone typed on every card, a
  test address) links nobody: the record goes alone and HQ's review queue says why;
- records of the batch that share a key are one person;
- one person found: the record joins it (by e-mail before phone);
- two persons found (the e-mail says one, the phone another): the record joins the e-mail's
  person and the pair waits in the review queue;
- found by phone only, with a different e-mail and a different birthday: never joined
  (two hard identifiers contradict); the refusal is kept, not queued.

Matching crosses units by nature, so it runs as system work (scope ALL) inside the
caller's transaction and returns only person ids; what each unit may read of the result
is decided by the selectors and row-level security on the links.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from enseigne.contacts.models import Contact
from enseigne.contacts.records import Record
from enseigne.lib.bulk import bulk_insert
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import Network, OrgNode

from . import keys as identity_keys
from .models import (
    IdentityPolicy,
    KeptApart,
    LinkMethod,
    MatchCandidate,
    Person,
    RecordKey,
    RecordLink,
)


def shared_key_cap() -> int:
    return int(getattr(settings, "ENSEIGNE_IDENTITY_SHARED_KEY_CAP", 10))


def network_root(path: str) -> str:
    return path[: OrgNode.steplen]


def policy_for(root_path: str) -> IdentityPolicy:
    """The network's identity policy (defaults until HQ changes them)."""
    network = Network.objects.filter(node__path=root_path).first()
    if network is None:
        return IdentityPolicy(mode=IdentityPolicy.Mode.ONE_CONTROLLER, gmail_rules=False)
    policy = IdentityPolicy.objects.filter(network=network).first()
    return policy or IdentityPolicy(network=network)


def keys_of(record: Record, *, gmail_rules: bool) -> dict[str, str]:
    """{kind: hash}, the hash prefixed by the network so two networks never share a person."""
    root = network_root(record.unit_path)
    return {
        kind: hashlib.sha256(f"{root}|{key_hash}".encode()).hexdigest()
        for kind, key_hash in identity_keys.record_keys(
            record.email, record.phone, gmail_rules=gmail_rules
        ).items()
    }


class _Groups:
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


def link_new_records(records: Sequence[Record]) -> dict[int, int]:
    """Link each new record to its person; return {contact id: person id}."""
    if not records:
        return {}
    by_root: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_root[network_root(record.unit_path)].append(record)
    linked: dict[int, int] = {}
    with db_scope(ALL):
        for root, group in by_root.items():
            linked.update(_link(group, policy_for(root)))
    return linked


def _link(records: list[Record], policy: IdentityPolicy) -> dict[int, int]:
    now = timezone.now()
    record_keys = {r.contact_id: keys_of(r, gmail_rules=policy.gmail_rules) for r in records}
    wanted = {h for ks in record_keys.values() for h in ks.values()}
    holders: dict[str, list[tuple[int, int]]] = defaultdict(list)  # hash -> [(contact, person)]
    for key_hash, contact_id, person_id in _existing_holders(wanted):
        holders[key_hash].append((contact_id, person_id))

    cap = shared_key_cap()
    in_batch: dict[str, list[int]] = defaultdict(list)
    for contact_id, ks in record_keys.items():
        for key_hash in ks.values():
            in_batch[key_hash].append(contact_id)
    shared = {h for h in wanted if len(holders.get(h, ())) + len(in_batch[h]) > cap}

    groups = _Groups(record_keys)
    for key_hash, members in in_batch.items():
        if key_hash not in shared:
            for other in members[1:]:
                groups.union(members[0], other)
    members_of: dict[int, list[int]] = defaultdict(list)
    for contact_id in record_keys:
        members_of[groups.find(contact_id)].append(contact_id)

    by_id = {r.contact_id: r for r in records}
    kept_apart = _kept_apart_persons(list(record_keys))
    person_of: dict[int, int] = {}
    method_of: dict[int, str] = {}
    candidates: list[tuple[int, int, str, dict]] = []
    new_groups: list[list[int]] = []
    for members in members_of.values():
        found: dict[str, dict[int, int]] = {"email": {}, "phone": {}}  # kind -> {person: holder}
        for contact_id in members:
            for kind, key_hash in record_keys[contact_id].items():
                if key_hash in shared:
                    continue
                for holder, person in holders.get(key_hash, ()):
                    if not any(person in kept_apart.get(m, ()) for m in members):
                        found[kind].setdefault(person, holder)
        chosen = _choose(members, found, record_keys, by_id, candidates)
        if chosen is None:
            new_groups.append(members)
            continue
        person, method = chosen
        for contact_id in members:
            person_of[contact_id], method_of[contact_id] = person, method

    for members, person in zip(new_groups, _new_persons(len(new_groups), now), strict=True):
        method = LinkMethod.ALONE if len(members) == 1 else _shared_kind(members, record_keys)
        for contact_id in members:
            person_of[contact_id], method_of[contact_id] = person, method

    for key_hash in shared:
        holder = holders.get(key_hash, [(in_batch[key_hash][0], 0)])[0][0]
        newcomer = (
            next(c for c in in_batch[key_hash] if c != holder)
            if len(in_batch[key_hash]) > 1 or holder not in in_batch[key_hash]
            else None
        )
        if newcomer is not None:
            kind = next(k for k, h in record_keys[newcomer].items() if h == key_hash)
            candidates.append(
                (
                    holder,
                    newcomer,
                    MatchCandidate.Reason.SHARED_KEY,
                    {
                        "kind": kind,
                        "records": len(holders.get(key_hash, ())) + len(in_batch[key_hash]),
                    },
                )
            )

    bulk_insert(
        RecordLink,
        ("contact", "person", "unit_path", "method", "linked_at"),
        (
            (r.contact_id, person_of[r.contact_id], r.unit_path, method_of[r.contact_id], now)
            for r in records
        ),
    )
    bulk_insert(
        RecordKey,
        ("contact", "person", "unit_path", "kind", "key_hash"),
        (
            (r.contact_id, person_of[r.contact_id], r.unit_path, kind, key_hash)
            for r in records
            for kind, key_hash in record_keys[r.contact_id].items()
        ),
    )
    if candidates:
        _queue(candidates)
    return person_of


def _choose(
    members: list[int],
    found: dict[str, dict[int, int]],
    record_keys: dict[int, dict[str, str]],
    by_id: dict[int, Record],
    candidates: list[tuple[int, int, str, dict]],
) -> tuple[int, str] | None:
    """The existing person the group joins and how, or None for a new person."""
    if found["email"]:
        person, holder = next(iter(found["email"].items()))
        for other, other_holder in [*found["email"].items(), *found["phone"].items()]:
            if other != person:
                candidates.append(
                    (
                        holder,
                        other_holder,
                        MatchCandidate.Reason.CONFLICT,
                        {"kinds": ["email", "phone"]},
                    )
                )
                break
        return person, LinkMethod.EMAIL
    if found["phone"]:
        person, holder = next(iter(found["phone"].items()))
        newcomer = by_id[members[0]]
        if _contradicts(newcomer, holder, record_keys[members[0]]):
            candidates.append(
                (
                    holder,
                    newcomer.contact_id,
                    MatchCandidate.Reason.CONTRADICTION,
                    {"refused": True},
                )
            )
            return None
        for other, other_holder in found["phone"].items():
            if other != person:
                candidates.append(
                    (holder, other_holder, MatchCandidate.Reason.CONFLICT, {"kinds": ["phone"]})
                )
                break
        return person, LinkMethod.PHONE
    return None


def _contradicts(newcomer: Record, holder_id: int, newcomer_keys: dict[str, str]) -> bool:
    """Different valid e-mails and different birthdays: two people sharing a phone."""
    if newcomer.birthday is None or "email" not in newcomer_keys:
        return False
    holder = Contact.objects.filter(pk=holder_id).values("email", "birthday").first()
    if not holder or holder["birthday"] is None or holder["birthday"] == newcomer.birthday:
        return False
    holder_key = (
        RecordKey.objects.filter(contact_id=holder_id, kind=RecordKey.Kind.EMAIL)
        .values_list("key_hash", flat=True)
        .first()
    )
    return holder_key is not None and holder_key != newcomer_keys["email"]


def _kept_apart_persons(contact_ids: list[int]) -> dict[int, set[int]]:
    """{record: persons it must not join}: HQ kept it apart from one of their records.

    Only a record that had a link before (``link_unlinked`` repairing it) can be in a pair,
    so for new records this is one indexed read that finds nothing."""
    pairs = KeptApart.objects.filter(
        Q(left_id__in=contact_ids) | Q(right_id__in=contact_ids)
    ).values_list("left_id", "right_id")
    others: dict[int, set[int]] = defaultdict(set)
    wanted = set(contact_ids)
    for left, right in pairs:
        if left in wanted:
            others[left].add(right)
        if right in wanted:
            others[right].add(left)
    if not others:
        return {}
    person_of = dict(
        RecordLink.objects.filter(
            contact_id__in={o for group in others.values() for o in group}
        ).values_list("contact_id", "person_id")
    )
    return {
        contact: {person_of[o] for o in group if o in person_of}
        for contact, group in others.items()
    }


def _shared_kind(members: list[int], record_keys: dict[int, dict[str, str]]) -> str:
    emails = {record_keys[m].get("email") for m in members}
    return LinkMethod.EMAIL if len(emails - {None}) < len(members) else LinkMethod.PHONE


def _existing_holders(wanted: set[str]) -> list[tuple[str, int, int]]:
    if not wanted:
        return []
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(RecordKey._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT key_hash, contact_id, person_id FROM {table} WHERE key_hash = ANY (%s)",  # noqa: S608
                [sorted(wanted)],
            )
            return cursor.fetchall()
    found: list[tuple[str, int, int]] = []
    ordered = sorted(wanted)
    for start in range(0, len(ordered), 5000):
        found.extend(
            RecordKey.objects.filter(key_hash__in=ordered[start : start + 5000]).values_list(
                "key_hash", "contact_id", "person_id"
            )
        )
    return found


def _new_persons(count: int, now: datetime.datetime) -> list[int]:
    """Ids of ``count`` new persons (one round trip for the ids on PostgreSQL)."""
    if not count:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Person._meta.db_table, count],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
        bulk_insert(
            Person, ("id", "public_id", "created_at"), ((pk, uuid.uuid4(), now) for pk in ids)
        )
        return ids
    created = Person.objects.bulk_create(
        [Person(public_id=uuid.uuid4(), created_at=now) for _ in range(count)], batch_size=2000
    )
    return [p.pk for p in created]


def _queue(candidates: list[tuple[int, int, str, dict]]) -> None:
    rows = []
    seen = set()
    for a, b, reason, detail in candidates:
        if a == b:
            continue
        left, right = min(a, b), max(a, b)
        if (left, right) in seen:
            continue
        seen.add((left, right))
        status = (
            MatchCandidate.Status.REFUSED if detail.get("refused") else MatchCandidate.Status.OPEN
        )
        rows.append(
            MatchCandidate(
                left_id=left, right_id=right, reason=reason, detail=detail, status=status
            )
        )
    MatchCandidate.objects.bulk_create(rows, ignore_conflicts=True)


def link_unlinked(batch: int = 20_000) -> int:
    """Link every record that has no person yet (existing data, a failed hook); return how many."""
    done = 0
    with db_scope(ALL):
        while True:
            rows = list(
                Contact.objects.filter(identity_link__isnull=True)
                .order_by("pk")
                .values_list("pk", "unit_path", "email", "phone", "birthday")[:batch]
            )
            if not rows:
                return done
            link_new_records([Record(*row) for row in rows])
            done += len(rows)


def rekey_network(root: str, batch: int = 5_000) -> int:
    """Recompute the e-mail keys of a network's records after HQ changed the Gmail rules;
    return how many keys changed.

    A record that was alone and now shares its new key with one other person joins it, as
    a new record would (``method=email``). A link set by hand is never moved, a record
    is never put with a person HQ kept it apart from, and a shared key links nobody.
    Turning the rules off again keeps the persons already joined (undo a merge by hand)."""
    policy = policy_for(root)
    changed: list[int] = []
    with db_scope(ALL):
        last = 0
        while True:
            rows = list(
                Contact.objects.filter(unit_path__startswith=root, pk__gt=last, email__isnull=False)
                .order_by("pk")
                .values_list("pk", "unit_path", "email", "phone", "birthday")[:batch]
            )
            if not rows:
                break
            last = rows[-1][0]
            records = [Record(*row) for row in rows]
            current = dict(
                RecordKey.objects.filter(
                    contact_id__in=[r.contact_id for r in records], kind=RecordKey.Kind.EMAIL
                ).values_list("contact_id", "key_hash")
            )
            person_of = dict(
                RecordLink.objects.filter(
                    contact_id__in=[r.contact_id for r in records]
                ).values_list("contact_id", "person_id")
            )
            for record in records:
                new = keys_of(record, gmail_rules=policy.gmail_rules).get("email")
                old = current.get(record.contact_id)
                if new == old or record.contact_id not in person_of:
                    continue
                changed.append(record.contact_id)
                RecordKey.objects.filter(
                    contact_id=record.contact_id, kind=RecordKey.Kind.EMAIL
                ).delete()
                if new is not None:
                    RecordKey.objects.create(
                        contact_id=record.contact_id,
                        person_id=person_of[record.contact_id],
                        unit_path=record.unit_path,
                        kind=RecordKey.Kind.EMAIL,
                        key_hash=new,
                    )
        _rejoin_alone(changed)
    return len(changed)


def _rejoin_alone(contact_ids: list[int]) -> None:
    cap = shared_key_cap()
    for start in range(0, len(contact_ids), 1000):
        chunk = contact_ids[start : start + 1000]
        kept_apart = _kept_apart_persons(chunk)
        links = RecordLink.objects.filter(contact_id__in=chunk).exclude(method=LinkMethod.MANUAL)
        for link in links:
            if RecordLink.objects.filter(person_id=link.person_id).count() != 1:
                continue
            key = (
                RecordKey.objects.filter(contact_id=link.contact_id, kind=RecordKey.Kind.EMAIL)
                .values_list("key_hash", flat=True)
                .first()
            )
            if key is None:
                continue
            holders = RecordKey.objects.filter(key_hash=key).exclude(contact_id=link.contact_id)
            persons = set(holders.values_list("person_id", flat=True)[: cap + 1])
            if len(persons) != 1 or holders.count() >= cap:
                continue
            (person,) = persons
            if person in kept_apart.get(link.contact_id, ()):
                continue
            RecordLink.objects.filter(pk=link.pk).update(
                person_id=person, method=LinkMethod.EMAIL, linked_at=timezone.now()
            )
            RecordKey.objects.filter(contact_id=link.contact_id).update(person_id=person)
