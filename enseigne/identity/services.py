"""HQ's decisions on the customer base: merge, split, keep apart, undo, settings.

Each decision is one ``IdentityChange`` that lists what it changed, entry by entry, so it
can be read and reversed exactly:

- ``{"contact", "from", "to", "method", "score", "linked_at", "linked_by"}``: a record's
  link before the change (``from`` and its method, score, time and author) and the person
  it was put in (``to``);
- ``{"released": [left, right]}``: a "kept apart" pair the change removed;
- ``{"candidate", "status"}``: a review entry the change decided, with its status before.

The "kept apart" pairs a change creates point to it (``KeptApart.change``). Undoing a
change is itself a change (``reverses``), audited like any other; a change is undone at
most once (``reverses`` is unique). Links set here are ``manual``: no matching run moves
them (see ``linking``). The audit log gets ids and counts, never a name or an address.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from enseigne.contacts.models import Contact
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import Network, OrgNode, User
from enseigne.network.services import audit

from .contradiction import contradiction
from .models import (
    IdentityChange,
    IdentityPolicy,
    KeptApart,
    LinkMethod,
    MatchCandidate,
    ModelRun,
    Person,
    RecordLink,
    thresholds_error,
)


class Decision:
    MERGE = "merge"
    KEEP_APART = "keep_apart"


def identity_root(actor: User | None) -> str:
    """The network root whose customer base ``actor`` manages.

    Only HQ reaches the mother base: anyone else is answered as if it did not exist (404
    in the views); an HQ role without the capability is refused (403)."""
    access = access_for(actor)
    roots = [g for g in access.grants if len(g.path) == OrgNode.steplen and g.role_level == "hq"]
    if not roots:
        raise LookupError("not HQ")
    for grant in roots:
        if Capability.MANAGE_IDENTITY in grant.capabilities:
            return grant.path
    raise PermissionDenied(_("Your role does not manage the customer base."))


def _require_manager(actor: User | None) -> str:
    try:
        return identity_root(actor)
    except LookupError:
        raise PermissionDenied(_("Only HQ manages the customer base.")) from None


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _relink(targets: dict[int, dict], *, actor: User | None, now: dt.datetime) -> list[dict]:
    """Put each record where ``targets`` says; return the entries that say where it was."""
    entries = []
    links = RecordLink.objects.filter(contact_id__in=targets).select_for_update()
    for link in links.order_by("contact_id"):
        target = targets[link.contact_id]
        entries.append(
            {
                "contact": link.contact_id,
                "from": link.person_id,
                "to": target["person"],
                "method": link.method,
                "score": link.score,
                "linked_at": link.linked_at.isoformat(),
                "linked_by": link.linked_by_id,
            }
        )
        RecordLink.objects.filter(pk=link.pk).update(
            person_id=target["person"],
            method=target.get("method", LinkMethod.MANUAL),
            score=target.get("score"),
            linked_at=target.get("linked_at", now),
            linked_by_id=target.get("linked_by", actor.pk if actor else None),
        )
    return entries


def _close_candidates(
    contact_ids: Iterable[int], status: str, *, actor: User | None, now: dt.datetime
) -> list[dict]:
    """Decide the open review entries between these records; return their entries."""
    ids = list(contact_ids)
    open_ones = MatchCandidate.objects.filter(
        left_id__in=ids, right_id__in=ids, status=MatchCandidate.Status.OPEN
    )
    entries = [
        {"candidate": pk, "status": MatchCandidate.Status.OPEN}
        for pk in open_ones.values_list("pk", flat=True)
    ]
    MatchCandidate.objects.filter(pk__in=[e["candidate"] for e in entries]).update(
        status=status, decided_at=now, decided_by=actor
    )
    return entries


def _record_change(
    *,
    actor: User | None,
    kind: str,
    moves: list[dict],
    into: int | None,
    reason: str,
    root: str,
    reverses: IdentityChange | None = None,
) -> IdentityChange:
    try:
        with transaction.atomic():
            change = IdentityChange.objects.create(
                kind=kind,
                unit_path=root,
                moves=moves,
                into_id=into,
                reason=reason[:300],
                made_by=actor,
                reverses=reverses,
            )
    except IntegrityError:
        raise ValidationError(_("This change was already undone.")) from None
    records = sum(1 for m in moves if "contact" in m)
    audit(
        actor=actor,
        action="identity.undo" if reverses else f"identity.{kind}",
        target_type="identitychange",
        target_id=str(change.pk),
        node_path=root,
        changes={
            "records": records,
            "persons": len({m["from"] for m in moves if "contact" in m}),
            **({"reverses": reverses.pk} if reverses else {}),
        },
    )
    return change


@transaction.atomic
def merge(
    *,
    actor: User | None,
    persons: Sequence[Person] = (),
    records: Sequence[Contact] = (),
    reason: str = "",
) -> IdentityChange:
    """Put the given persons and records together as one person (by hand).

    The person kept is the one with the most records (the oldest on a tie), so the id an
    integration holds most often stays valid. Refused when two records would contradict
    (different e-mails and different birthdays)."""
    root = _require_manager(actor)
    with db_scope(ALL):
        person_ids = {p.pk for p in persons}
        record_ids = [r.pk for r in records]
        person_ids |= set(
            RecordLink.objects.filter(contact_id__in=record_ids).values_list("person_id", flat=True)
        )
        groups: dict[int, list[int]] = {pk: [] for pk in person_ids}
        for contact_id, person_id in RecordLink.objects.filter(
            person_id__in=person_ids, unit_path__startswith=root
        ).values_list("contact_id", "person_id"):
            groups[person_id].append(contact_id)
        groups = {pk: members for pk, members in groups.items() if members}
        if len(groups) < 2:
            raise ValidationError(_("Choose records of at least two different people to merge."))
        clash = contradiction(list(groups.values()))
        if clash is not None:
            raise ValidationError(
                _(
                    "These records cannot be merged: two of them have different e-mail "
                    "addresses and different birthdays, so they are two people."
                )
            )
        into = min(groups, key=lambda pk: (-len(groups[pk]), pk))
        now = timezone.now()
        members = [c for group in groups.values() for c in group]
        moves = _relink({c: {"person": into} for c in members}, actor=actor, now=now)
        released = KeptApart.objects.filter(left_id__in=members, right_id__in=members)
        for left, right in released.values_list("left_id", "right_id"):
            moves.append({"released": [left, right]})
        released.delete()
        moves += _close_candidates(members, MatchCandidate.Status.MERGED, actor=actor, now=now)
        return _record_change(
            actor=actor,
            kind=IdentityChange.Kind.MERGE,
            moves=moves,
            into=into,
            reason=reason,
            root=root,
        )


@transaction.atomic
def split(*, actor: User | None, records: Sequence[Contact], reason: str = "") -> IdentityChange:
    """The records leave their person for a new one, and stay apart from the records left
    behind: each separated pair is kept apart, so no later run joins them again."""
    root = _require_manager(actor)
    with db_scope(ALL):
        moving = sorted({r.pk for r in records})
        persons = set(
            RecordLink.objects.filter(
                contact_id__in=moving, unit_path__startswith=root
            ).values_list("person_id", flat=True)
        )
        if len(persons) != 1 or not moving:
            raise ValidationError(_("Choose records of one person to split off."))
        (source,) = persons
        staying = list(
            RecordLink.objects.filter(person_id=source)
            .exclude(contact_id__in=moving)
            .values_list("contact_id", flat=True)
        )
        if not staying:
            raise ValidationError(
                _("Leave at least one record with the person: these are all of its records.")
            )
        now = timezone.now()
        new_person = Person.objects.create()
        moves = _relink({c: {"person": new_person.pk} for c in moving}, actor=actor, now=now)
        moves += _close_candidates(
            [*moving, *staying], MatchCandidate.Status.REJECTED, actor=actor, now=now
        )
        change = _record_change(
            actor=actor,
            kind=IdentityChange.Kind.SPLIT,
            moves=moves,
            into=new_person.pk,
            reason=reason,
            root=root,
        )
        _keep_apart([_pair(a, b) for a in moving for b in staying], change)
        return change


@transaction.atomic
def detach(
    *, root: str, groups: Sequence[Sequence[int]], methods: Sequence[str], reason: str
) -> IdentityChange:
    """The system's split: each group of records leaves its person for a new one of its own.

    Used when a key that joined people turns out to be shared (``linking``): no one decided
    these records differ, so no pair is kept apart and a later model run may join them on
    their other fields; HQ reads the change in the history and may undo it like any other."""
    now = timezone.now()
    targets: dict[int, dict] = {}
    for group, method in zip(groups, methods, strict=True):
        person = Person.objects.create()
        targets.update({c: {"person": person.pk, "method": method} for c in group})
    moves = _relink(targets, actor=None, now=now)
    return _record_change(
        actor=None,
        kind=IdentityChange.Kind.SPLIT,
        moves=moves,
        into=None,
        reason=reason,
        root=root,
    )


def _keep_apart(pairs: Iterable[tuple[int, int]], change: IdentityChange) -> None:
    KeptApart.objects.bulk_create(
        [KeptApart(left_id=left, right_id=right, change=change) for left, right in set(pairs)],
        ignore_conflicts=True,
    )


@transaction.atomic
def undo(*, actor: User | None, change: IdentityChange, reason: str = "") -> IdentityChange:
    """Reverse ``change`` exactly; refused when a later change moved the same records."""
    root = _require_manager(actor)
    with db_scope(ALL):
        change = IdentityChange.objects.select_for_update().get(pk=change.pk)
        if IdentityChange.objects.filter(reverses=change).exists():
            raise ValidationError(_("This change was already undone."))
        contact_moves = [m for m in change.moves if "contact" in m]
        current = dict(
            RecordLink.objects.filter(
                contact_id__in=[m["contact"] for m in contact_moves]
            ).values_list("contact_id", "person_id")
        )
        if any(current.get(m["contact"]) != m["to"] for m in contact_moves):
            raise ValidationError(
                _("Later changes moved some of these records: undo them first, newest first.")
            )
        now = timezone.now()
        # A person emptied by the change may have been pruned since (no records, no data):
        # it comes back under its id.
        wanted = {m["from"] for m in contact_moves}
        present = set(Person.objects.filter(pk__in=wanted).values_list("pk", flat=True))
        Person.objects.bulk_create([Person(pk=pk) for pk in sorted(wanted - present)])
        targets = {
            m["contact"]: {
                "person": m["from"],
                "method": m["method"],
                "score": m["score"],
                "linked_at": parse_datetime(m["linked_at"]),
                "linked_by": m["linked_by"],
            }
            for m in contact_moves
        }
        moves = _relink(targets, actor=actor, now=now)
        # The pairs the change kept apart are released; those it released are kept again.
        created = KeptApart.objects.filter(change=change)
        moves += [
            {"released": [left, right]}
            for left, right in created.values_list("left_id", "right_id")
        ]
        created.delete()
        restored = [tuple(m["released"]) for m in change.moves if "released" in m]
        for m in change.moves:
            if "candidate" in m:
                candidate = MatchCandidate.objects.filter(pk=m["candidate"]).first()
                if candidate is not None:
                    moves.append({"candidate": candidate.pk, "status": candidate.status})
                    MatchCandidate.objects.filter(pk=candidate.pk).update(
                        status=m["status"],
                        decided_at=None if m["status"] == MatchCandidate.Status.OPEN else now,
                        decided_by=None if m["status"] == MatchCandidate.Status.OPEN else actor,
                    )
        opposite = (
            IdentityChange.Kind.SPLIT
            if change.kind == IdentityChange.Kind.MERGE
            else IdentityChange.Kind.MERGE
        )
        # Undoing a split puts the records back into the person they left.
        into = (
            next((m["from"] for m in contact_moves), None)
            if change.kind == IdentityChange.Kind.SPLIT
            else None
        )
        reversal = _record_change(
            actor=actor,
            kind=opposite,
            moves=moves,
            into=into,
            reason=reason,
            root=root,
            reverses=change,
        )
        _keep_apart(restored, reversal)
        return reversal


@transaction.atomic
def decide(
    *, actor: User | None, candidate: MatchCandidate, decision: str, reason: str = ""
) -> IdentityChange:
    """HQ's answer to a review entry: the two records are one person, or two."""
    _require_manager(actor)
    with db_scope(ALL):
        candidate = MatchCandidate.objects.select_for_update().get(pk=candidate.pk)
        if candidate.status != MatchCandidate.Status.OPEN:
            raise ValidationError(_("This pair was already decided."))
        left, right = candidate.left, candidate.right
        same = (
            RecordLink.objects.filter(contact_id__in=[left.pk, right.pk])
            .values("person_id")
            .distinct()
            .count()
            == 1
        )
        if decision == Decision.MERGE:
            if same:
                raise ValidationError(_("These two records are already one person."))
            return merge(actor=actor, records=[left, right], reason=reason)
        if decision != Decision.KEEP_APART:
            raise ValidationError(_("Unknown decision."))
        if same:
            return split(actor=actor, records=[right], reason=reason)
        now = timezone.now()
        moves = _close_candidates(
            [left.pk, right.pk], MatchCandidate.Status.REJECTED, actor=actor, now=now
        )
        change = _record_change(
            actor=actor,
            kind=IdentityChange.Kind.SPLIT,
            moves=moves,
            into=None,
            reason=reason,
            root=_require_manager(actor),
        )
        _keep_apart([_pair(left.pk, right.pk)], change)
        return change


