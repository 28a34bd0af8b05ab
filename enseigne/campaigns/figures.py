"""Audience figures kept with the campaign: counted by the worker, read by the pages.

Counting a national campaign's audience reads every contact of the network and the ledger
(a second on the demo, more on a large network), and two such counts in the web workers made
every other request wait. So no page counts: the worker runs ``audience.preview`` (the one
declaration of the gates, the same code as the freeze and the hand-off) and keeps its result
in ``AudienceFigures``; pages show it with its age.

Figures are refreshed when what they depend on changes. ``inputs_stamp`` fingerprints it in
a few small queries (the campaign, its segment, the network's policy, caps and budgets, the
relays, competing campaigns on the channel, suppressions); a page that finds figures computed
from another fingerprint, or older than ``MAX_AGE`` (contacts change without touching any of
these), labels them stale and asks the worker for new ones. Writes that obviously change them
(a calendar move, the sending rules) ask at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Max, Q, Subquery, Sum
from django.utils import timezone

from enseigne.brand.models import LocalVersion
from enseigne.campaigns import audience
from enseigne.campaigns.models import (
    AudienceFigures,
    Budget,
    Campaign,
    PressureRule,
    Relay,
    SendingPolicy,
)
from enseigne.campaigns.selectors import policy_for
from enseigne.contacts.models import ContactImport, Segment, Suppression
from enseigne.identity import sending as by_person
from enseigne.identity.models import IdentityPolicy
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.access import Access
from enseigne.network.models import OrgNode
from enseigne.network.selectors import root_of

logger = logging.getLogger(__name__)

# Figures older than this are shown as stale and counted again (contacts, consents and the
# ledger change without touching anything the fingerprint reads).
MAX_AGE = dt.timedelta(minutes=15)
# A refresh asked this long ago and still not done was lost (a worker killed mid-count).
LOST_AFTER = dt.timedelta(minutes=10)
# Statuses whose audience is still to come: only these have figures to keep.
COUNTED = (
    Campaign.Status.DRAFT,
    Campaign.Status.SUBMITTED,
    Campaign.Status.APPROVED,
    Campaign.Status.REJECTED,
    Campaign.Status.SCHEDULED,
)


@dataclass
class Kept:
    """What a page shows: the kept preview (None: never counted) and how fresh it is."""

    preview: audience.Preview | None
    computed_at: dt.datetime | None
    for_date: dt.datetime | None
    stale: bool
    computing: bool
    error: str = ""

    @property
    def needs_refresh(self) -> bool:
        return (self.preview is None or self.stale) and not self.computing


def _stamp_parts(campaign: Campaign) -> list:
    root = campaign.owner_path[: OrgNode.steplen]  # the network's path, without a query
    segment = (
        Segment.objects.filter(pk=campaign.segment_id).values_list("updated_at", flat=True).first()
        if campaign.segment_id
        else None
    )
    others = (
        Campaign.objects.filter(
            channel=campaign.channel, status__in=(*COUNTED, *audience.UNFROZEN, *audience.LAUNCHED)
        )
        .exclude(pk=campaign.pk)
        .aggregate(n=Count("id"), last=Max("updated_at"))
    )
    budgets = Budget.objects.filter(unit_path__startswith=root).aggregate(
        n=Count("id"), total=Sum("amount"), last=Max("id")
    )
    return [
        campaign.pk,
        campaign.status,
        campaign.channel,
        campaign.send_at,
        campaign.updated_at,
        campaign.segment_id,
        campaign.audience_rules,
        campaign.target_node_id,
        campaign.target_tag_id,
        campaign.local_version_id,
        campaign.budget_override,
        segment,
        # With the identity policy's (who a national campaign sends to, for people with
        # records in several units), in the same query.
        SendingPolicy.objects.filter(node__path=root)
        .annotate(
            identity=Subquery(
                IdentityPolicy.objects.filter(network__node__path=root).values("updated_at")[:1]
            )
        )
        .values_list("updated_at", "identity")
        .first(),
        list(
            PressureRule.objects.filter(node__path=root, channel=campaign.channel)
            .order_by("window_days")
            .values_list("max_messages", "window_days")
        ),
        list(
            Relay.objects.filter(campaign=campaign)
            .order_by("unit_id")
            .values_list("unit_id", "status", "local_version_id")
        ),
        others,
        budgets,
        Suppression.objects.filter(channel=campaign.channel).aggregate(last=Max("id")),
        ContactImport.objects.aggregate(last=Max("id")),
    ]


def inputs_stamp(campaign: Campaign) -> str:
    """A fingerprint of what the campaign's audience figures depend on (but the contacts).

    Read in the whole network's scope, as the worker reads it: under row-level security a
    store's request saw only its own relays and budgets, so its fingerprint never matched the
    worker's and every view found the figures stale. Only a hash leaves this function; the
    outer scope is restored on the way out (``db_scope`` nests)."""
    with db_scope(ALL):
        parts = _stamp_parts(campaign)
    text = json.dumps(parts, default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


# --- keeping a preview as JSON and reading it back -----------------------------------------


def _dump(preview: audience.Preview) -> dict:
    return {
        "when": preview.when.isoformat(),
        "candidates": preview.candidates,
        "recipients": preview.recipients,
        "exclusions": preview.exclusions,
        "pressure_sources": [list(s) for s in preview.pressure_sources],
        "cost": str(preview.cost),
        "hq_cost": str(preview.hq_cost),
        "units": preview.units,
        "opted_out_units": preview.opted_out_units,
        "per_unit": [
            {
                "unit": line.unit.pk,
                "local_version": line.local_version.pk if line.local_version else None,
                "recipients": line.recipients,
                "candidates": line.candidates,
                "exclusions": line.exclusions,
                "cost": str(line.cost),
                "hq_cost": str(line.hq_cost),
                # JSON keys are text: the sending units' ids as strings.
                "elsewhere": {str(pk): n for pk, n in line.elsewhere.items()},
            }
            for line in preview.per_unit
        ],
        "budgets": [
            {
                "unit": b["unit"].pk,
                "budget": str(b["budget"]),
                "remaining": str(b["remaining"]),
                "needed": str(b["needed"]),
                "over": b["over"],
            }
            for b in preview.budgets
        ],
        "deferred": [
            {"unit": d["unit"].pk, "count": d["count"], "until": d["until"].isoformat()}
            for d in preview.deferred
        ],
    }


def _load(data: dict) -> audience.Preview:
    """The kept preview, with its units and versions read in two queries."""
    unit_ids = {line["unit"] for line in data["per_unit"]}
    unit_ids |= {b["unit"] for b in data["budgets"]} | {d["unit"] for d in data["deferred"]}
    units = OrgNode.objects.in_bulk(unit_ids)
    versions = LocalVersion.objects.in_bulk(
        {line["local_version"] for line in data["per_unit"] if line["local_version"]}
    )
    preview = audience.Preview(
        when=dt.datetime.fromisoformat(data["when"]),
        candidates=data["candidates"],
        recipients=data["recipients"],
        exclusions=data["exclusions"],
        pressure_sources=[tuple(s) for s in data["pressure_sources"]],
        cost=Decimal(data["cost"]),
        hq_cost=Decimal(data["hq_cost"]),
        units=data["units"],
        opted_out_units=data["opted_out_units"],
    )
    for line in data["per_unit"]:
        if line["unit"] not in units:  # a unit deleted since
            continue
        preview.per_unit.append(
            audience.UnitCount(
                units[line["unit"]],
                versions.get(line["local_version"]),
                recipients=line["recipients"],
                candidates=line["candidates"],
                exclusions=line["exclusions"],
                cost=Decimal(line["cost"]),
                hq_cost=Decimal(line["hq_cost"]),
                elsewhere={int(pk): n for pk, n in line.get("elsewhere", {}).items()},
            )
        )
    preview.budgets = [
        {
            "unit": units[b["unit"]],
            "budget": Decimal(b["budget"]),
            "remaining": Decimal(b["remaining"]),
            "needed": Decimal(b["needed"]),
            "over": b["over"],
        }
        for b in data["budgets"]
        if b["unit"] in units
    ]
    preview.deferred = [
        {
            "unit": units[d["unit"]],
            "count": d["count"],
            "until": dt.datetime.fromisoformat(d["until"]),
        }
        for d in data["deferred"]
        if d["unit"] in units
    ]
    return preview


def restricted(preview: audience.Preview, access: Access, campaign: Campaign) -> audience.Preview:
    """The figures a viewer may see: all of them for one who sees the campaign's owner (HQ for
    a national campaign), else only the units they see, with totals of those units. Other
    campaigns' names (pressure sources) are head office's business only.

    Which other units send to the viewer's contacts of the same person ("already receives
    it from Lille") shows in a network of one controller; with separate controllers a unit
    learns nothing of other units' customers: it sees the count under the reason's neutral
    label, never a unit's name (docs/decisions.md, "Sending by person (issue 20)")."""
    if access.sees(campaign.owner_path):
        return preview
    root = campaign.owner_path[: OrgNode.steplen]
    names = not by_person.separate_controllers(root)
    mine = [
        line if names else dataclasses.replace(line, elsewhere={})
        for line in preview.per_unit
        if access.sees(line.unit.path)
    ]
    exclusions: dict[str, int] = {}
    for line in mine:
        for reason, n in line.exclusions.items():
            exclusions[reason] = exclusions.get(reason, 0) + n
    return audience.Preview(
        when=preview.when,
        candidates=sum(line.candidates for line in mine),
        recipients=sum(line.recipients for line in mine),
        exclusions=exclusions,
        cost=sum((line.cost for line in mine), Decimal("0")),
        hq_cost=sum((line.hq_cost for line in mine), Decimal("0")),
        units=len(mine),
        per_unit=mine,
        budgets=[b for b in preview.budgets if access.sees(b["unit"].path)],
        deferred=[d for d in preview.deferred if access.sees(d["unit"].path)],
        names_elsewhere=names,
    )


