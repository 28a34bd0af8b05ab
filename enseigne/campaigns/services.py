"""Campaign writes: create, submit, approve or reject, schedule, relay, launch, pause, resume.

Every state change is a compare-and-swap on the status (``UPDATE … WHERE status IN
(…)``), so two people or a person and a worker can never both win the same transition.
"""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Q, When
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.brand.models import LocalVersion, Template
from enseigne.campaigns import audience, preparation, selectors
from enseigne.campaigns.content import (
    campaign_stop_for_content,
    content_problems,
    problems_text,
)
from enseigne.campaigns.models import (
    Budget,
    Campaign,
    PauseReason,
    PressureRule,
    Recipient,
    Relay,
    SendingPolicy,
)
from enseigne.campaigns.pausing import system_pause
from enseigne.campaigns.selectors import policy_for
from enseigne.contacts.models import Channel, Segment
from enseigne.contacts.segments import SegmentCompiler
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, UnitTag, User
from enseigne.network.selectors import root_of
from enseigne.network.services import audit

S = Campaign.Status


def _require(actor: User | None, capability: str, node: OrgNode) -> None:
    if actor is not None and not access_for(actor).can(capability, node):
        raise PermissionDenied


def edit_capability(campaign: Campaign) -> str:
    return (
        Capability.CREATE_NATIONAL_CAMPAIGNS
        if campaign.is_national
        else Capability.CREATE_LOCAL_CAMPAIGNS
    )


def can_edit(user: User, campaign: Campaign) -> bool:
    return access_for(user).can(edit_capability(campaign), campaign.owner)


def can_approve(user: User, campaign: Campaign) -> bool:
    return access_for(user).can(Capability.APPROVE_CAMPAIGNS, campaign.owner)


def _transition(campaign: Campaign, sources, target: str, **fields) -> None:
    """Move ``campaign`` to ``target`` only if it is still in one of ``sources``."""
    changed = Campaign.objects.filter(pk=campaign.pk, status__in=sources).update(
        status=target, updated_at=timezone.now(), **fields
    )
    if not changed:
        campaign.refresh_from_db(fields=["status"])
        raise ValidationError(
            _("This campaign is %(status)s; it cannot be moved to %(target)s.")
            % {"status": campaign.get_status_display().lower(), "target": S(target).label.lower()}
        )
    campaign.status = target
    for name, value in fields.items():
        setattr(campaign, name, value)


def _check_template(template: Template, channel: str, unit: OrgNode | None) -> None:
    if template.channel != channel:
        raise ValidationError(
            {
                "template": _("This template is for %(channel)s.")
                % {"channel": Channel(template.channel).label}
            }
        )
    if template.current_id is None or template.archived:
        raise ValidationError({"template": _("This template has no published version.")})
    if (
        unit is not None
        and not unit.path.startswith(template.shared_path)
        and not template.shared_path.startswith(unit.path)
    ):
        raise ValidationError({"template": _("This template is not shared with this unit.")})
    if template.is_free and (unit is None or template.shared_path != unit.path):
        raise ValidationError(
            {"template": _("A free message is sent only by the unit that wrote it.")}
        )


def _check_free(
    actor: User | None, template: Template, local: LocalVersion | None, unit: OrgNode
) -> None:
    """A free campaign (the unit's own text) needs the capability, and the text itself."""
    if not template.is_free:
        return
    _require(actor, Capability.CREATE_FREE_CAMPAIGNS, unit)
    if local is None:
        raise ValidationError(
            {
                "local_version": _(
                    "Choose the message you wrote: a free campaign has no head "
                    "office version to fall back on."
                )
            }
        )


def check_local_version(
    local: LocalVersion | None, template: Template, unit: OrgNode, *, usable: bool = True
) -> None:
    if local is None:
        return
    if local.unit_id != unit.pk or local.template_id != template.pk:
        raise ValidationError(
            {"local_version": _("This personalised version belongs to another unit or template.")}
        )
    if usable and not local.is_usable:
        raise ValidationError(
            {
                "local_version": _(
                    "This personalised version needs attention before it can be sent: %(problems)s"
                )
                % {"problems": "; ".join(local.problems)}
            }
        )