@transaction.atomic
def policy_update(
    *, actor: User | None, mode: str, gmail_rules: bool
) -> tuple[IdentityPolicy, bool]:
    """Save HQ's identity settings; return the policy and whether the e-mail keys of the
    network's records must be recomputed (the Gmail rules changed)."""
    root = _require_manager(actor)
    if mode not in IdentityPolicy.Mode.values:
        raise ValidationError({"mode": _("Choose one of the two modes.")})
    network = Network.objects.get(node__path=root)
    policy, _created = IdentityPolicy.objects.select_for_update().get_or_create(network=network)
    rekey = policy.gmail_rules != gmail_rules
    before = {"mode": policy.mode, "gmail_rules": policy.gmail_rules}
    policy.mode, policy.gmail_rules = mode, gmail_rules
    policy.save(update_fields=["mode", "gmail_rules", "updated_at"])
    audit(
        actor=actor,
        action="identity.settings",
        target_type="identitypolicy",
        target_id=str(policy.pk),
        node_path=root,
        changes={"before": before, "after": {"mode": mode, "gmail_rules": gmail_rules}},
    )
    return policy, rekey


def _number(value: object, field: str, label: str) -> float:
    try:
        number = float(str(value).strip().replace(",", "."))
    except (TypeError, ValueError):
        number = float("nan")
    if number != number or number in (float("inf"), float("-inf")):  # NaN or infinite
        raise ValidationError(
            {field: _("%(label)s: write a number between 0 and 1, such as 0.5.") % {"label": label}}
        )
    return number


