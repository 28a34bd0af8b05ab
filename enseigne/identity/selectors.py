"""Scoped reads of the customer base: HQ's mother base, and the count a store may see.

Only HQ holding ``manage_identity`` reads persons; anyone else is answered 404 (the mother
base does not exist for a store). A store reads one number about its own record, and only
in *one controller* mode: how many other stores the person is also a customer of.

The person card reads the records through the contacts selectors (the reader's scope), and
the person's orders (commerce) and the messages the person received (the sending ledger).
Those apps come later in the dependency order, so their models are looked up by name
(``apps.get_model``) rather than imported: identity reads their tables, it never writes
them or depends on their code (docs/decisions.md, "HQ's mother base").
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Field, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from enseigne.contacts import selectors as contact_selectors
from enseigne.contacts.models import VALID_CONSENT, ConsentEvent, Contact
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import AuditEvent, OrgNode, User

from . import evidence
from .linking import policy_for
from .models import (
    IdentityChange,
    IdentityPolicy,
    KeptApart,
    MatchCandidate,
    ModelRun,
    Person,
    RecordLink,
)
from .public_ids import pk_of, public_id_of
from .services import identity_root


def get_identity_root_for_user(user: User) -> str:
    """The network root of the customer base ``user`` manages: 404 for anyone but HQ,
    403 for an HQ role without the capability."""
    try:
        return identity_root(user)
    except LookupError:
        raise Http404("Not found.") from None


def may_manage_identity(user: User) -> bool:
    try:
        identity_root(user)
    except (LookupError, PermissionDenied):
        return False
    return True


def policy_of_root(root: str) -> IdentityPolicy:
    return policy_for(root)


def _linked_under(root: str) -> Q:
    return Q(Exists(RecordLink.objects.filter(person=OuterRef("pk"), unit_path__startswith=root)))


# A search reads at most this many matching records (the contacts' name indexes find them);
# the persons behind them are the answer. A query matching more is too vague to page through.
SEARCH_RECORDS_CAP = 2_000


def people_search(user: User, *, query: str = "") -> QuerySet[Person]:
    """Persons with a record matching ``query`` (name, e-mail or phone; accents and case
    ignored, as the contacts list searches), newest first."""
    root = get_identity_root_for_user(user)
    text = query.strip()
    if not text:
        return Person.objects.filter(_linked_under(root)).order_by("-id")
    matching = list(
        contact_selectors.contact_search(user, query=text).values_list("pk", flat=True)[
            :SEARCH_RECORDS_CAP
        ]
    )
    return Person.objects.filter(
        pk__in=RecordLink.objects.filter(contact_id__in=matching).values("person_id")
    ).order_by("-id")


def get_person_for_user(user: User, public_id) -> Person:
    root = get_identity_root_for_user(user)
    pk = pk_of(public_id)
    person = Person.objects.filter(pk=pk).filter(_linked_under(root)).first() if pk else None
    if person is None:
        raise Http404("No such person.")
    return person


def person_records(user: User, person: Person) -> list[Contact]:
    """The person's records the reader may see, oldest first, each with its ``link``."""
    links = {link.contact_id: link for link in RecordLink.objects.filter(person=person)}
    records = list(
        contact_selectors.contacts_for_user(user)
        .filter(pk__in=list(links))
        .select_related("unit")
        .order_by("created_at", "pk")
    )
    for record in records:
        record.link = links[record.pk]  # type: ignore[attr-defined]
    return records


def people_summaries(user: User, people: Sequence[Person]) -> dict[int, dict]:
    """For a list page: each person's display name, e-mail and stores (from its records)."""
    links = RecordLink.objects.filter(person__in=people).values_list("person_id", "contact_id")
    contact_person = {contact: person for person, contact in links}
    records = (
        contact_selectors.contacts_for_user(user)
        .filter(pk__in=list(contact_person))
        .select_related("unit")
        .order_by("-updated_at")
    )
    summaries: dict[int, dict] = {p.pk: {"names": [], "emails": [], "units": []} for p in people}
    for record in records:
        summary = summaries[contact_person[record.pk]]
        for key, value in (
            ("names", record.display_name),
            ("emails", record.email or record.phone),
            ("units", record.unit.name),
        ):
            if value and value not in summary[key]:
                summary[key].append(value)
    return summaries


