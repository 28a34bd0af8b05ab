"""Deterministic matching at write time: a new record joins its person in its own transaction.

Whatever writes contact records (the import, the API, the form, the demo) hands the new
records to ``link_new_records`` through the contacts' record hooks (settings
``ENSEIGNE_RECORD_HOOKS``). For each record it computes its keys (``keys.record_keys``),
finds the persons whose records hold the same keys anywhere in the network, and writes
the link and the keys. The rules, in order:

- a key held by ``shared_key_cap()`` records or more (a shop's phone typed on every card,
  a test address) links nobody: the record goes alone and HQ's review queue says why
  (``shared_keys``, which also undoes the joins such a key had made);
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
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from functools import lru_cache

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from enseigne.contacts.models import Contact
from enseigne.contacts.records import Address, Record
from enseigne.lib.bulk import bulk_insert
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import Network, OrgNode

from .erasure import forget_erased_records
from .keys import GMAIL_DOMAINS, is_mobile, record_keys
from .models import (
    IdentityPolicy,
    KeptApart,
    LinkMethod,
    MatchCandidate,
    Person,
    RecordLink,
)
from .shared_keys import (
    KIND_COLUMN,
    Groups,
    alerted_keys,
    detach_shared,
    shared_key_cap,
    shared_kind,
)


def network_root(path: str) -> str:
    return path[: OrgNode.steplen]


def policy_for(root_path: str) -> IdentityPolicy:
    """The network's identity policy (defaults until HQ changes them)."""
    policy = IdentityPolicy.objects.filter(network__node__path=root_path).first()
    if policy is not None:
        return policy
    network = Network.objects.filter(node__path=root_path).first()
    return IdentityPolicy(network=network) if network else IdentityPolicy()


@contextmanager
def jit_off(cursor):
    """No JIT compiling for these simple plans over many rows, and the caller's setting back
    afterwards (``SET LOCAL`` would otherwise last the caller's whole transaction)."""
    cursor.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
    previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        cursor.execute("SELECT set_config('jit', %s, true)", [previous])


def _lock_network(root: str) -> None:
    """One network links one batch at a time, until the writer commits: two stores writing
    the same new customer at once would otherwise each make her a person."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"identity:{root}"])


Keys = dict[int, tuple[str | None, str | None]]  # record -> (e-mail key, phone key)


# What ``key_preparer`` hands over for a record: the rule its keys were computed under
# (network root, Gmail rules), the addresses they were computed from, and the keys.
Prepared = tuple[tuple[str, bool], str | None, str | None, tuple[str | None, str | None]]


def key_preparer(unit_path: str) -> Callable[[Sequence[Address]], list[Prepared]]:
    """The records' keys, computed before they are written (``contacts.records_preparer``).

    The import calls the function returned on each batch in its helper thread, beside the
    validation, so the keys' Python (hashes, normalising, the placeholder rules: about a
    fifth of what matching adds to an import) leaves the writer's thread. The Gmail rule
    is read here, where the database is; ``link_new_records`` uses a prepared key only if
    it was computed under the rule and from the addresses the record has when written."""
    root = network_root(unit_path)
    with db_scope(ALL):
        gmail = policy_for(root).gmail_rules
    rule = (root, gmail)

    def prepare(addresses: Sequence[Address]) -> list[Prepared]:
        return [
            (rule, email, phone, record_keys(root, email, phone, gmail_rules=gmail))
            for email, phone in addresses
        ]

    return prepare


def link_new_records(
    records: Sequence[Record], prepared: Sequence[Prepared | None] | None = None
) -> None:
    """Link each new record to its person, in the caller's transaction (``prepared``: the
    records' keys from ``key_preparer``, where the writer prepared them)."""
    if not records:
        return
    by_root: dict[str, list[tuple[Record, Prepared | None]]] = defaultdict(list)
    pairs = (
        zip(records, prepared, strict=True)
        if prepared is not None
        else ((r, None) for r in records)
    )
    for record, ready in pairs:
        by_root[network_root(record.unit_path)].append((record, ready))
    with db_scope(ALL):
        for root, items in by_root.items():
            policy = policy_for(root)
            now = timezone.now()
            gmail = policy.gmail_rules
            rule = (root, gmail)
            keys: Keys = {}
            for r, ready in items:
                if (
                    ready is not None
                    and ready[0] == rule
                    and ready[1] == r.email
                    and ready[2] == r.phone
                ):
                    keys[r.contact_id] = ready[3]
                else:
                    keys[r.contact_id] = record_keys(root, r.email, r.phone, gmail_rules=gmail)
            group = [r for r, _ready in items]
            if connection.vendor == "postgresql":
                # One network links one batch at a time: two stores importing the same
                # new customer at once would otherwise each make her a person.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"identity:{root}"]
                    )
                group = _link_fresh(group, keys, now)
            if group:
                _link(group, keys, now)