@transaction.atomic
def matching_settings_update(
    *,
    actor: User | None,
    match_threshold: object,
    review_threshold: object,
    model_schedule: str,
    model_weekday: object = IdentityPolicy.Weekday.SUNDAY,
) -> IdentityPolicy:
    """Save the model's thresholds and schedule (audited with their values before and after).

    Numbers are accepted as numbers or text (``0,5`` as a French marketer writes it); a
    wrong value is refused with a message naming its field, and nothing is saved."""
    root = _require_manager(actor)
    match_value = _number(match_threshold, "match_threshold", _("Merge automatically from"))
    review_value = _number(review_threshold, "review_threshold", _("Send to review from"))
    wrong = thresholds_error(match_value, review_value)
    if wrong:
        raise ValidationError(wrong)
    if model_schedule not in IdentityPolicy.Schedule.values:
        raise ValidationError({"model_schedule": _("Choose when the matching runs.")})
    try:
        weekday = int(str(model_weekday))
    except ValueError:
        weekday = -1
    if weekday not in IdentityPolicy.Weekday.values:
        raise ValidationError({"model_weekday": _("Choose a day of the week.")})
    network = Network.objects.get(node__path=root)
    policy, _created = IdentityPolicy.objects.select_for_update().get_or_create(network=network)
    fields = ("match_threshold", "review_threshold", "model_schedule", "model_weekday")
    before = {name: getattr(policy, name) for name in fields}
    policy.match_threshold, policy.review_threshold = match_value, review_value
    policy.model_schedule, policy.model_weekday = model_schedule, weekday
    after = {name: getattr(policy, name) for name in fields}
    policy.save(update_fields=[*fields, "updated_at"])
    if before != after:
        audit(
            actor=actor,
            action="identity.matching_settings",
            target_type="identitypolicy",
            target_id=str(policy.pk),
            node_path=root,
            changes={"before": before, "after": after},
        )
    return policy


