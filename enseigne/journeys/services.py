"""Writes on journeys: HQ designs and publishes, stores activate and control their runs.

Who may do what (docs/decisions.md, "Journeys: the first pages"):
- HQ (``create_national_campaigns`` at the network root) designs the network's journeys,
  publishes their versions, makes one mandatory for a region or a tag, pauses the network.
- A store allowed to write its own messages (``create_free_campaigns`` at the store) may
  design journeys of its own, for itself only.
- A store (``create_local_campaigns`` at the store) activates a journey, pauses, resumes and
  stops its run, except a mandatory run, which only HQ pauses or stops (a paused mandatory
  run is a stopped one that nobody sees as such).
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.brand.models import LocalVersion, Template
from enseigne.campaigns.gates import Reason
from enseigne.campaigns.models import Campaign, Recipient
from enseigne.contacts.models import Channel
from enseigne.contacts.segments import SegmentCompiler
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import Network, OrgNode, User
from enseigne.network.services import audit

from . import flow as flows
from . import triggers
from .models import (
    Enrollment,
    EnrollmentStep,
    JourneyRun,
    JourneySend,
    JourneyTemplate,
    JourneyVersion,
)
from .texts import check_texts, reapply_texts, refresh_problem, step_texts_choose

RUN = JourneyRun.Status
STEP_CHANNELS = {"send_email": Channel.EMAIL, "send_sms": Channel.SMS}


# --- who may -----------------------------------------------------------------------------


def may_design_for_network(actor: User) -> bool:
    access = access_for(actor)
    if not access.is_hq:
        return False
    root = OrgNode.objects.filter(path=_root_path(actor)).first()
    return root is not None and access.can(Capability.CREATE_NATIONAL_CAMPAIGNS, root)


def may_design_for_store(actor: User, unit: OrgNode) -> bool:
    return unit.kind == OrgNode.Kind.UNIT and access_for(actor).can(
        Capability.CREATE_FREE_CAMPAIGNS, unit
    )


def may_run_in(actor: User, unit: OrgNode) -> bool:
    return access_for(actor).can(Capability.CREATE_LOCAL_CAMPAIGNS, unit)


def _root_path(actor: User) -> str:
    grants = access_for(actor).grants
    return grants[0].path[: OrgNode.steplen] if grants else ""


def _require_design(actor: User, template: JourneyTemplate) -> None:
    if template.owner.kind == OrgNode.Kind.UNIT:
        allowed = may_design_for_store(actor, template.owner)
    else:
        allowed = may_design_for_network(actor)
    if not allowed:
        raise PermissionDenied(_("You may not change this journey."))


def _hq(actor: User) -> OrgNode:
    if not may_design_for_network(actor):
        raise PermissionDenied(_("Only HQ designs the network's journeys."))
    return OrgNode.objects.get(path=_root_path(actor))


# --- design ------------------------------------------------------------------------------


@transaction.atomic
def journey_template_create(
    *,
    actor: User,
    owner: OrgNode,
    name: str,
    description: str = "",
    reentry: str = JourneyTemplate.Reentry.NEVER,
    reentry_days: int | None = None,
    holdout_percent: int = 0,
) -> JourneyTemplate:
    """A new journey, without a version yet: HQ's (owner: the network root) or a store's own."""
    if owner.is_root():
        _hq(actor)
        if owner.path != _root_path(actor):
            raise PermissionDenied(_("Only HQ designs the network's journeys."))
    elif not may_design_for_store(actor, owner):
        raise PermissionDenied(_("This store may not design journeys of its own."))
    name = name.strip()[:120]
    errors = _settings_errors(reentry, reentry_days, holdout_percent)
    if not name:
        errors["name"] = _("Give the journey a name.")
    if errors:
        raise ValidationError(errors)
    template = JourneyTemplate(
        network=Network.objects.get(node__path=owner.path[: OrgNode.steplen]),
        owner=owner,
        owner_path=owner.path,
        name=name,
        description=description.strip()[:300],
        reentry=reentry,
        reentry_days=reentry_days if reentry == JourneyTemplate.Reentry.AFTER else None,
        holdout_percent=holdout_percent,
        created_by=actor,
    )
    try:
        with transaction.atomic():
            template.save()
    except IntegrityError:
        raise ValidationError({"name": _("Another journey already has this name.")}) from None
    audit(actor=actor, action="journey.create", target=template, node_path=owner.path)
    return template


def _settings_errors(reentry: str, reentry_days: int | None, holdout_percent: int) -> dict:
    """What is wrong with a journey's re-entry rule and control group, by field."""
    errors: dict[str, str] = {}
    if reentry not in JourneyTemplate.Reentry.values:
        errors["reentry"] = _("Choose when a customer may enter again.")
    if reentry == JourneyTemplate.Reentry.AFTER and not (reentry_days and reentry_days >= 1):
        errors["reentry_days"] = _("Give the number of days (1 or more) before entering again.")
    if not 0 <= holdout_percent <= 50:
        errors["holdout_percent"] = _("The control group is 0 to 50 % of the entrants.")
    return errors