def _approved_fields(campaign: Campaign) -> dict:
    """What approval freezes (campaigns/content.py): the local version as it is now, locked
    against an edit in the same instant, or head office's current version and defaults."""
    if campaign.is_national or campaign.local_version_id is None:
        current = Template.objects.values_list("current_id", flat=True).get(pk=campaign.template_id)
        return {"approved_version_id": current, "approved_values": {}}
    local = (
        LocalVersion.objects.select_for_update()
        .select_related("template")
        .get(pk=campaign.local_version_id)
    )
    check_local_version(local, campaign.template, campaign.owner)
    return {"approved_version_id": local.version_id, "approved_values": copy.deepcopy(local.values)}


def _refuse_content(problems) -> None:
    if problems:
        raise ValidationError(
            [
                _(
                    "This campaign cannot be sent: what was approved no longer passes head "
                    "office's rules."
                ),
                *problems_text(problems),
            ]
        )


def _check_sms(actor: User | None, channel: str, node: OrgNode) -> None:
    if (
        channel == Channel.SMS
        and actor is not None
        and not access_for(actor).can(Capability.SEND_SMS, node)
    ):
        raise ValidationError({"channel": _("Your role may not send SMS from here.")})


def _check_local_draft(
    actor: User | None,
    unit: OrgNode,
    channel: str,
    template: Template,
    local_version: LocalVersion | None,
    segment: Segment | None,
    *,
    usable: bool = True,
) -> None:
    """What a local draft must satisfy, on creation and on every edit (``usable``: its
    personalised version must pass now, not only at submission)."""
    _check_sms(actor, channel, unit)
    _check_template(template, channel, unit)
    _check_free(actor, template, local_version, unit)
    check_local_version(local_version, template, unit, usable=usable)
    if segment is not None and not unit.path.startswith(segment.unit_path):
        raise ValidationError({"segment": _("This segment is not available to this unit.")})


def _check_national_draft(
    actor: User | None,
    root: OrgNode,
    channel: str,
    template: Template,
    audience_rules: dict | None,
    relay_deadline: dt.datetime | None,
    send_at: dt.datetime | None,
) -> None:
    """What a national draft must satisfy, on creation and on every edit."""
    _check_sms(actor, channel, root)
    _check_template(template, channel, None)
    if audience_rules:
        SegmentCompiler(actor).compile(audience_rules)  # raises with the rule's position
    if relay_deadline and send_at and relay_deadline > send_at:
        raise ValidationError(
            {"relay_deadline": _("Units must decide before the campaign is sent.")}
        )


@transaction.atomic
def campaign_create_local(
    *,
    actor: User,
    unit: OrgNode,
    channel: str,
    name: str,
    template: Template,
    local_version: LocalVersion | None = None,
    segment: Segment | None = None,
    send_at: dt.datetime | None = None,
    unfinished_version: bool = False,
) -> Campaign:
    """A unit's draft. ``unfinished_version``: the personalised version may still need work
    (a starting point copied from the gallery); submitting refuses it until it is fixed."""
    _require(actor, Capability.CREATE_LOCAL_CAMPAIGNS, unit)
    if unit.kind != OrgNode.Kind.UNIT:
        raise ValidationError({"unit": _("A local campaign is sent by one unit.")})
    _check_local_draft(
        actor, unit, channel, template, local_version, segment, usable=not unfinished_version
    )
    campaign = Campaign.objects.create(
        kind=Campaign.Kind.LOCAL,
        channel=channel,
        name=name.strip() or template.name,
        owner=unit,
        owner_path=unit.path,
        template=template,
        local_version=local_version,
        segment=segment,
        send_at=send_at,
        created_by=actor,
    )
    audit(actor=actor, action="campaign.create", target=campaign, node_path=unit.path)
    return campaign