def _expire_lost_runs(network: Network | None, now: dt.datetime) -> None:
    """Fail the runs of ``network`` (of every network: None) lost for hours, audited."""
    lost = ModelRun.objects.filter(ModelRun.lost(now))
    if network is not None:
        lost = lost.filter(network=network)
    for run in lost.select_related("network__node"):
        expired = ModelRun.objects.filter(pk=run.pk, status=run.status).update(
            status=ModelRun.Status.FAILED, finished_at=now, failure=ModelRun.Failure.LOST
        )
        if expired:
            audit(
                actor=None,
                action="identity.model_run_failed",
                target_type="modelrun",
                target_id=str(run.pk),
                node_path=run.network.node.path,
                changes={"run": run.pk, "trigger": run.trigger, "error": "lost"},
            )


@transaction.atomic
def model_run_request(
    *,
    actor: User | None,
    trigger: str = ModelRun.Trigger.HAND,
    network: Network | None = None,
) -> ModelRun:
    """Queue a pass of the model over the network (one at a time per network).

    A person (``actor``, from the settings page) asks for the network they manage; the
    schedule and the command act as the system (``actor`` None) and name the network. A run asked from the page or
    the schedule goes to the worker once this transaction commits; the command runs it
    itself (``batch.execute_run``)."""
    if actor is not None or trigger == ModelRun.Trigger.HAND or network is None:
        # A person asks for their own network only, whatever the caller passed.
        root = _require_manager(actor)
        network = Network.objects.select_related("node").get(node__path=root)
    else:
        root = network.node.path
    now = timezone.now()
    _expire_lost_runs(network, now)
    try:
        with transaction.atomic():
            run = ModelRun.objects.create(
                network=network,
                trigger=trigger,
                requested_by=actor,
                queued_at=now,
                status=ModelRun.Status.QUEUED,
            )
    except IntegrityError:
        active = ModelRun.objects.filter(network=network, status__in=ModelRun.ACTIVE).first()
        since = timezone.localtime(
            (active.started_at or active.queued_at) if active else now
        ).strftime("%H:%M")
        raise ValidationError(
            _(
                "A matching run is already under way (since %(time)s): wait until it "
                "finishes before starting another."
            )
            % {"time": since}
        ) from None
    audit(
        actor=actor,
        action="identity.model_run_requested",
        target_type="modelrun",
        target_id=str(run.pk),
        node_path=root,
        changes={"run": run.pk, "trigger": trigger},
    )
    if trigger != ModelRun.Trigger.COMMAND:
        from .tasks import run_model  # the tasks module imports this one

        run_id = run.pk
        transaction.on_commit(lambda: run_model(run_id))
    return run