def people_records_ids(user: User, people: Sequence[Person]) -> dict[int, dict]:
    """For the API's list: each person's name (its most recent record's), record ids and
    unit ids, in three queries for the page."""
    links = RecordLink.objects.filter(person__in=people).values_list("person_id", "contact_id")
    contact_person = {contact: person for person, contact in links}
    records = (
        contact_selectors.contacts_for_user(user)
        .filter(pk__in=list(contact_person))
        .select_related("unit")
        .order_by("-updated_at", "-pk")
    )
    out: dict[int, dict] = {p.pk: {"name": "", "records": [], "units": []} for p in people}
    for record in records:
        entry = out[contact_person[record.pk]]
        entry["name"] = entry["name"] or record.display_name
        entry["records"].append(record.public_id)
        if record.unit.public_id not in entry["units"]:
            entry["units"].append(record.unit.public_id)
    return out


# --- Why a record is linked ---------------------------------------------------------------


def shared_key_kinds(records: Sequence[Contact]) -> dict[int, list[str]]:
    """{record: kinds of its keys another record of the same person also holds}.

    Only the kinds ("e-mail", "phone"), never a value: the keys are hashes and the card
    says which identifier matched, not the other store's address."""
    ids = [r.pk for r in records]
    rows = [
        (contact_id, kind, key)
        for contact_id, email_key, phone_key in RecordLink.objects.filter(
            contact_id__in=ids
        ).values_list("contact_id", "email_key", "phone_key")
        for kind, key in (("email", email_key), ("phone", phone_key))
        if key
    ]
    holders = Counter(key for _c, _k, key in rows)
    kinds: dict[int, list[str]] = {pk: [] for pk in ids}
    for contact_id, kind, key in rows:
        if holders[key] > 1:
            kinds[contact_id].append(kind)
    return {pk: sorted(set(k)) for pk, k in kinds.items()}


# --- Survivorship: the golden record ------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    key: str
    label: Promise
    pick: Callable[[list[Contact], str, dict], Contact | None]


def _non_empty(records: list[Contact], name: str) -> list[Contact]:
    return [r for r in records if getattr(r, name) not in (None, "")]


def _most_recent(records: list[Contact], name: str, facts: dict) -> Contact | None:  # noqa: ARG001
    candidates = _non_empty(records, name)
    return max(candidates, key=lambda r: (r.updated_at, r.pk)) if candidates else None


def _most_frequent(records: list[Contact], name: str, facts: dict) -> Contact | None:
    candidates = _non_empty(records, name)
    if not candidates:
        return None
    counts = Counter(_normal(getattr(r, name)) for r in candidates)
    best = max(counts.values())
    # A tie goes to the most recent record.
    return _most_recent(
        [r for r in candidates if counts[_normal(getattr(r, name))] == best], name, facts
    )


def _last_purchase_store(records: list[Contact], name: str, facts: dict) -> Contact | None:
    buyer = facts.get("last_purchase_contact")
    for record in records:
        if record.pk == buyer and getattr(record, name) not in (None, ""):
            return record
    return _most_recent(records, name, facts)


def _normal(value: Any) -> Any:
    return " ".join(value.lower().split()) if isinstance(value, str) else value


MOST_RECENT = Rule("most_recent", _("most recent non-empty value"), _most_recent)
MOST_FREQUENT = Rule("most_frequent", _("most frequent value"), _most_frequent)
LAST_PURCHASE = Rule(
    "last_purchase",
    _("the record of the store with the last purchase (else the most recent)"),
    _last_purchase_store,
)

# The golden record's fields and the rule each follows, in the order the card shows them.
SURVIVORSHIP: tuple[tuple[str, Promise, Rule], ...] = (
    ("first_name", _("First name"), MOST_FREQUENT),
    ("last_name", _("Last name"), MOST_FREQUENT),
    ("email", _("E-mail"), LAST_PURCHASE),
    ("phone", _("Phone"), LAST_PURCHASE),
    ("birthday", _("Birthday"), MOST_FREQUENT),
    ("language", _("Language"), MOST_RECENT),
)


@dataclass
class GoldenField:
    name: str
    label: Promise
    value: Any
    rule: Rule
    source: Contact | None


def golden_record(records: list[Contact], facts: dict) -> list[GoldenField]:
    golden = []
    for name, label, rule in SURVIVORSHIP:
        source = rule.pick(records, name, facts)
        golden.append(
            GoldenField(
                name=name,
                label=label,
                value=getattr(source, name) if source is not None else None,
                rule=rule,
                source=source,
            )
        )
    return golden