@transaction.atomic
def campaign_create_national(
    *,
    actor: User,
    channel: str,
    name: str,
    template: Template,
    target_node: OrgNode | None = None,
    target_tag: UnitTag | None = None,
    audience_rules: dict | None = None,
    allow_opt_out: bool = True,
    relay_deadline: dt.datetime | None = None,
    send_at: dt.datetime | None = None,
) -> Campaign:
    root = root_of(target_node) if target_node else OrgNode.objects.get_root_nodes().first()
    _require(actor, Capability.CREATE_NATIONAL_CAMPAIGNS, root)
    _check_national_draft(actor, root, channel, template, audience_rules, relay_deadline, send_at)
    campaign = Campaign.objects.create(
        kind=Campaign.Kind.NATIONAL,
        channel=channel,
        name=name.strip() or template.name,
        owner=root,
        owner_path=root.path,
        template=template,
        target_node=target_node,
        target_tag=target_tag,
        audience_rules=audience_rules or {},
        allow_opt_out=allow_opt_out,
        relay_deadline=relay_deadline,
        send_at=send_at,
        created_by=actor,
    )
    audit(actor=actor, action="campaign.create", target=campaign, node_path=root.path)
    return campaign


EDITABLE_FIELDS = {
    Campaign.Kind.LOCAL: {"name", "channel", "template", "local_version", "segment", "send_at"},
    Campaign.Kind.NATIONAL: {
        "name",
        "channel",
        "template",
        "send_at",
        "audience_rules",
        "allow_opt_out",
        "relay_deadline",
        "target_node",
        "target_tag",
    },
}


def edit_refusal(campaign: Campaign) -> str:
    """Why ``campaign`` cannot be edited any more ('' while it is a draft or was rejected)."""
    if campaign.is_editable:
        return ""
    status = campaign.get_status_display().lower()
    if campaign.status == S.SUBMITTED:
        return _(
            "This campaign is %(status)s: it can no longer be changed. Ask the approver to "
            "reject it, or duplicate it to start a new draft."
        ) % {"status": status}
    return _(
        "Only a draft can be changed; this campaign is %(status)s. Duplicate it to start a new "
        "draft."
    ) % {"status": status}


@transaction.atomic
def campaign_update(*, actor: User, campaign: Campaign, **fields) -> Campaign:
    """Change a draft (or a rejected campaign, which goes back to draft) until it is submitted.

    The row is locked and its status read again, so a submission in the same instant comes
    wholly before (the edit is refused with the reason) or after (it submits the edit)."""
    _require(actor, edit_capability(campaign), campaign.owner)
    unknown = set(fields) - EDITABLE_FIELDS[campaign.kind]
    if unknown:
        raise ValidationError(
            _("These fields cannot be changed: %(fields)s") % {"fields": ", ".join(sorted(unknown))}
        )
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    campaign.status = locked.status
    refusal = edit_refusal(campaign)
    if refusal:
        raise ValidationError(refusal)
    original_version = campaign.local_version
    for name, value in fields.items():
        setattr(campaign, name, value)
    if campaign.is_national:
        _check_national_draft(
            actor,
            campaign.owner,
            campaign.channel,
            campaign.template,
            campaign.audience_rules,
            campaign.relay_deadline,
            campaign.send_at,
        )
    else:
        _check_local_draft(
            actor,
            campaign.owner,
            campaign.channel,
            campaign.template,
            campaign.local_version,
            campaign.segment,
            # A version left unfinished (a gallery starting point) may stay while the draft is
            # worked on; choosing another one needs it usable. Submission checks it anyway.
            usable="local_version" in fields and fields["local_version"] != original_version,
        )
    if "name" in fields:
        campaign.name = (fields["name"] or "").strip() or campaign.template.name
    campaign.status = S.DRAFT
    campaign.decision_comment = "" if locked.status == S.REJECTED else campaign.decision_comment
    campaign.save()
    audit(
        actor=actor,
        action="campaign.update",
        target=campaign,
        node_path=campaign.owner_path,
        changes={"fields": sorted(fields)},
    )
    return campaign