# Scheduled runs start at this hour of the network's time zone, when the stores are closed,
# or as soon as the worker's hourly check sees them within the quiet window. A record not
# linked yet (written by raw SQL; the nightly upkeep links it) waits for the next run.
SCHEDULE_HOUR = 4
SCHEDULE_WINDOW = dt.timedelta(hours=3)


def schedule_slot(policy: IdentityPolicy, now: dt.datetime) -> dt.datetime | None:
    """When the scheduled run due at ``now`` was planned, or None when none is due."""
    if policy.model_schedule == IdentityPolicy.Schedule.OFF:
        return None
    try:
        zone = zoneinfo.ZoneInfo(policy.network.time_zone or settings.TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    local = now.astimezone(zone)
    slot = local.replace(hour=SCHEDULE_HOUR, minute=0, second=0, microsecond=0)
    if (
        policy.model_schedule == IdentityPolicy.Schedule.WEEKLY
        and slot.weekday() != policy.model_weekday
    ):
        return None
    if not slot <= local < slot + SCHEDULE_WINDOW:
        return None
    return slot


def policies_due(now: dt.datetime) -> list[IdentityPolicy]:
    """The networks whose schedule asks for a run now, and which have had none since its
    planned time (queued, finished, or still under way)."""
    due = []
    policies = IdentityPolicy.objects.exclude(model_schedule=IdentityPolicy.Schedule.OFF)
    for policy in policies.select_related("network__node").order_by("pk"):
        slot = schedule_slot(policy, now)
        if slot is None:
            continue
        ran = ModelRun.objects.filter(network=policy.network).filter(
            Q(queued_at__gte=slot)
            | (Q(finished_at__gte=slot) & ~Q(failure=ModelRun.Failure.LOST))
            | Q(status__in=ModelRun.ACTIVE)
        )
        if not ran.exists():
            due.append(policy)
    return due


def scheduled_runs_start() -> list[ModelRun]:
    """Queue the runs the schedules ask for now; a network whose run is under way is
    skipped (system work, from the worker's hourly check)."""
    started = []
    now = timezone.now()
    with db_scope(ALL):
        with transaction.atomic():
            _expire_lost_runs(None, now)
        for policy in policies_due(now):
            try:
                started.append(
                    model_run_request(
                        actor=None, trigger=ModelRun.Trigger.SCHEDULE, network=policy.network
                    )
                )
            except ValidationError:
                continue
    return started
