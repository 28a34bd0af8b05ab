"""The probabilistic pass over a whole network: the model's clusters become persons, its
review band becomes HQ's review queue (issue 20).

``probabilistic.match`` is pure data code; this module feeds it the network's records and
writes back what it found, under the rules the write-time linking follows too:

- a link set by hand (``manual``) never moves, and two records HQ kept apart are never put
  together (``KeptApart``), whatever the model says;
- a cluster that joins several persons merges them whole into the oldest one: every record
  of a person moves, so no person is split by a model run; the moved records say
  ``model`` with the pair's probability;
- pairs in the review band, refused contradictions and over-sized clusters become
  ``MatchCandidate`` rows (reason ``model`` or ``contradiction``), with the comparison levels
  a reviewer reads; a pair already decided keeps its decision.

The thresholds come from the network's ``IdentityPolicy`` (``match_settings``: the only
place a policy becomes the model's settings). A run is a ``ModelRun`` row HQ asked for on
the settings page, the schedule queued or ``enseigne match_people`` made; ``execute_run``
takes it from queued to running (compare-and-swap, so a retried or doubled task runs it
once) and to finished with its counts, in the transaction that writes the results, or to
failed with an error in plain words. It runs as system work (scope ALL): in the worker
(``identity.tasks.run_model``) or in the command.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import traceback
from collections import defaultdict

import pandas as pd
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from enseigne.contacts.models import Contact
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import OrgNode
from enseigne.network.services import audit

from .contradiction import persons_contradict
from .linking import policy_for
from .models import (
    IdentityPolicy,
    KeptApart,
    LinkMethod,
    MatchCandidate,
    ModelRun,
    Person,
    RecordLink,
)
from .probabilistic import INPUT_COLUMNS, OPTIONAL_COLUMNS, MatchResult, MatchSettings, match

LEVEL_COLUMNS_SUFFIX = "_level"

logger = logging.getLogger(__name__)


def match_settings(policy: IdentityPolicy, base: MatchSettings | None = None) -> MatchSettings:
    """The model's settings under HQ's policy: its thresholds over the product's defaults
    (``base`` keeps a caller's resources, e.g. DuckDB threads)."""
    return dataclasses.replace(
        base or MatchSettings(),
        match_threshold=policy.match_threshold,
        review_threshold=policy.review_threshold,
    )


def network_records(root: OrgNode) -> pd.DataFrame:
    """The network's records as the matcher reads them (postcode, city and the street line
    ``address`` from the contacts' attributes where HQ declared them)."""
    rows = []
    contacts = Contact.objects.filter(unit_path__startswith=root.path).values_list(
        "pk", "unit_id", "first_name", "last_name", "birthday", "email", "phone", "attributes"
    )
    for pk, unit_id, first, last, birthday, email, phone, attributes in contacts.iterator(
        chunk_size=20_000
    ):
        attributes = attributes if isinstance(attributes, dict) else {}
        rows.append(
            {
                "record_id": str(pk),
                "unit_id": str(unit_id),
                "first_name": first or None,
                "last_name": last or None,
                "birthday": birthday,
                "postcode": str(attributes.get("postcode") or "") or None,
                "city": str(attributes.get("city") or "") or None,
                "address": str(attributes.get("address") or "") or None,
                "phone": phone,
                "email": email,
            }
        )
    return pd.DataFrame(rows, columns=[*INPUT_COLUMNS, *OPTIONAL_COLUMNS])


def match_network(
    root: OrgNode, settings: MatchSettings | None = None, *, run: ModelRun | None = None
) -> dict[str, int]:
    """Run the model over ``root``'s network and write what it found; return the counts
    (records read, records merged into another person, pairs queued for review, pairs
    refused, size alerts). ``settings`` default to the network's policy; ``run``, when
    given, is marked finished in the transaction that writes the results."""
    if settings is None:
        with db_scope(ALL):
            settings = match_settings(policy_for(root.path))
    with db_scope(ALL):
        frame = network_records(root)
    result = match(frame, settings=settings) if len(frame) >= 2 else None
    with transaction.atomic(), db_scope(ALL):
        counts = {"records": len(frame), "merged": 0, "queued": 0, "refused": 0, "alerts": 0}
        if result is not None:
            counts.update(_write(result))
        _finish(run, counts)
        audit(
            actor=run.requested_by if run else None,
            action="identity.model_run",
            target=root,
            node_path=root.path,
            changes={
                **counts,
                "match_threshold": settings.match_threshold,
                "review_threshold": settings.review_threshold,
                **({"run": run.pk, "trigger": run.trigger} if run else {}),
            },
        )
    return counts


def _finish(run: ModelRun | None, counts: dict[str, int]) -> None:
    if run is None:
        return
    ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.RUNNING).update(
        status=ModelRun.Status.FINISHED,
        finished_at=timezone.now(),
        records=counts["records"],
        merged=counts["merged"],
        to_review=counts["queued"],
        refused=counts["refused"],
        alerts=counts["alerts"],
    )