COPIED_FIELDS = (
    "kind",
    "channel",
    "owner",
    "owner_path",
    "template",
    "local_version",
    "segment",
    "target_node",
    "target_tag",
    "audience_rules",
    "allow_opt_out",
    "is_transactional",
)


@transaction.atomic
def campaign_duplicate(*, actor: User, campaign: Campaign) -> Campaign:
    """A new draft with ``campaign``'s content and audience, in the same owner (a unit's
    campaign stays the unit's; head office's national one becomes a head office draft).
    Dates are not copied: the draft gets its own. Whatever the original's state."""
    _require(actor, edit_capability(campaign), campaign.owner)
    copy_name = _("%(name)s (copy)") % {"name": campaign.name}
    if campaign.template.is_free:
        _require(actor, Capability.CREATE_FREE_CAMPAIGNS, campaign.owner)
    duplicate = Campaign(**{name: getattr(campaign, name) for name in COPIED_FIELDS})
    duplicate.audience_rules = copy.deepcopy(campaign.audience_rules)
    duplicate.name = copy_name[: Campaign._meta.get_field("name").max_length]
    duplicate.created_by = actor
    if duplicate.local_version_id is not None and not duplicate.local_version.is_usable:
        duplicate.local_version = None  # left for the unit to choose again (submit checks it)
    duplicate.save()
    audit(
        actor=actor,
        action="campaign.duplicate",
        target=duplicate,
        node_path=duplicate.owner_path,
        changes={"from": str(campaign.public_id)},
    )
    return duplicate


@transaction.atomic
def campaign_submit(*, actor: User, campaign: Campaign) -> Campaign:
    """Ask for approval; a role that may send without approval is approved at once."""
    _require(actor, edit_capability(campaign), campaign.owner)
    _check_template(
        campaign.template, campaign.channel, None if campaign.is_national else campaign.owner
    )
    if not campaign.is_national:
        _check_free(actor, campaign.template, campaign.local_version, campaign.owner)
        check_local_version(campaign.local_version, campaign.template, campaign.owner)
        if campaign.segment_id is None:
            raise ValidationError(
                {"segment": _("Choose who receives it: one of the unit's segments.")}
            )
    if access_for(actor).can(Capability.SEND_WITHOUT_APPROVAL, campaign.owner):
        _transition(
            campaign,
            (S.DRAFT, S.REJECTED),
            S.APPROVED,
            submitted_by=actor,
            decided_by=actor,
            decided_at=timezone.now(),
            decision_comment="",
            **_approved_fields(campaign),
        )
        audit(
            actor=actor,
            action="campaign.approve",
            target=campaign,
            node_path=campaign.owner_path,
            changes={"automatic": True},
        )
    else:
        _transition(
            campaign, (S.DRAFT, S.REJECTED), S.SUBMITTED, submitted_by=actor, decision_comment=""
        )
        audit(actor=actor, action="campaign.submit", target=campaign, node_path=campaign.owner_path)
    return campaign


@transaction.atomic
def campaign_approve(
    *, actor: User, campaign: Campaign, comment: str = "", over_budget: bool = False
) -> Campaign:
    _require(actor, Capability.APPROVE_CAMPAIGNS, campaign.owner)
    if over_budget:
        _require(actor, Capability.EXCEED_BUDGET, campaign.owner)
    _transition(
        campaign,
        (S.SUBMITTED,),
        S.APPROVED,
        decided_by=actor,
        decided_at=timezone.now(),
        decision_comment=comment.strip(),
        budget_override=over_budget,
        **_approved_fields(campaign),
    )
    audit(
        actor=actor,
        action="campaign.approve",
        target=campaign,
        node_path=campaign.owner_path,
        changes={"comment": comment.strip(), "over_budget": over_budget},
    )
    return campaign