def _link_fresh(records: list[Record], keys: Keys, now: datetime.datetime) -> list[Record]:
    """PostgreSQL: link in one statement every record whose keys nobody holds, in the
    network or in the batch (the bulk of an import); return the others, which need the
    rules below.

    What this costs is what person matching costs an import, so it does the least per
    record: the keys shared within the batch are found here (a dictionary), the statement
    only probes each key's index once (whatever the planner thinks of a table an import
    fills faster than its statistics follow, and with no JIT compiling for a plan this
    simple) and writes the person and the link.
    """
    batch_keys = [keys[r.contact_id] for r in records]
    email_keys = [e for e, _p in batch_keys if e is not None]
    phone_keys = [p for _e, p in batch_keys if p is not None]
    single: list[Record] = []
    together: list[Record] = []
    if len(set(email_keys)) == len(email_keys) and len(set(phone_keys)) == len(phone_keys):
        single = records  # the usual import: no two records of the batch share a key
    else:
        emails, phones = Counter(email_keys), Counter(phone_keys)
        for r, (email_key, phone_key) in zip(records, batch_keys, strict=True):
            shares = (email_key is not None and emails[email_key] > 1) or (
                phone_key is not None and phones[phone_key] > 1
            )
            (together if shares else single).append(r)
        if not single:
            return together
        batch_keys = [keys[r.contact_id] for r in single]
    quote = connection.ops.quote_name
    link, person = quote(RecordLink._meta.db_table), quote(Person._meta.db_table)
    with bound_cursor() as cursor, jit_off(cursor):
        cursor.execute(
            f"""
            WITH rec AS (
                SELECT r.*,
                    (SELECT 1 FROM {link} WHERE email_key = r.ek LIMIT 1) IS NULL
                    AND (SELECT 1 FROM {link} WHERE phone_key = r.pk LIMIT 1) IS NULL AS fresh
                FROM unnest(
                    string_to_array(%(ids)s, ',')::bigint[],
                    string_to_array(%(paths)s, ','),
                    string_to_array(%(ek)s, ',', '')::uuid[],
                    string_to_array(%(pk)s, ',', '')::uuid[]
                ) AS r (id, unit_path, ek, pk)
            ), alone AS (
                SELECT id, unit_path, ek, pk, nextval(%(sequence)s::regclass) AS person
                FROM rec WHERE fresh
            ), people AS (
                INSERT INTO {person} (id, created_at) SELECT person, %(now)s FROM alone
            ), links AS (
                INSERT INTO {link} (contact_id, person_id, unit_path, method, linked_at, email_key, phone_key)
                SELECT id, person, unit_path, %(alone)s, %(now)s, ek, pk FROM alone
            )
            SELECT id FROM rec WHERE NOT fresh
            """,  # noqa: S608 (identifiers from the models' metadata, values as parameters)
            {
                # Each column as one comma-separated text (unit paths are alphanumeric, a
                # missing key is an empty item): the driver's array adaptation, item by
                # item in Python, cost as much as computing the keys.
                "ids": ",".join([str(r.contact_id) for r in single]),
                "paths": ",".join([r.unit_path for r in single]),
                "ek": ",".join([e or "" for e, _p in batch_keys]),
                "pk": ",".join([p or "" for _e, p in batch_keys]),
                "sequence": _person_sequence(),
                "now": now,
                "alone": LinkMethod.ALONE,
            },
        )
        held = {pk for (pk,) in cursor.fetchall()}
    return [*together, *(r for r in single if r.contact_id in held)]