def _ancestor_paths(path: str) -> list[str]:
    step = OrgNode.steplen
    return [path[:i] for i in range(step, len(path) + 1, step)]


def check_send_templates(flow: flows.Flow, owner_path: str) -> None:
    """Each send step's brand template exists, is published and not archived, is of the
    step's channel and is shared with every store that may run the journey (the owner's
    node or above); every problem names its step."""
    errors = flows.FlowErrors()
    wanted = flow.templates()
    keys = {step_id: parse_uuid(value) for step_id, value in wanted.items()}
    found = {
        t.public_id: t
        for t in Template.objects.filter(public_id__in=[k for k in keys.values() if k])
    }
    shared_with = set(_ancestor_paths(owner_path))
    for step_id, key in keys.items():
        step = flow.steps[step_id]
        template = found.get(key) if key else None
        if template is None:
            errors.add(step_id, _("its template does not exist."))
        elif template.archived or template.current_id is None:
            errors.add(
                step_id,
                _("its template “%(name)s” is archived or not published.")
                % {"name": template.name},
            )
        elif template.channel != STEP_CHANNELS[step.kind]:
            errors.add(
                step_id,
                _("its template “%(name)s” is for %(channel)s.")
                % {"name": template.name, "channel": Channel(template.channel).label},
            )
        elif template.shared_path not in shared_with:
            errors.add(
                step_id,
                _("its template “%(name)s” is not shared with every store of the journey.")
                % {"name": template.name},
            )
    errors.raise_if_any()


def sendable_templates(owner_path: str, channel: str):
    """The brand templates of ``channel`` a journey owned at ``owner_path`` may send: those
    ``check_send_templates`` accepts (published, not archived, shared with its stores)."""
    return Template.objects.filter(
        channel=channel,
        archived=False,
        current__isnull=False,
        shared_path__in=_ancestor_paths(owner_path),
    ).order_by("name")


def check_conditions(flow: flows.Flow, actor: User, owner_path: str) -> None:
    """Each condition's rules, and a segment trigger's, read as segment rules of the author
    (the engine reads them as the template's author's): a rule that does not is named with
    its step (or the trigger); a saved segment must be shared with the journey's owner."""
    errors = flows.FlowErrors()
    compiler = SegmentCompiler(actor)
    if flow.trigger.get("kind") == "segment":
        rules = triggers.segment_rules(flow.trigger, owner_path)
        if rules is None:
            errors.add(None, _("The trigger's saved segment is not shared with this journey."))
        else:
            try:
                compiler.compile(rules)
            except ValidationError as exc:
                errors.add(None, " ".join(exc.messages))
    for step in flow.steps.values():
        if step.kind == "condition" and step.rules is not None:
            try:
                compiler.compile(step.rules)
            except ValidationError as exc:
                errors.add(step.id, " ".join(exc.messages))
    errors.raise_if_any()


@transaction.atomic
def journey_design_publish(
    *,
    actor: User,
    template: JourneyTemplate,
    flow: object,
    reentry: str,
    reentry_days: int | None,
    holdout_percent: int,
    move_people: bool = False,
) -> JourneyVersion:
    """The editor's save: the journey's re-entry rule and control group, then its flow as
    the next version, together (either both or neither)."""
    _require_design(actor, template)
    errors = _settings_errors(reentry, reentry_days, holdout_percent)
    if errors:
        raise ValidationError(errors)
    template.reentry = reentry
    template.reentry_days = reentry_days if reentry == JourneyTemplate.Reentry.AFTER else None
    template.holdout_percent = holdout_percent
    template.save(update_fields=["reentry", "reentry_days", "holdout_percent"])
    audit(
        actor=actor,
        action="journey.settings",
        target=template,
        node_path=template.owner_path,
        changes={
            "reentry": template.reentry,
            "reentry_days": template.reentry_days,
            "holdout_percent": holdout_percent,
        },
    )
    return journey_publish(actor=actor, template=template, flow=flow, move_people=move_people)