# --- The person card ----------------------------------------------------------------------


@dataclass
class PersonCard:
    person: Person
    records: list[Contact]
    golden: list[GoldenField]
    consents: list[dict]
    purchases: list[Any]
    messages: list[Any]
    last_activity: Any
    changes: list[IdentityChange] = field(default_factory=list)
    kept_apart: int = 0


def _latest_consent_proofs(records: list[Contact]) -> dict[tuple[int, str], ConsentEvent]:
    proofs: dict[tuple[int, str], ConsentEvent] = {}
    events = ConsentEvent.objects.filter(contact__in=records).order_by("occurred_at", "id")
    for event in events:
        proofs[(event.contact_id, event.channel)] = event
    return proofs


def person_card(user: User, person: Person) -> PersonCard:
    records = person_records(user, person)
    # The stores' own orders (commerce), not only the sales credited to campaigns.
    Order = apps.get_model("commerce", "Order")
    Recipient = apps.get_model("campaigns", "Recipient")
    purchases = list(
        Order.objects.filter(contact__in=records)
        .select_related("unit")
        .order_by("-occurred_at", "-id")[:50]
    )
    messages = list(
        Recipient.objects.filter(contact__in=records, status="sent")
        .select_related("campaign", "unit")
        .order_by("-sent_at")[:50]
    )
    facts = {"last_purchase_contact": purchases[0].contact_id if purchases else None}
    kinds = shared_key_kinds(records)
    by_pk = {record.pk: record for record in records}
    for record in records:
        record.matched_kinds = kinds.get(record.pk, [])  # type: ignore[attr-defined]
        found = record.link.evidence or {}  # type: ignore[attr-defined]
        record.comparisons = evidence.comparisons(found)  # type: ignore[attr-defined]
        record.compared_with = by_pk.get(found.get("with"))  # type: ignore[attr-defined]
    proofs = _latest_consent_proofs(records)
    consents = [
        {
            "record": record,
            "channel": channel,
            "status": record.consent_for(channel),
            "valid": record.consent_for(channel) in VALID_CONSENT,
            "proof": proofs.get((record.pk, channel)),
        }
        for record in records
        for channel in ("email", "sms")
        if (record.email if channel == "email" else record.phone)
    ]
    moments = [r.updated_at for r in records]
    moments += [p.occurred_at for p in purchases[:1]]
    moments += [m.sent_at for m in messages[:1] if m.sent_at]
    ids = [r.pk for r in records]
    touched = set(ids)
    changes = [
        change
        for change in changes_for_user(user)[:200]
        if change.into_id == person.pk or any(m.get("contact") in touched for m in change.moves)
    ][:20]
    return PersonCard(
        person=person,
        records=records,
        golden=golden_record(records, facts),
        consents=consents,
        purchases=purchases,
        messages=messages,
        last_activity=max(moments) if moments else None,
        changes=changes,
        kept_apart=KeptApart.objects.filter(Q(left__in=ids) | Q(right__in=ids)).count(),
    )


# --- Review queue and history ------------------------------------------------------------


def open_candidates(user: User) -> QuerySet[MatchCandidate]:
    root = get_identity_root_for_user(user)
    return (
        MatchCandidate.objects.filter(
            status=MatchCandidate.Status.OPEN, left__unit_path__startswith=root
        )
        .select_related("left__unit", "right__unit")
        .order_by("-created_at", "-id")
    )


