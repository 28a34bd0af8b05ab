"""What a campaign sends: the content that was approved, and the gate that re-checks it.

At approval a campaign keeps what it was approved with: the template version and the zone
values (a copy of the local version's, library items named by id as the values hold them;
``{}`` = head office's defaults). A unit relaying a national campaign keeps its local
version's at ``relay_decide``. What is sent is that snapshot, never the local version as
its unit may have changed it since (and editing it is refused while a live campaign uses
it: ``brand.services._refuse_if_frozen``).

When head office publishes a new version, a snapshot follows it if its values are still
valid under it (ARCHITECTURE: "drafts and scheduled sends built on it follow"). When they
are not, or when a guardrail now forbids them, ``content_problems`` says so: the campaign
is not launched, or stops before its next batch (``campaign_stop_for_content``), and its
page says why. Nothing here caches anything between calls: each call reads the database.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property, partial

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from enseigne.brand import checks
from enseigne.brand.models import Asset, Guardrails, LocalVersion, Template, TemplateVersion
from enseigne.brand.services import guardrails_for, zones_of
from enseigne.campaigns.models import Campaign, PauseReason, Relay
from enseigne.lib.ids import parse_uuid
from enseigne.network.models import OrgNode, User
from enseigne.network.services import audit

S = Campaign.Status
# The statuses the content gate can stop: not launched yet, preparing, or sending.
STOPPABLE = (S.APPROVED, S.SCHEDULED, S.PREPARING, S.SENDING)
# The statuses whose page shows what the gate finds (paused: what keeps it from resuming).
CHECKED = (*STOPPABLE, S.PAUSED)


@dataclass(frozen=True)
class ApprovedContent:
    version: TemplateVersion  # the version the unit's messages are rendered from
    values: dict  # its zone values ({} = head office's defaults)


@dataclass(frozen=True)
class ContentProblem:
    unit_path: str  # "" when it concerns the whole campaign
    subject: str  # what it is about, for people: "Lyon's version of “Soldes”"
    message: str  # why: the rule it breaks, naming the zone

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Snapshot:
    unit_path: str
    unit_name: str
    version_id: int
    values: dict


def _snapshots(campaign: Campaign, unit: OrgNode | None = None) -> tuple[Campaign, list[_Snapshot]]:
    """The campaign as it is now in the database, and each unit's own approved content
    (units sending head office's defaults have none). ``unit``: only that unit's."""
    fresh = Campaign.objects.select_related("template", "owner").get(pk=campaign.pk)
    if fresh.is_national:
        relays = Relay.objects.filter(
            campaign=fresh, status=Relay.Status.RELAYED, approved_version__isnull=False
        ).select_related("unit")
        if unit is not None:
            relays = relays.filter(unit=unit)
        found = [
            _Snapshot(r.unit_path, r.unit.name, r.approved_version_id, r.approved_values)
            for r in relays.order_by("unit_path")
        ]
    elif fresh.approved_version_id is not None:
        found = [
            _Snapshot(
                fresh.owner_path, fresh.owner.name, fresh.approved_version_id, fresh.approved_values
            )
        ]
    elif fresh.local_version_id is not None:
        # Not approved yet (a draft's preview): what it would be approved with today.
        local = LocalVersion.objects.only("version_id", "values").get(pk=fresh.local_version_id)
        found = [_Snapshot(fresh.owner_path, fresh.owner.name, local.version_id, local.values)]
    else:
        found = []
    return fresh, [s for s in found if s.values]


class _Checker:
    """The current rules, read once for all of a campaign's snapshots (a few queries)."""

    def __init__(self, campaign: Campaign, snapshots: list[_Snapshot]):
        template: Template = campaign.template
        self.channel = template.channel
        self.owner_path = campaign.owner_path
        self.snapshots = snapshots
        ids = {s.version_id for s in snapshots} | {template.current_id}
        self.versions = TemplateVersion.objects.in_bulk([i for i in ids if i is not None])
        self.current = self.versions.get(template.current_id)

    @cached_property
    def guardrails(self) -> Guardrails | None:
        return guardrails_for(self.owner_path)

    @cached_property
    def assets(self) -> dict[str, Asset]:
        picks = {
            parse_uuid(value.get("asset"))
            for s in self.snapshots
            for value in s.values.values()
            if isinstance(value, dict) and value.get("asset")
        }
        picks.discard(None)
        if not picks:
            return {}
        return {str(a.public_id): a for a in Asset.objects.filter(public_id__in=picks)}

    def _problems(self, snapshot: _Snapshot, version: TemplateVersion) -> list[str]:
        # What the unit may use: head office's items shared above it, and its own.
        visible = {
            key: asset
            for key, asset in self.assets.items()
            if asset.unit_path == snapshot.unit_path
            or (asset.is_hq and snapshot.unit_path.startswith(asset.shared_path))
        }
        zones = zones_of(version)
        return checks.check(
            zones,
            snapshot.values,
            source=version.source,
            guardrails=self.guardrails,
            assets=visible,
            channel=self.channel,
        ) + checks.removed_zones(zones, snapshot.values)

    def defaults_problems(self) -> list[str]:
        """What stops head office's version sent as it stands (its defaults): a required zone
        it leaves empty. Head office's own texts are not held to the units' guardrails."""
        if self.current is None:
            return []
        zones = zones_of(self.current)
        defaults = {z.name: z.default for z in zones if z.kind in ("text", "rich", "choice")}
        return checks.check(
            zones, defaults, source=self.current.source, guardrails=None, channel=self.channel
        )

    def resolve(self, snapshot: _Snapshot) -> tuple[TemplateVersion, list[str]]:
        """The version the snapshot is sent with today, and what stops it (nothing: [])."""
        approved = self.versions[snapshot.version_id]
        current = self.current or approved
        problems = self._problems(snapshot, current)
        if current.pk == approved.pk or not problems:
            return current, problems
        # Head office's newer version does not take these values: say whether it is the
        # new version or a rule that would refuse them anyway.
        if self._problems(snapshot, approved):
            return approved, problems
        return approved, [
            _("With head office's version %(number)s of the template: %(problem)s")
            % {"number": current.number, "problem": problem}
            for problem in problems
        ]


def approved_content(campaign: Campaign, unit: OrgNode) -> ApprovedContent:
    """What ``unit``'s messages of ``campaign`` are rendered from: its approved snapshot
    (following head office's newest version when the values are valid under it), or head
    office's current version and defaults for a unit without one of its own."""
    fresh, snapshots = _snapshots(campaign, unit)
    checker = _Checker(fresh, snapshots)
    if not snapshots:
        return ApprovedContent(checker.current, {})
    (snapshot,) = snapshots
    if snapshot.version_id == fresh.template.current_id:  # nothing to follow, nothing to check
        return ApprovedContent(checker.current, snapshot.values)
    version, _unused = checker.resolve(snapshot)
    return ApprovedContent(version, snapshot.values)


def content_problems(campaign: Campaign) -> list[ContentProblem]:
    """Why the approved content may not be sent today ([] = the content gate passes)."""
    fresh, snapshots = _snapshots(campaign)
    template = fresh.template
    if template.archived or template.current_id is None:
        return [
            ContentProblem(
                "",
                _("template “%(name)s”") % {"name": template.name},
                _("Head office withdrew this template: it can no longer be sent."),
            )
        ]
    checker = _Checker(fresh, snapshots)
    found = []
    for snapshot in snapshots:
        subject = _("%(unit)s’s version of “%(template)s”") % {
            "unit": snapshot.unit_name,
            "template": template.name,
        }
        _version, problems = checker.resolve(snapshot)
        found += [ContentProblem(snapshot.unit_path, subject, message) for message in problems]
    # Units without a version of their own (a national campaign's units that did not relay,
    # a local campaign on head office's version) send head office's defaults.
    if fresh.is_national or not snapshots:
        subject = _("head office’s version of “%(template)s”") % {"template": template.name}
        found += [ContentProblem("", subject, m) for m in checker.defaults_problems()]
    return found


def problems_text(problems: list[ContentProblem]) -> list[str]:
    """Each problem as one line for people: its subject, then why."""
    return [
        _("%(subject)s: %(message)s") % {"subject": p.subject, "message": p.message}
        for p in problems
    ]


def campaign_stop_for_content(*, campaign: Campaign, problems: list[ContentProblem]) -> bool:
    """Pause a campaign whose approved content no longer passes (compare-and-swap, like
    ``services._transition``); keep the problems on it and tell its creator and approver.
    True if this call stopped it; False if it was not approved, scheduled or sending."""
    if not problems:
        return False
    kept = [p.as_dict() for p in problems]
    with transaction.atomic():
        stopped = Campaign.objects.filter(pk=campaign.pk, status__in=STOPPABLE).update(
            status=S.PAUSED,
            pause_reason=PauseReason.CONTENT,
            content_problems=kept,
            updated_at=timezone.now(),
        )
        if not stopped:
            return False
        campaign.status, campaign.pause_reason, campaign.content_problems = (
            S.PAUSED,
            PauseReason.CONTENT,
            kept,
        )
        audit(
            actor=None,
            action="campaign.stop_content",
            target=campaign,
            node_path=campaign.owner_path,
            changes={"problems": kept},
        )
        _tell(campaign, problems)
    return True


def _tell(campaign: Campaign, problems: list[ContentProblem]) -> None:
    """A short e-mail, after commit, to whoever created and approved the campaign, each in
    their own language."""
    people: dict[int, User] = {}
    for user_id in (campaign.created_by_id, campaign.decided_by_id):
        if user_id is not None and user_id not in people:
            people[user_id] = User.objects.get(pk=user_id)
    current = translation.get_language()
    for person in people.values():
        if not person.email or not person.is_active:
            continue
        language = person.language or settings.LANGUAGE_CODE
        with translation.override(language):
            # The problems were worded in the caller's language: word them again in theirs.
            worded = problems if language == current else content_problems(campaign) or problems
            subject = _("“%(name)s” stopped: its content no longer passes head office's rules") % {
                "name": campaign.name
            }
            body = "\n".join(
                [
                    _(
                        "Sending of the campaign “%(name)s” (%(unit)s) stopped before its next "
                        "message: what was approved no longer passes head office's rules."
                    )
                    % {"name": campaign.name, "unit": campaign.owner.name},
                    "",
                    *(f"- {line}" for line in problems_text(worded)),
                    "",
                    _(
                        "Nothing already sent is lost. Once this is fixed (head office changes its "
                        "rules, or a new version is approved), resume it from its page:"
                    ),
                    f"{settings.BASE_URL.rstrip('/')}/campaigns/{campaign.public_id}/",
                ]
            )
        transaction.on_commit(partial(send_mail, subject, body, None, [person.email]), robust=True)