@transaction.atomic
def journey_publish(
    *, actor: User, template: JourneyTemplate, flow: object, move_people: bool = False
) -> JourneyVersion:
    """Publish the flow as the template's next version, which becomes the live one.

    Every run that is not stopped follows the new version for the people who enter from now
    on. With ``move_people``, people waiting in those runs move to it too, when the step
    they wait at exists in the new flow (under the same name); the others finish the
    version they entered."""
    _require_design(actor, template)
    parsed = flows.parse(flow)
    check_send_templates(parsed, template.owner_path)
    check_conditions(parsed, actor, template.owner_path)
    JourneyTemplate.objects.select_for_update().filter(pk=template.pk).get()
    last = template.versions.aggregate(last=Max("number"))["last"] or 0
    version = JourneyVersion.objects.create(
        template=template,
        number=last + 1,
        owner_path=template.owner_path,
        flow=flow,
        published_by=actor,
    )
    previous = template.live_version_id
    template.live_version = version
    template.save(update_fields=["live_version"])
    runs = JourneyRun.objects.filter(template=template).exclude(status=RUN.STOPPED)
    run_ids = list(runs.values_list("pk", flat=True))
    runs.update(version=version)
    moved = 0
    if move_people and run_ids:
        moved = (
            Enrollment.objects.filter(
                run_id__in=run_ids, status=Enrollment.Status.WAITING, step__in=list(parsed.steps)
            )
            .exclude(version=version)
            .update(version=version)
        )
    audit(
        actor=actor,
        action="journey.publish",
        target=template,
        node_path=template.owner_path,
        changes={
            "version": version.number,
            "previous": previous,
            "move_people": move_people,
            "moved": moved,
        },
    )
    return version


# --- runs --------------------------------------------------------------------------------


def _live_version_id(template: JourneyTemplate) -> int:
    if template.live_version_id is None:
        raise ValidationError(_("This journey has no published version yet."))
    return template.live_version_id


def _check_runnable(template: JourneyTemplate, unit: OrgNode) -> int:
    """The live version a store may run (ValidationError when it may not)."""
    if unit.kind != OrgNode.Kind.UNIT:
        raise ValidationError(_("A journey runs in a store."))
    if not unit.path.startswith(template.owner_path):
        raise ValidationError(_("This journey is not offered to this store."))
    return _live_version_id(template)


@transaction.atomic
def journey_activate(
    *,
    actor: User,
    template: JourneyTemplate,
    unit: OrgNode,
    starts_on: dt.date,
    texts: dict[str, LocalVersion] | None = None,
) -> JourneyRun:
    """The store runs the journey's live version from ``starts_on`` (a stopped run of it
    starts again, with the texts it had). ``texts``: the store's local version for some
    message steps (by step id). Refused, naming the step, when a message step could not
    send: a required zone left empty by the store's texts or head office's defaults."""
    if not may_run_in(actor, unit):
        raise PermissionDenied(_("You may not run journeys in this store."))
    version_id = _check_runnable(template, unit)
    if starts_on < timezone.localdate() - dt.timedelta(days=1):
        raise ValidationError({"starts_on": _("The start date cannot be in the past.")})
    run = JourneyRun.objects.select_for_update().filter(template=template, unit=unit).first()
    if run is not None and run.status != RUN.STOPPED:
        raise ValidationError(_("This store already runs this journey."))
    if run is None:
        run = JourneyRun.objects.create(
            template=template,
            version_id=version_id,
            unit=unit,
            unit_path=unit.path,
            starts_on=starts_on,
            created_by=actor,
        )
    else:
        run.status, run.starts_on, run.version_id = RUN.ACTIVE, starts_on, version_id
        run.paused_by_hq = False
        run.save(update_fields=["status", "starts_on", "version", "paused_by_hq"])
        _revive_step_campaigns(run)
    for step_id, local in (texts or {}).items():
        step_texts_choose(actor=actor, run=run, step_id=step_id, local_version=local)
    check_texts(run)
    audit(actor=actor, action="journey.activate", target=run, node_path=unit.path)
    return run