# --- reads and writes -------------------------------------------------------------------


def kept(campaign: Campaign, *, now: dt.datetime | None = None) -> Kept:
    """The campaign's kept figures and whether they are stale or being counted. Reads only."""
    now = now or timezone.now()
    row = AudienceFigures.objects.filter(campaign=campaign).first()
    if row is None:
        return Kept(None, None, None, stale=True, computing=False)
    computing = row.queued_at is not None and now - row.queued_at < LOST_AFTER
    preview = _load(row.figures) if row.figures and row.computed_at else None
    stale = (
        preview is None
        or now - row.computed_at > MAX_AGE
        or row.inputs != inputs_stamp(campaign)
        or (campaign.send_at is not None and row.for_date != campaign.send_at)
    )
    return Kept(preview, row.computed_at, row.for_date, stale, computing, row.error)


def kept_for(campaign: Campaign, access: Access) -> Kept:
    """The kept figures as this viewer may see them; stale or missing ones are asked of the
    worker (never counted in the request)."""
    shown = kept(campaign)
    if shown.needs_refresh and figures_request(campaign):
        shown.computing = True
    if shown.preview is not None:
        shown.preview = restricted(shown.preview, access, campaign)
    return shown


def figures_request(campaign: Campaign) -> bool:
    """Ask the worker for new figures, once the current transaction commits. A request made
    while a count runs is remembered (``requested_at``), and the worker counts again when it
    is done; a count queued more than ``LOST_AFTER`` ago is taken as lost and queued again.
    Returns whether a task was queued."""
    if campaign.status not in COUNTED:
        return False
    now = timezone.now()
    AudienceFigures.objects.bulk_create([AudienceFigures(campaign=campaign)], ignore_conflicts=True)
    AudienceFigures.objects.filter(campaign=campaign).update(requested_at=now)
    idle = Q(queued_at__isnull=True) | Q(queued_at__lt=now - LOST_AFTER)
    if not AudienceFigures.objects.filter(idle, campaign=campaign).update(queued_at=now):
        return False
    _enqueue(campaign.pk)
    return True