def bound_cursor():
    """A cursor whose parameters travel beside the statement, not inside it (PostgreSQL's
    extended protocol; Django's cursors bind them into the text, client side).

    For statements handed a batch's columns as a few long texts (``_link_fresh``: about
    1.7 MB for 20,000 records): bound into the statement, each text is escaped in Python
    and scanned again by the server's parser, as much work as a key probe
    (docs/benchmarks.md, "Person matching at write time", fifth pass). Wrapped as Django's
    own cursors are: its execute wrappers, query log and error translation apply."""
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    with connection.wrap_database_errors:
        return connection._prepare_cursor(ServerBindingCursor(connection.connection))


@lru_cache(maxsize=1)
def _person_sequence() -> str:
    """The sequence numbering persons (looked up once: per row, it was a catalogue read)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Person._meta.db_table])
        return cursor.fetchone()[0]


def _link(records: list[Record], all_keys: Keys, now: datetime.datetime) -> None:
    keys = {
        r.contact_id: dict(zip(("email", "phone"), all_keys[r.contact_id], strict=True))
        for r in records
    }
    in_batch: dict[tuple[str, str], list[int]] = defaultdict(list)
    for contact_id, record in keys.items():
        for kind, key in record.items():
            if key is not None:
                in_batch[kind, key].append(contact_id)
    holders = _existing_holders(in_batch)  # (kind, key) -> [(contact, person, manual)]
    cap = shared_key_cap()
    shared = {k for k, members in in_batch.items() if len(holders.get(k, ())) + len(members) > cap}

    by_id = {r.contact_id: r for r in records}
    candidates: list[tuple[int, int, str, dict]] = []
    groups = Groups(keys)
    for (kind, key), members in in_batch.items():
        if (kind, key) in shared:
            continue
        for other in members[1:]:
            first = members[0]
            verdict = (
                JOIN
                if kind == "email"
                else phone_verdict(
                    by_id[other].phone,
                    (keys[other]["email"], by_id[other].birthday),
                    (keys[first]["email"], by_id[first].birthday),
                )
            )
            if verdict == JOIN:
                groups.union(first, other)
            else:
                candidates.append((first, other, *_VERDICT_REASONS[verdict]))
    members_of: dict[int, list[int]] = defaultdict(list)
    for contact_id in keys:
        members_of[groups.find(contact_id)].append(contact_id)

    person_of: dict[int, int] = {}
    method_of: dict[int, str] = {}
    new_groups: list[list[int]] = []
    # A record HQ kept apart from some records (only one relinked by link_unlinked can be)
    # never joins their person.
    kept_apart = _kept_apart_persons(list(keys)) if holders else {}
    # What the phone rules read of the records holding a phone: one query for the batch
    # (per record, an import of people another store has by phone made one query a row).
    identifiers = _holders_identifiers(
        {
            holder
            for (kind, _key), found in holders.items()
            if kind == "phone"
            for holder, _ in found
        }
    )
    for members in members_of.values():
        found: dict[str, dict[int, int]] = {"email": {}, "phone": {}}  # kind -> {person: holder}
        barred = {p for m in members for p in kept_apart.get(m, ())}
        if holders:
            for contact_id in members:
                for kind, key in keys[contact_id].items():
                    if key is not None and (kind, key) not in shared:
                        for holder, person in holders.get((kind, key), ()):
                            if person not in barred:
                                found[kind].setdefault(person, holder)
        chosen = _choose(members, found, keys, by_id, candidates, identifiers) if holders else None
        if chosen is None:
            new_groups.append(members)
            continue
        person, method = chosen
        for contact_id in members:
            person_of[contact_id], method_of[contact_id] = person, method

    for members, person in zip(new_groups, _new_persons(len(new_groups), now), strict=True):
        method = LinkMethod.ALONE if len(members) == 1 else shared_kind(members, keys)
        for contact_id in members:
            person_of[contact_id], method_of[contact_id] = person, method

    alerted = alerted_keys(shared)
    for kind, key in sorted(shared - alerted):
        # One alert per key, naming two of its holders; the key links nobody from now on.
        members = in_batch[kind, key]
        earlier = sorted(holders.get((kind, key), ()))
        holder = earlier[0][0] if earlier else members[0]
        newcomer = next((c for c in members if c != holder), None)
        if newcomer is not None:
            count = len(earlier) + len(members)
            candidates.append(
                (
                    holder,
                    newcomer,
                    MatchCandidate.Reason.SHARED_KEY,
                    {"kind": kind, "key": key, "records": count},
                )
            )

    bulk_insert(
        RecordLink,
        ("contact", "person", "unit_path", "method", "linked_at", "email_key", "phone_key"),
        (
            (
                r.contact_id,
                person_of[r.contact_id],
                r.unit_path,
                method_of[r.contact_id],
                now,
                keys[r.contact_id]["email"],
                keys[r.contact_id]["phone"],
            )
            for r in records
        ),
    )
    if candidates:
        _queue(candidates)
    if shared - alerted:
        detach_shared(network_root(records[0].unit_path), shared - alerted, shared | alerted)


def _choose(
    members: list[int],
    found: dict[str, dict[int, int]],
    keys: dict[int, dict[str, str | None]],
    by_id: dict[int, Record],
    candidates: list[tuple[int, int, str, dict]],
    identifiers: dict[int, tuple[str | None, datetime.date | None]],
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
        person, holder = min(found["phone"].items())
        newcomer = by_id[members[0]]
        verdict = phone_verdict(
            newcomer.phone,
            (keys[members[0]]["email"], newcomer.birthday),
            identifiers.get(holder, (None, None)),
        )
        if verdict != JOIN:
            candidates.append((holder, newcomer.contact_id, *_VERDICT_REASONS[verdict]))
            return None
        for other, other_holder in found["phone"].items():
            if other != person:
                candidates.append(
                    (holder, other_holder, MatchCandidate.Reason.CONFLICT, {"kinds": ["phone"]})
                )
                break
        return person, LinkMethod.PHONE
    return None


# What a shared phone alone decides (one rule for batches, writes and edits).
JOIN, REVIEW, REFUSE = "join", "review", "refuse"
_VERDICT_REASONS = {
    REVIEW: (MatchCandidate.Reason.LANDLINE, {}),
    REFUSE: (MatchCandidate.Reason.CONTRADICTION, {"refused": True}),
}


def phone_verdict(
    phone: str | None,
    newcomer: tuple[str | None, datetime.date | None],
    holder: tuple[str | None, datetime.date | None],
) -> str:
    """Whether two records sharing only a phone are one person.

    Each side is (e-mail key, birthday). Two different e-mails *and* two different birthdays
    are two people (a family's phone): refused, never queued. A landline is a household's,
    not a person's: queued for review rather than joined. A mobile joins.
    """
    (email_a, birthday_a), (email_b, birthday_b) = newcomer, holder
    different_emails = bool(email_a and email_b and email_a != email_b)
    if different_emails and birthday_a and birthday_b and birthday_a != birthday_b:
        return REFUSE
    return JOIN if is_mobile(phone) else REVIEW


def _holder_identifiers(holder_id: int) -> tuple[str | None, datetime.date | None]:
    row = (
        RecordLink.objects.filter(contact_id=holder_id)
        .values_list("email_key", "contact__birthday")
        .first()
    )
    return (_hex(row[0]), row[1]) if row else (None, None)


def _holders_identifiers(
    holder_ids: set[int],
) -> dict[int, tuple[str | None, datetime.date | None]]:
    """``_holder_identifiers`` of many records at once: {record: (e-mail key, birthday)}."""
    ordered = sorted(holder_ids)
    found = {}
    for start in range(0, len(ordered), 5000):  # within SQLite's limit on bound variables
        rows = RecordLink.objects.filter(contact_id__in=ordered[start : start + 5000]).values_list(
            "contact_id", "email_key", "contact__birthday"
        )
        found.update({contact_id: (_hex(key), birthday) for contact_id, key, birthday in rows})
    return found


def _hex(key: uuid.UUID | None) -> str | None:
    """A key column's value as ``keys.record_keys`` writes it (32 hex digits)."""
    return None if key is None else key.hex


def _existing_holders(
    wanted: dict[tuple[str, str], list[int]],
) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """The records already holding each key: {(kind, key): [(contact, person)]}."""
    found: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    if not wanted:
        return found
    table = connection.ops.quote_name(RecordLink._meta.db_table)
    for kind, column in KIND_COLUMN.items():
        values = sorted(key for k, key in wanted if k == kind)
        if not values:
            continue
        if connection.vendor == "postgresql":
            # One probe of the key's index per value, whatever the planner thinks of a table
            # an import is filling faster than its statistics follow (a hashed seq scan of
            # every key otherwise), and no JIT compiling for a plan this simple.
            with connection.cursor() as cursor, jit_off(cursor):
                cursor.execute(
                    f"SELECT wanted.key, link.contact_id, link.person_id "  # noqa: S608
                    f"FROM unnest(%s::uuid[]) AS wanted (key) CROSS JOIN LATERAL "
                    f"(SELECT contact_id, person_id FROM {table} WHERE {column} = wanted.key "
                    f"LIMIT %s) AS link",
                    [values, shared_key_cap() + 1],
                )
                rows = cursor.fetchall()
        else:
            rows = []
            for start in range(0, len(values), 5000):
                rows.extend(
                    RecordLink.objects.filter(
                        **{f"{column}__in": values[start : start + 5000]}
                    ).values_list(column, "contact_id", "person_id")
                )
        for key, contact_id, person_id in rows:
            found[kind, key.hex].append((contact_id, person_id))
    # In the same order whatever the database returned: the earliest record first. (No ORDER
    # BY in the probe: with it the planner walked the links' primary key for every key.)
    for holders in found.values():
        holders.sort()
    return found


def _new_persons(count: int, now: datetime.datetime) -> list[int]:
    """Ids of ``count`` new persons (one round trip for the ids on PostgreSQL)."""
    if not count:
        return []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
                [_person_sequence(), count],
            )
            ids = [pk for (pk,) in cursor.fetchall()]
        bulk_insert(Person, ("id", "created_at"), ((pk, now) for pk in ids))
        return ids
    created = Person.objects.bulk_create(
        [Person(created_at=now) for _ in range(count)], batch_size=2000
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
    """Link every record that has no person yet (records older than identity, or written by
    raw SQL outside the writers); return how many. One transaction per page, so a network's
    writers wait at most one page; a record another writer linked meanwhile is left as it is."""
    done, after = 0, 0
    while True:
        with db_scope(ALL):
            rows = list(
                Contact.objects.filter(pk__gt=after, identity_link__isnull=True)
                .order_by("pk")
                .values_list("pk", "unit_path", "email", "phone", "birthday")[:batch]
            )
            if not rows:
                return done
            for root in sorted({network_root(row[1]) for row in rows}):
                _lock_network(root)
            linked = set(
                RecordLink.objects.filter(pk__in=[row[0] for row in rows]).values_list(
                    "pk", flat=True
                )
            )
            link_new_records([Record(*row) for row in rows if row[0] not in linked])
        done += len(rows) - len(linked)
        after = rows[-1][0]


def relink_changed(records: Sequence[Record]) -> None:
    """A record's e-mail or phone changed: keep its keys true and, where it was alone, let it
    join the person its new keys lead to. A record that shares its person with others stays
    (the new key pointing elsewhere waits in the review queue); a link made by hand never
    moves."""
    if not records:
        return
    with db_scope(ALL):
        for root in {network_root(r.unit_path) for r in records}:
            _lock_network(root)
        links = RecordLink.objects.in_bulk([r.contact_id for r in records])
        unlinked = [r for r in records if r.contact_id not in links]
        if unlinked:
            link_new_records(unlinked)
        policies = {root: policy_for(root) for root in {network_root(r.unit_path) for r in records}}
        for record in records:
            link = links.get(record.contact_id)
            if link is not None:
                _relink(record, link, policies[network_root(record.unit_path)])


def _relink(record: Record, link: RecordLink, policy: IdentityPolicy) -> None:
    root = network_root(record.unit_path)
    email_key, phone_key = record_keys(
        root, record.email, record.phone, gmail_rules=policy.gmail_rules
    )
    RecordLink.objects.filter(pk=link.pk).update(email_key=email_key, phone_key=phone_key)
    if link.is_manual:
        return
    wanted = {
        (k, v): [record.contact_id] for k, v in (("email", email_key), ("phone", phone_key)) if v
    }
    holders = _existing_holders(wanted)
    others: dict[str, dict[int, int]] = {"email": {}, "phone": {}}  # kind -> {person: holder}
    for (kind, _key), found in holders.items():
        if len(found) >= shared_key_cap():
            continue
        for contact_id, person in found:
            if contact_id != record.contact_id and person != link.person_id:
                others[kind].setdefault(person, contact_id)
    apart = _kept_apart_from(record.contact_id)
    for kind in others:
        others[kind] = {p: h for p, h in others[kind].items() if h not in apart}
    if others["email"]:
        target, holder = min(others["email"].items())
        method = LinkMethod.EMAIL
    elif others["phone"]:
        target, holder = min(others["phone"].items())
        method = LinkMethod.PHONE
        verdict = phone_verdict(
            record.phone, (email_key, record.birthday), _holder_identifiers(holder)
        )
        if verdict != JOIN:
            _queue([(holder, record.contact_id, *_VERDICT_REASONS[verdict])])
            return
    else:
        return
    alone = not RecordLink.objects.filter(person_id=link.person_id).exclude(pk=link.pk).exists()
    if alone:
        RecordLink.objects.filter(pk=link.pk).update(
            person_id=target, method=method, linked_at=timezone.now()
        )
        Person.objects.filter(pk=link.person_id, links__isnull=True).delete()
    else:
        _queue(
            [(record.contact_id, holder, MatchCandidate.Reason.CONFLICT, {"kinds": ["changed"]})]
        )


def _kept_apart_persons(contact_ids: list[int]) -> dict[int, set[int]]:
    """{record: persons it must not join}: HQ kept it apart from one of their records."""
    pairs = KeptApart.objects.filter(
        Q(left_id__in=contact_ids) | Q(right_id__in=contact_ids)
    ).values_list("left_id", "right_id")
    wanted = set(contact_ids)
    others: dict[int, set[int]] = defaultdict(set)
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
    return {c: {person_of[o] for o in group if o in person_of} for c, group in others.items()}


def _kept_apart_from(contact_id: int) -> set[int]:
    """The records HQ said are not the same person as this one."""
    pairs = KeptApart.objects.filter(Q(left_id=contact_id) | Q(right_id=contact_id))
    return {x for pair in pairs.values_list("left_id", "right_id") for x in pair} - {contact_id}


class _Hooks:
    """What contacts tells identity (settings.ENSEIGNE_RECORD_HOOKS)."""

    written = staticmethod(link_new_records)
    preparer = staticmethod(key_preparer)
    changed = staticmethod(relink_changed)
    erased = staticmethod(forget_erased_records)


hooks = _Hooks()


def prune_empty_persons() -> int:
    """Delete persons no record links to any more (after erasures); return how many."""
    with db_scope(ALL):
        deleted, _ = Person.objects.filter(links__isnull=True).delete()
    return deleted


def rekey_network(root: str, batch: int = 2_000) -> int:
    """Recompute the e-mail keys of a network's Gmail records after HQ changed the Gmail
    rules; return how many keys changed.

    Each changed record goes through ``relink_changed``, as an edited record would: a record
    that was alone joins the person its new key leads to, a link made by hand never moves,
    a record HQ kept apart never joins, a shared key links nobody. Turning the rules off
    again leaves persons joined (HQ splits by hand)."""
    policy = policy_for(root)
    gmail = Q()
    for domain in sorted(GMAIL_DOMAINS):
        gmail |= Q(email__iendswith="@" + domain)
    changed = 0
    after = 0
    with db_scope(ALL):
        while True:
            rows = list(
                Contact.objects.filter(gmail, unit_path__startswith=root, pk__gt=after)
                .order_by("pk")
                .values_list("pk", "unit_path", "email", "phone", "birthday")[:batch]
            )
            if not rows:
                return changed
            after = rows[-1][0]
            current = {
                contact_id: _hex(key)
                for contact_id, key in RecordLink.objects.filter(
                    contact_id__in=[row[0] for row in rows]
                ).values_list("contact_id", "email_key")
            }
            stale = [
                Record(*row)
                for row in rows
                if row[0] in current
                and record_keys(root, row[2], row[3], gmail_rules=policy.gmail_rules)[0]
                != current[row[0]]
            ]
            relink_changed(stale)
            changed += len(stale)