def _revive_step_campaigns(run: JourneyRun) -> None:
    """A stopped run starts again: its steps' campaigns (cancelled by the stop) send again,
    without what was queued before the stop and never handed off (not sent, as the stop
    said)."""
    cancelled = Campaign.objects.filter(_step_campaigns([run.pk]), status=Campaign.Status.CANCELLED)
    Recipient.objects.filter(
        campaign__in=cancelled, status=Recipient.Status.PENDING, attempted_at__isnull=True
    ).update(
        status=Recipient.Status.SKIPPED, reason=Reason.CANCELLED, lease_owner="", lease_until=None
    )
    cancelled.update(status=Campaign.Status.SENDING, finished_at=None)
    reapply_texts(run)  # texts chosen while it was stopped


@transaction.atomic
def journey_make_mandatory(
    *, actor: User, template: JourneyTemplate, node: OrgNode | None = None, tag=None
) -> int:
    """Every store under ``node`` (a region, or the whole network) or carrying ``tag`` runs
    the journey, mandatory: a store without a run gets one from today, a store that had
    stopped it runs it again. Returns the number of stores concerned."""
    root = _hq(actor)
    if template.owner_id != root.pk:
        raise ValidationError(_("Only the network's journeys can be made mandatory."))
    version_id = _live_version_id(template)
    if (node is None) == (tag is None):
        raise ValidationError(_("Choose a region or a tag."))
    units = OrgNode.objects.filter(kind=OrgNode.Kind.UNIT, path__startswith=root.path)
    units = units.filter(path__startswith=node.path) if node is not None else units.filter(tags=tag)
    today = timezone.localdate()
    count = 0
    for unit in units.order_by("path"):
        run = JourneyRun.objects.select_for_update().filter(template=template, unit=unit).first()
        if run is None:
            run = JourneyRun.objects.create(
                template=template,
                version_id=version_id,
                unit=unit,
                unit_path=unit.path,
                starts_on=today,
                mandatory=True,
                created_by=actor,
            )
        else:
            if run.status == RUN.STOPPED:
                run.status, run.starts_on = RUN.ACTIVE, today
            run.mandatory, run.version_id = True, version_id
            run.save(update_fields=["status", "starts_on", "mandatory", "version"])
        # HQ's act is not refused for a store's texts: the store's page says what to write.
        refresh_problem(run)
        count += 1
    audit(
        actor=actor,
        action="journey.mandatory",
        target=template,
        node_path=template.owner_path,
        changes={"node": node.path if node else "", "tag": tag.pk if tag else None, "units": count},
    )
    return count


def _require_run_control(actor: User, run: JourneyRun, verb: str) -> bool:
    """Whether the actor acts as HQ on the run; PermissionDenied when it may not at all."""
    if run.template.owner.is_root() and may_design_for_network(actor):
        return True
    if not may_run_in(actor, run.unit):
        raise PermissionDenied(_("You may not control this store's journeys."))
    if run.mandatory:
        raise PermissionDenied(
            _("HQ made this journey mandatory: only HQ may %(verb)s it.") % {"verb": verb}
        )
    if run.paused_by_hq:
        raise PermissionDenied(_("HQ paused this journey: only HQ may resume it."))
    return False


def _move(run: JourneyRun, sources: tuple[str, ...], target: str, **fields) -> None:
    """Compare-and-swap the run's status (a concurrent click changes nothing twice)."""
    changed = JourneyRun.objects.filter(pk=run.pk, status__in=sources).update(
        status=target, **fields
    )
    if not changed:
        run.refresh_from_db(fields=["status"])
        raise ValidationError(
            _("This journey is %(status)s in this store.")
            % {"status": run.get_status_display().lower()}
        )
    run.status = target
    for name, value in fields.items():
        setattr(run, name, value)


def _step_campaigns(run_ids) -> Q:
    return Q(pk__in=JourneySend.objects.filter(run_id__in=run_ids).values("campaign_id"))