def get_candidate_for_user(user: User, pk: int) -> MatchCandidate:
    found = open_candidates(user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such pair.")
    return found


def candidate_persons(candidates: Sequence[MatchCandidate]) -> dict[int, Person]:
    ids = [c.left_id for c in candidates] + [c.right_id for c in candidates]
    return {
        link.contact_id: link.person
        for link in RecordLink.objects.filter(contact_id__in=ids).select_related("person")
    }


def changes_for_user(user: User) -> QuerySet[IdentityChange]:
    """The network's merges, splits and undos, newest first.

    A change carries its network's root path (HQ's rows: row-level security lets no
    region or store read them); changes written before it did ('' rows) belong to the
    network whose HQ made them."""
    root = get_identity_root_for_user(user)
    return (
        IdentityChange.objects.filter(
            Q(unit_path=root) | Q(unit_path="", made_by__memberships__node__path=root)
        )
        .distinct()
        .select_related("made_by", "into", "reverses")
        .order_by("-made_at", "-id")
    )


def get_change_for_user(user: User, pk: int) -> IdentityChange:
    found = changes_for_user(user).filter(pk=pk).first()
    if found is None:
        raise Http404("No such change.")
    return found


def undone_ids(changes: Sequence[IdentityChange]) -> set[int]:
    return set(
        IdentityChange.objects.filter(reverses__in=changes).values_list("reverses_id", flat=True)
    )


# --- What a store may see -----------------------------------------------------------------


def other_units_count(contact: Contact) -> int | None:
    """How many other stores the record's person is also a customer of, or None when the
    network's mode lets a store learn nothing of other stores (separate controllers).

    The caller has already fetched ``contact`` through the reader's scope. The count reads
    the other stores' links as system work and returns a number only: no name, no store."""
    root = contact.unit_path[: OrgNode.steplen]
    if policy_for(root).mode != IdentityPolicy.Mode.ONE_CONTROLLER:
        return None
    with db_scope(ALL):
        link = RecordLink.objects.filter(contact=contact).values_list("person_id", flat=True)
        return (
            RecordLink.objects.filter(person_id__in=link)
            .exclude(unit_path=contact.unit_path)
            .values("unit_path")
            .distinct()
            .count()
        )


def person_public_id(user: User, contact: Contact) -> uuid.UUID | None:
    """The contact's person id for the API, where the mode allows it: one controller and a
    reader who manages the customer base (HQ). None otherwise."""
    if not may_manage_identity(user):
        return None
    root = contact.unit_path[: OrgNode.steplen]
    if policy_for(root).mode != IdentityPolicy.Mode.ONE_CONTROLLER:
        return None
    person = RecordLink.objects.filter(contact=contact).values_list("person_id", flat=True).first()
    return None if person is None else public_id_of(person)


def open_review_count(user: User) -> int:
    root = get_identity_root_for_user(user)
    return MatchCandidate.objects.filter(
        status=MatchCandidate.Status.OPEN, left__unit_path__startswith=root
    ).count()


def model_runs(root: str, *, limit: int = 5) -> list[ModelRun]:
    """The network's latest model runs, newest first (``root`` from
    ``get_identity_root_for_user``)."""
    return list(
        ModelRun.objects.filter(network__node__path=root)
        .select_related("requested_by")
        .order_by("-queued_at", "-pk")[:limit]
    )


MATCHING_ACTIONS = (
    "identity.matching_settings",
    "identity.model_run_requested",
    "identity.model_run",
    "identity.model_run_failed",
)


@dataclass
class SettingChange:
    label: str | Promise
    before: Any
    after: Any


def _setting_value(name: str, value: Any) -> Any:
    if name == "model_schedule" and value in IdentityPolicy.Schedule.values:
        return IdentityPolicy.Schedule(value).label
    if name == "model_weekday" and value in IdentityPolicy.Weekday.values:
        return IdentityPolicy.Weekday(value).label
    return value


def setting_changes(event: AuditEvent) -> list[SettingChange]:
    """What a settings entry of the audit log changed, field by field, in the reader's
    language (the log stores the raw values)."""
    before = event.changes.get("before", {}) if isinstance(event.changes, dict) else {}
    after = event.changes.get("after", {}) if isinstance(event.changes, dict) else {}
    if event.action != "identity.matching_settings":
        return []
    labels = {}
    for name in ("match_threshold", "review_threshold", "model_schedule", "model_weekday"):
        field = IdentityPolicy._meta.get_field(name)
        labels[name] = field.verbose_name if isinstance(field, Field) else name
    return [
        SettingChange(
            label,
            _setting_value(name, before.get(name)),
            _setting_value(name, after.get(name)),
        )
        for name, label in labels.items()
        if before.get(name) != after.get(name)
    ]


@dataclass
class MatchingEntry:
    event: AuditEvent
    setting_changes: list[SettingChange]


def matching_history(root: str, *, limit: int = 15) -> list[MatchingEntry]:
    """The audit log's entries for the matching settings and runs of the network, each
    settings change told field by field."""
    events = AuditEvent.objects.filter(node_path=root, action__in=MATCHING_ACTIONS)
    return [
        MatchingEntry(event, setting_changes(event))
        for event in events.select_related("actor").order_by("-occurred_at", "-pk")[:limit]
    ]