@transaction.atomic
def campaign_reject(*, actor: User, campaign: Campaign, comment: str) -> Campaign:
    _require(actor, Capability.APPROVE_CAMPAIGNS, campaign.owner)
    if not comment.strip():
        raise ValidationError({"comment": _("Say why, so the unit can fix it.")})
    _transition(
        campaign,
        (S.SUBMITTED,),
        S.REJECTED,
        decided_by=actor,
        decided_at=timezone.now(),
        decision_comment=comment.strip(),
    )
    audit(
        actor=actor,
        action="campaign.reject",
        target=campaign,
        node_path=campaign.owner_path,
        changes={"comment": comment.strip()},
    )
    return campaign


@transaction.atomic
def campaign_schedule(*, actor: User, campaign: Campaign, send_at: dt.datetime) -> Campaign:
    """Set the date of an approved campaign; a national one is announced to its units."""
    _require(actor, edit_capability(campaign), campaign.owner)
    if timezone.is_naive(send_at):
        raise ValidationError({"send_at": _("Give the time with its time zone.")})
    if campaign.relay_deadline and campaign.relay_deadline > send_at:
        raise ValidationError(
            {
                "send_at": _("The campaign must leave after the units' deadline (%(deadline)s).")
                % {"deadline": timezone.localtime(campaign.relay_deadline).strftime("%d/%m %H:%M")}
            }
        )
    _transition(
        campaign,
        (S.APPROVED, S.SCHEDULED),
        S.SCHEDULED,
        send_at=send_at,
        scheduled_at=timezone.now(),
        needs_confirmation=False,
    )
    if campaign.is_national:
        relays_announce(campaign)
    audit(
        actor=actor,
        action="campaign.schedule",
        target=campaign,
        node_path=campaign.owner_path,
        changes={"send_at": send_at.isoformat()},
    )
    return campaign


def relays_announce(campaign: Campaign) -> int:
    """One pending relay per target unit (existing answers are kept)."""
    units = [t.unit for t in audience.targets(campaign)]
    Relay.objects.bulk_create(
        [Relay(campaign=campaign, unit=u, unit_path=u.path) for u in units], ignore_conflicts=True
    )
    return len(units)


@transaction.atomic
def campaign_move(*, actor: User, campaign: Campaign, send_at: dt.datetime) -> Campaign:
    """Move a draft (or a scheduled campaign, which keeps its approval) to another date."""
    if campaign.status == S.SCHEDULED:
        return campaign_schedule(actor=actor, campaign=campaign, send_at=send_at)
    return campaign_update(actor=actor, campaign=campaign, send_at=send_at)


@transaction.atomic
def relay_decide(
    *,
    actor: User,
    campaign: Campaign,
    unit: OrgNode,
    relay: bool,
    local_version: LocalVersion | None = None,
) -> Relay:
    """A unit relays a national campaign (optionally personalised) or opts out, before the deadline."""
    _require(actor, Capability.CREATE_LOCAL_CAMPAIGNS, unit)
    record = Relay.objects.select_for_update().filter(campaign=campaign, unit=unit).first()
    if record is None:
        raise ValidationError(_("This campaign does not go out from this unit."))
    if campaign.status not in (S.SCHEDULED, S.APPROVED):
        raise ValidationError(
            _("It is too late: the campaign is %(status)s.")
            % {"status": campaign.get_status_display().lower()}
        )
    if campaign.relay_deadline and timezone.now() > campaign.relay_deadline:
        raise ValidationError(_("The deadline to answer has passed."))
    if not relay and not campaign.allow_opt_out:
        raise ValidationError(_("Head office does not allow units to opt out of this campaign."))
    local = None
    if relay and local_version is not None:
        # Locked so that an edit in the same instant comes wholly before or after the snapshot.
        local = LocalVersion.objects.select_for_update().get(pk=local_version.pk)
        check_local_version(local, campaign.template, unit)
    record.status = Relay.Status.RELAYED if relay else Relay.Status.OPTED_OUT
    record.local_version = local
    # What this unit sends (campaigns/content.py); None = head office's version and defaults.
    record.approved_version_id = local.version_id if local else None
    record.approved_values = copy.deepcopy(local.values) if local else {}
    record.decided_by, record.decided_at = actor, timezone.now()
    record.save()
    audit(
        actor=actor,
        action="campaign.relay" if relay else "campaign.opt_out",
        target=campaign,
        node_path=unit.path,
    )
    return record