@transaction.atomic
def journey_run_pause(*, actor: User, run: JourneyRun) -> None:
    """Nobody moves on and nothing queued is handed off until the run resumes."""
    as_hq = _require_run_control(actor, run, _("pause"))
    _move(run, (RUN.ACTIVE,), RUN.PAUSED, paused_by_hq=as_hq)
    Campaign.objects.filter(_step_campaigns([run.pk]), status=Campaign.Status.SENDING).update(
        status=Campaign.Status.PAUSED
    )
    audit(actor=actor, action="journey.pause", target=run, node_path=run.unit_path)


@transaction.atomic
def journey_run_resume(*, actor: User, run: JourneyRun) -> None:
    _require_run_control(actor, run, _("resume"))
    _move(run, (RUN.PAUSED,), RUN.ACTIVE, paused_by_hq=False)
    Campaign.objects.filter(_step_campaigns([run.pk]), status=Campaign.Status.PAUSED).update(
        status=Campaign.Status.SENDING
    )
    audit(actor=actor, action="journey.resume", target=run, node_path=run.unit_path)


@transaction.atomic
def journey_run_stop(*, actor: User, run: JourneyRun) -> int:
    """The run ends: people in progress stop where they are (their history says so) and the
    messages queued but not handed off yet are not sent. Returns how many people stopped."""
    _require_run_control(actor, run, _("stop"))
    _move(run, (RUN.ACTIVE, RUN.PAUSED), RUN.STOPPED, paused_by_hq=False)
    now = timezone.now()
    waiting = list(
        Enrollment.objects.filter(run=run, status=Enrollment.Status.WAITING).values_list(
            "pk", "step"
        )
    )
    EnrollmentStep.objects.bulk_create(
        [
            EnrollmentStep(
                enrollment_id=pk,
                unit_path=run.unit_path,
                step=step,
                outcome=EnrollmentStep.Outcome.STOPPED,
                detail="run stopped",
                at=now,
            )
            for pk, step in waiting
        ],
        batch_size=2000,
    )
    Enrollment.objects.filter(pk__in=[pk for pk, _step in waiting]).update(
        status=Enrollment.Status.STOPPED, wake_at=None, updated_at=now
    )
    Campaign.objects.filter(
        _step_campaigns([run.pk]), status__in=(Campaign.Status.SENDING, Campaign.Status.PAUSED)
    ).update(status=Campaign.Status.CANCELLED)
    audit(
        actor=actor,
        action="journey.stop",
        target=run,
        node_path=run.unit_path,
        changes={"stopped": len(waiting)},
    )
    return len(waiting)


def journeys_pause_network(*, actor: User, template: JourneyTemplate | None = None) -> int:
    """HQ pauses every running journey of the network (or every run of one template);
    only HQ's resume starts them again. Returns the number of runs paused."""
    return _switch_network(actor, template, pause=True)


def journeys_resume_network(*, actor: User, template: JourneyTemplate | None = None) -> int:
    """Resume the runs HQ's pause paused (a store's own pause stays)."""
    return _switch_network(actor, template, pause=False)


@transaction.atomic
def _switch_network(actor: User, template: JourneyTemplate | None, *, pause: bool) -> int:
    root = _hq(actor)
    if pause:
        runs = JourneyRun.objects.filter(status=RUN.ACTIVE)
        target, sending = RUN.PAUSED, (Campaign.Status.SENDING, Campaign.Status.PAUSED)
    else:
        runs = JourneyRun.objects.filter(status=RUN.PAUSED, paused_by_hq=True)
        target, sending = RUN.ACTIVE, (Campaign.Status.PAUSED, Campaign.Status.SENDING)
    runs = runs.filter(unit_path__startswith=root.path)
    if template is not None:
        runs = runs.filter(template=template)
    ids = list(runs.values_list("pk", flat=True))
    # The same filters again: a run a store changed meanwhile is left as it now is.
    runs.filter(pk__in=ids).update(status=target, paused_by_hq=pause)
    Campaign.objects.filter(_step_campaigns(ids), status=sending[0]).update(status=sending[1])
    audit(
        actor=actor,
        action="journey.pause_network" if pause else "journey.resume_network",
        target=template or root,
        node_path=root.path,
        changes={"runs": len(ids)},
    )
    return len(ids)