def execute_run(run_id: int, base: MatchSettings | None = None) -> ModelRun | None:
    """Run a queued ``ModelRun`` with the thresholds its network's policy holds now.

    Returns the run as it ended, or None when it was not queued (already taken by another
    worker, finished, or expired): running it twice would only repeat the work."""
    now = timezone.now()
    with transaction.atomic(), db_scope(ALL):
        run = (
            ModelRun.objects.select_related("network__node", "requested_by")
            .filter(pk=run_id, status=ModelRun.Status.QUEUED)
            .first()
        )
        if run is None:
            return None
        settings = match_settings(policy_for(run.network.node.path), base)
        taken = ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.QUEUED).update(
            status=ModelRun.Status.RUNNING,
            started_at=now,
            match_threshold=settings.match_threshold,
            review_threshold=settings.review_threshold,
        )
        if not taken:
            return None
        run.status = ModelRun.Status.RUNNING
    try:
        match_network(run.network.node, settings, run=run)
    except BaseException as exc:
        # Personal data may sit in an exception's message: the log gets its type and where
        # it happened, the page gets plain words. An interrupted command (Ctrl-C) or a
        # stopped worker also marks its run failed, then stops as asked.
        logger.error(
            "identity model run %s failed: %s\n%s",
            run.pk,
            type(exc).__name__,
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        with transaction.atomic(), db_scope(ALL):
            failed = ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.RUNNING).update(
                status=ModelRun.Status.FAILED,
                finished_at=timezone.now(),
                failure=failure_of(exc),
                failure_kind=type(exc).__name__[:80],
            )
            if failed:
                audit(
                    actor=run.requested_by,
                    action="identity.model_run_failed",
                    target_type="modelrun",
                    target_id=str(run.pk),
                    node_path=run.network.node.path,
                    changes={"run": run.pk, "trigger": run.trigger, "error": type(exc).__name__},
                )
        if not isinstance(exc, Exception):
            raise
    return ModelRun.objects.get(pk=run.pk)


def failure_of(exc: BaseException) -> str:
    """The reason HQ reads for a failed run (``ModelRun.Failure``), never a traceback."""
    if isinstance(exc, MemoryError) or "OutOfMemory" in type(exc).__name__:
        return ModelRun.Failure.OUT_OF_MEMORY
    if isinstance(exc, DatabaseError):
        return ModelRun.Failure.DATABASE
    return ModelRun.Failure.UNEXPECTED


def _write(result: MatchResult) -> dict[str, int]:
    now = timezone.now()
    members: dict[str, list[int]] = defaultdict(list)
    for record_id, cluster_id in result.clusters[["record_id", "cluster_id"]].itertuples(
        index=False
    ):
        members[cluster_id].append(int(record_id))
    clustered = {cid: ids for cid, ids in members.items() if len(ids) > 1}
    ids = [i for group in clustered.values() for i in group]
    links = {link.contact_id: link for link in RecordLink.objects.filter(contact_id__in=ids)}
    evidence = _pair_evidence(result, {i: cid for cid, group in clustered.items() for i in group})
    merged = 0
    for group in clustered.values():
        merged += _merge_cluster(group, links, evidence, now)
    return {"merged": merged, **_queue(result, links), "alerts": len(result.alerts)}


def _pair_evidence(result: MatchResult, cluster_of: dict[int, str]) -> dict[int, dict]:
    """For each record, its best-scoring matched pair inside its cluster: the other record,
    the probability, the match weight and the comparison levels (what the person card
    shows)."""
    best: dict[int, dict] = {}
    matched = result.pairs[result.pairs["decision"] == "match"]
    level_columns = [c for c in matched.columns if c.endswith(LEVEL_COLUMNS_SUFFIX)]
    for pair in matched.to_dict("records"):
        probability = float(pair["match_probability"])
        left, right = int(pair["left_id"]), int(pair["right_id"])
        if cluster_of.get(left) is None or cluster_of.get(left) != cluster_of.get(right):
            continue
        for record, other in ((left, right), (right, left)):
            if record in best and best[record]["score"] >= probability:
                continue
            best[record] = {
                "with": other,
                "score": probability,
                "weight": float(pair["match_weight"]),
                "levels": _levels(pair, level_columns),
            }
    return best