@transaction.atomic
def campaign_launch_start(
    *, actor: User | None, campaign: Campaign, now: dt.datetime | None = None
) -> Campaign:
    """Launch, the part that answers at once: the campaign is ``preparing`` (the worker's
    ``preparation.campaign_prepare`` freezes its audience, then it is sending), or, if its
    audience was frozen before it was stopped, sending again."""
    if actor is not None:
        _require(actor, edit_capability(campaign), campaign.owner)
    _refuse_content(content_problems(campaign))
    _start(actor, campaign, (S.SCHEDULED, S.APPROVED), now or timezone.now())
    return campaign


@transaction.atomic
def campaign_launch(
    *, actor: User | None, campaign: Campaign, now: dt.datetime | None = None
) -> int:
    """Launch and freeze the audience in this transaction, for scripts and tests; pages, the
    API and the scheduler use ``campaign_launch_start`` and leave the freeze to the worker.
    Returns the ledger size."""
    campaign_launch_start(actor=actor, campaign=campaign, now=now)
    if campaign.status == S.PREPARING:
        preparation.campaign_prepare(campaign.pk)
        campaign.refresh_from_db()
    return campaign.recipient_total


def _start(actor: User | None, campaign: Campaign, sources, now: dt.datetime) -> None:
    """Go to ``preparing`` until the audience is frozen into the ledger; a campaign stopped
    after its freeze and approved again carries on with the ledger it has (nothing lost,
    nothing added)."""
    first = campaign.frozen_at is None
    _transition(
        campaign,
        sources,
        S.PREPARING if first else S.SENDING,
        # The date the audience is frozen for (pressure, budgets, the SMS window).
        launched_at=now if first else campaign.launched_at,
        needs_confirmation=False,
        pause_reason="",
        content_problems=[],
    )
    audit(
        actor=actor,
        action="campaign.launch",
        target=campaign,
        node_path=campaign.owner_path,
        changes={"recipients": campaign.recipient_total, "first": first},
    )


def campaigns_due(now: dt.datetime) -> list[Campaign]:
    """Scheduled campaigns whose time has come (and that nobody has to confirm)."""
    return list(
        Campaign.objects.filter(
            status=S.SCHEDULED, send_at__lte=now, needs_confirmation=False
        ).select_related("owner")
    )


def campaign_wake(*, campaign: Campaign, now: dt.datetime) -> bool:
    """Launch a due campaign, unless its approved content no longer passes (then it stops
    and its people are told) or it woke far too late (then it waits for a person)."""
    problems = content_problems(campaign)
    if problems:
        campaign_stop_for_content(campaign=campaign, problems=problems)
        return False
    policy = policy_for(campaign.owner)
    if now - campaign.send_at > dt.timedelta(minutes=policy.late_start_minutes):
        with transaction.atomic():  # the flag and its audit line, or neither
            Campaign.objects.filter(pk=campaign.pk, status=S.SCHEDULED).update(
                needs_confirmation=True
            )
            audit(
                actor=None,
                action="campaign.late",
                target=campaign,
                node_path=campaign.owner_path,
                changes={"send_at": campaign.send_at.isoformat(), "woke_at": now.isoformat()},
            )
        return False
    campaign_launch_start(actor=None, campaign=campaign, now=now)
    return True