def figures_request_for_network(node: OrgNode) -> int:
    """New figures for the network's campaigns still to send (its sending rules changed)."""
    root = root_of(node)
    planned = Campaign.objects.filter(
        owner_path__startswith=root.path,
        status__in=(Campaign.Status.SUBMITTED, Campaign.Status.APPROVED, Campaign.Status.SCHEDULED),
    )
    return sum(figures_request(campaign) for campaign in planned)


def _enqueue(campaign_id: int) -> None:
    from enseigne.campaigns.tasks import audience_refresh  # the tasks module imports this one

    transaction.on_commit(lambda: audience_refresh(campaign_id))


def figures_compute(campaign_id: int) -> bool:
    """The worker's part: count the campaign's audience and keep it. Figures computed from
    inputs that changed meanwhile stay stale (their stamp was taken before the count), and a
    request made during the count queues another. Returns whether figures were kept."""
    started = timezone.now()
    with db_scope(ALL):
        campaign = (
            Campaign.objects.select_related("owner", "template", "segment", "created_by")
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None:
            return False
        AudienceFigures.objects.filter(campaign=campaign).update(started_at=started)
        if campaign.status not in COUNTED:
            AudienceFigures.objects.filter(campaign=campaign).update(queued_at=None)
            return False
        # The count creates the network's policy if it has none yet: before the fingerprint,
        # or the figures would be stale as soon as they are kept.
        policy_for(campaign.owner)
        stamp = inputs_stamp(campaign)
        when = campaign.send_at or started
        try:
            result = audience.preview(campaign, when)
        except Exception:
            logger.exception("audience count failed for campaign %s", campaign_id)
            AudienceFigures.objects.filter(campaign=campaign).update(queued_at=None, error="failed")
            raise
        AudienceFigures.objects.update_or_create(
            campaign=campaign,
            defaults={
                "figures": _dump(result),
                "inputs": stamp,
                "for_date": when,
                "computed_at": started,
                "error": "",
            },
        )
        # Asked again while this count ran: the worker counts once more.
        again = AudienceFigures.objects.filter(campaign=campaign, requested_at__gt=started)
        if again.update(queued_at=timezone.now()):
            _enqueue(campaign.pk)
        else:
            AudienceFigures.objects.filter(campaign=campaign).update(queued_at=None)
    return True