def _levels(pair: dict, level_columns: list[str]) -> dict[str, str]:
    return {c[: -len(LEVEL_COLUMNS_SUFFIX)]: str(pair[c]) for c in level_columns}


def _merge_cluster(
    group: list[int], links: dict[int, RecordLink], evidence: dict[int, dict], now: dt.datetime
) -> int:
    persons = sorted({links[i].person_id for i in group if i in links})
    if len(persons) < 2:
        return 0
    target = persons[0]
    moving = list(RecordLink.objects.filter(person_id__in=persons[1:]))
    if any(link.is_manual for link in moving):
        return 0  # a person HQ shaped by hand is not reshaped by the model
    staying = list(RecordLink.objects.filter(person_id=target).values_list("contact_id", flat=True))
    moved_ids = [link.contact_id for link in moving]
    apart = KeptApart.objects.filter(
        Q(left_id__in=moved_ids, right_id__in=staying)
        | Q(left_id__in=staying, right_id__in=moved_ids)
    )
    if apart.exists():
        return 0
    for link in moving:
        link.person_id = target
        link.method = LinkMethod.MODEL
        found = evidence.get(link.contact_id)
        link.score = found["score"] if found else None
        link.evidence = found
        link.linked_at = now
    RecordLink.objects.bulk_update(
        moving, ["person", "method", "score", "evidence", "linked_at"], batch_size=1000
    )
    Person.objects.filter(pk__in=persons[1:], links__isnull=True).delete()
    return len(moving)


def _queue(result: MatchResult, links: dict[int, RecordLink]) -> dict[str, int]:
    """Write the review entries; return how many were sent to review and how many refused."""
    level_columns = [c for c in result.pairs.columns if c.endswith(LEVEL_COLUMNS_SUFFIX)]
    rows = []
    wanted = result.pairs[result.pairs["decision"].isin(["review", "refused"])]
    for pair in wanted.to_dict("records"):
        left, right = sorted((int(pair["left_id"]), int(pair["right_id"])))
        refused = pair["decision"] == "refused"
        rows.append(
            MatchCandidate(
                left_id=left,
                right_id=right,
                reason=MatchCandidate.Reason.CONTRADICTION
                if refused
                else MatchCandidate.Reason.MODEL,
                status=MatchCandidate.Status.REFUSED if refused else MatchCandidate.Status.OPEN,
                score=float(pair["match_probability"]),
                detail={
                    "levels": _levels(pair, level_columns),
                    "weight": float(pair["match_weight"]),
                    "why": str(pair.get("reason") or ""),
                    "notes": str(pair.get("notes") or ""),
                },
            )
        )
    for alert in result.alerts:
        ids = sorted(int(r) for r in alert.record_ids)[:2]
        if len(ids) == 2:
            rows.append(
                MatchCandidate(
                    left_id=ids[0],
                    right_id=ids[1],
                    reason=MatchCandidate.Reason.MODEL,
                    detail={"alert": alert.reason, "records": len(alert.record_ids)},
                )
            )
    # Records now in one person need no review; a pair already decided keeps its decision.
    person_of = dict(
        RecordLink.objects.filter(
            contact_id__in={r.left_id for r in rows} | {r.right_id for r in rows}
        ).values_list("contact_id", "person_id")
    )
    rows = [
        r
        for r in rows
        if person_of.get(r.left_id) is None or person_of.get(r.left_id) != person_of.get(r.right_id)
    ]
    # A pair the merge would refuse (different e-mails and birthdays, on either person's
    # records) is never offered: it is recorded as refused, with the merge's reason.
    offered = [r for r in rows if r.status == MatchCandidate.Status.OPEN]
    impossible = persons_contradict([(r.left_id, r.right_id) for r in offered])
    for r in offered:
        if (r.left_id, r.right_id) in impossible:
            r.status = MatchCandidate.Status.REFUSED
            r.reason = MatchCandidate.Reason.CONTRADICTION
    MatchCandidate.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    refused = sum(r.status == MatchCandidate.Status.REFUSED for r in rows)
    return {"queued": len(rows) - refused, "refused": refused}