@transaction.atomic
def campaign_pause(*, actor: User, campaign: Campaign) -> Campaign:
    _require(actor, edit_capability(campaign), campaign.owner)
    # While preparing: the worker's freeze is rolled back and resuming prepares it again.
    _transition(campaign, (S.PREPARING, S.SENDING), S.PAUSED)
    audit(actor=actor, action="campaign.pause", target=campaign, node_path=campaign.owner_path)
    return campaign


@transaction.atomic
def campaign_resume(*, actor: User, campaign: Campaign) -> Campaign:
    """Carry on where it stopped, once what was approved passes head office's rules again.
    A campaign stopped before its audience was frozen is prepared now."""
    _require(actor, edit_capability(campaign), campaign.owner)
    _refuse_content(content_problems(campaign))
    if campaign.frozen_at is None:
        _start(actor, campaign, (S.PAUSED,), timezone.now())
    else:
        _transition(campaign, (S.PAUSED,), S.SENDING, pause_reason="", content_problems=[])
    audit(actor=actor, action="campaign.resume", target=campaign, node_path=campaign.owner_path)
    return campaign


@transaction.atomic
def campaign_reopen(*, actor: User, campaign: Campaign) -> Campaign:
    """Back to draft, to change content that head office's rules now refuse: the campaign
    stopped for its content, or approved and not launched yet with a problem. It is submitted
    and approved again with its new content; if it had started, it then carries on with its
    ledger (see docs/decisions.md)."""
    _require(actor, edit_capability(campaign), campaign.owner)
    if campaign.status != S.PAUSED and not content_problems(campaign):
        raise ValidationError(
            _("Its approved content passes head office's rules: there is nothing to change.")
        )
    stopped = Q(status=S.PAUSED, pause_reason=PauseReason.CONTENT)
    not_started = Q(status__in=(S.APPROVED, S.SCHEDULED), frozen_at__isnull=True)
    reopened = (
        Campaign.objects.filter(pk=campaign.pk)
        .filter(stopped | not_started)
        .update(
            status=S.DRAFT,
            pause_reason="",
            content_problems=[],
            approved_version=None,
            approved_values={},
            needs_confirmation=False,
            # Stopped while preparing: nothing was frozen, so it was never launched.
            launched_at=Case(When(frozen_at__isnull=True, then=None), default=F("launched_at")),
            updated_at=timezone.now(),
        )
    )
    if not reopened:
        campaign.refresh_from_db(fields=["status"])
        raise ValidationError(
            _("This campaign is %(status)s; only one stopped for its content goes back to draft.")
            % {"status": campaign.get_status_display().lower()}
        )
    campaign.status, campaign.pause_reason, campaign.content_problems = S.DRAFT, "", []
    campaign.approved_version, campaign.approved_values = None, {}
    campaign.refresh_from_db(fields=["launched_at"])
    audit(actor=actor, action="campaign.reopen", target=campaign, node_path=campaign.owner_path)
    return campaign


@transaction.atomic
def campaign_cancel(*, actor: User, campaign: Campaign) -> Campaign:
    """Stop for good: rows not yet sent are marked not sent, with the reason."""
    _require(actor, edit_capability(campaign), campaign.owner)
    _transition(
        campaign,
        (
            S.DRAFT,
            S.SUBMITTED,
            S.APPROVED,
            S.REJECTED,
            S.SCHEDULED,
            S.PREPARING,
            S.PAUSED,
            S.SENDING,
        ),
        S.CANCELLED,
        finished_at=timezone.now(),
    )
    Recipient.objects.filter(
        campaign=campaign, status=Recipient.Status.PENDING, attempted_at__isnull=True
    ).update(status=Recipient.Status.SKIPPED, reason="cancelled", lease_owner="", lease_until=None)
    audit(actor=actor, action="campaign.cancel", target=campaign, node_path=campaign.owner_path)
    return campaign


def complaints_check(campaign_id: int) -> bool:
    """Pause a sending e-mail campaign whose complaint rate reached the limit (True if paused).
    Called on every complaint."""
    complaints, sent = selectors.complaint_counts(campaign_id)
    if not selectors.complaint_rate_reaches(complaints, sent, settings.COMPLAINT_PAUSE_RATE):
        return False
    return system_pause(
        campaign_id,
        expected=S.SENDING,
        reason=PauseReason.COMPLAINT_RATE,
        complaints=complaints,
        sent=sent,
    )


def campaign_finish_if_done(campaign_id: int) -> bool:
    """``sending`` → ``finished`` only when no row is pending, in one statement. A journey's
    step is never finished by its runner: more people reach it while its journey runs."""
    pending = Recipient.objects.filter(campaign=OuterRef("pk"), status=Recipient.Status.PENDING)
    return bool(
        Campaign.objects.filter(pk=campaign_id, status=S.SENDING)
        .exclude(kind=Campaign.Kind.JOURNEY)
        .exclude(Exists(pending))
        .update(status=S.FINISHED, finished_at=timezone.now())
    )


@transaction.atomic
def sending_policy_update(*, actor: User, node: OrgNode, **fields) -> SendingPolicy:
    policy = policy_for(node)
    _require(actor, Capability.MANAGE_SENDING_RULES, policy.node)
    for name, value in fields.items():
        setattr(policy, name, value)
    if not policy.sms_start < policy.sms_end:
        raise ValidationError({"sms_end": _("The SMS window must close after it opens.")})
    policy.save()
    audit(
        actor=actor,
        action="sending_policy.update",
        target_type="sending_policy",
        target_id=str(policy.pk),
        node_path=policy.node.path,
        changes={k: str(v) for k, v in fields.items()},
    )
    return policy


@transaction.atomic
def pressure_rules_replace(
    *, actor: User, node: OrgNode, rules: list[tuple[str, int, int]]
) -> list[PressureRule]:
    """Replace the network's caps with ``(channel, at most, in days)`` triples."""
    root = root_of(node)
    _require(actor, Capability.MANAGE_SENDING_RULES, root)
    for channel, most, days in rules:
        if channel not in Channel.values or most < 1 or days < 1:
            raise ValidationError(
                _("A cap needs a channel, at least 1 message and at least 1 day.")
            )
    PressureRule.objects.filter(node=root).delete()
    created = [
        PressureRule.objects.create(node=root, channel=c, max_messages=m, window_days=d)
        for c, m, d in rules
    ]
    audit(
        actor=actor,
        action="pressure_rules.replace",
        target_type="network",
        target_id=str(root.public_id),
        node_path=root.path,
        changes={"rules": [list(r) for r in rules]},
    )
    return created


@transaction.atomic
def budget_set(
    *, actor: User, unit: OrgNode, starts_on: dt.date, ends_on: dt.date, amount: Decimal
) -> Budget:
    _require(actor, Capability.MANAGE_SENDING_RULES, unit)
    if ends_on < starts_on:
        raise ValidationError({"ends_on": _("The period must end after it starts.")})
    if amount < 0:
        raise ValidationError({"amount": _("A budget cannot be negative.")})
    overlapping = Budget.objects.filter(unit=unit, starts_on__lte=ends_on, ends_on__gte=starts_on)
    budget = overlapping.first()
    if budget is not None and (budget.starts_on, budget.ends_on) != (starts_on, ends_on):
        raise ValidationError(
            _("This period overlaps the budget from %(start)s to %(end)s.")
            % {"start": budget.starts_on, "end": budget.ends_on}
        )
    budget, _created = Budget.objects.update_or_create(
        unit=unit,
        starts_on=starts_on,
        ends_on=ends_on,
        defaults={"amount": amount, "unit_path": unit.path},
    )
    audit(
        actor=actor,
        action="budget.set",
        target_type="budget",
        target_id=str(budget.pk),
        node_path=unit.path,
        changes={"amount": str(amount), "from": starts_on.isoformat(), "to": ends_on.isoformat()},
    )
    return budget
