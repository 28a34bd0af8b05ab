"""A store's own texts in its journey's messages (issue 22: "stores personalise their zones").

The mechanism is the one local and national campaigns use, not a second one: the store
writes a local version of the step's brand template in the brand editor (the zone form,
its checks — empty required zone, length, guardrails, links, SMS segments — and its
preview), then chooses it for the step here. What the step's ledger campaign sends is the
snapshot approved, kept on the campaign as any campaign keeps it
(``approved_version`` / ``approved_values``), so the renderer, the content gate and the
hand-off gates read it as they read a campaign's (``campaigns.content``).

Approval follows the campaigns' rule: a role that may send without approval
(``send_without_approval`` at the store) is approved at once; otherwise the choice waits
for someone who may approve the store's campaigns, and until then the step keeps sending
what was approved before (head office's texts at first): docs/decisions.md, "Journeys: a
store's texts".
"""

from __future__ import annotations

import copy
import html
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.brand.models import LocalVersion, Template, TemplateVersion
from enseigne.brand.rendering import rich_to_text
from enseigne.brand.services import zones_of
from enseigne.brand.zones import Zone
from enseigne.campaigns.content import approved_content
from enseigne.campaigns.models import Campaign, PauseReason
from enseigne.campaigns.services import check_local_version
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import User
from enseigne.network.services import audit

from . import flow as flows
from . import sends
from .models import JourneyRun, JourneySend, StepTexts

TEXTS = StepTexts.Status
# Step campaigns that still send (a cancelled one belongs to a stopped run's past).
_LIVE = (Campaign.Status.SENDING, Campaign.Status.PAUSED)


def may_personalise(actor: User, run: JourneyRun) -> bool:
    """Writing local versions is the store's ``personalise_templates``, mandatory run or not."""
    return access_for(actor).can(Capability.PERSONALISE_TEMPLATES, run.unit)


def may_approve(actor: User, run: JourneyRun) -> bool:
    return access_for(actor).can(Capability.APPROVE_CAMPAIGNS, run.unit)


def send_steps(run: JourneyRun) -> list[flows.Step]:
    """The run's version's message steps, in the flow's order."""
    try:
        parsed = flows.parse(run.version.flow)
    except ValidationError:
        return []
    return [s for s in parsed.steps.values() if s.kind in flows.SEND_KINDS]


def _step(run: JourneyRun, step_id: str) -> flows.Step:
    found = next((s for s in send_steps(run) if s.id == step_id), None)
    if found is None:
        raise ValidationError(_("This journey has no such message step."))
    return found


def _campaign(run: JourneyRun, step: flows.Step) -> Campaign:
    """The step's ledger campaign for the run's version (made now if it is not yet)."""
    campaign = sends.step_campaign(run, run.version_id, step)
    if isinstance(campaign, str):
        raise ValidationError(campaign)
    return campaign


def _apply(run: JourneyRun, step_id: str, texts: StepTexts) -> None:
    """Every live campaign of the step (each journey version has its own) sends the approved
    snapshot from now on; those of another template keep head office's texts."""
    sent = JourneySend.objects.filter(run=run, step=step_id).values("campaign_id")
    live = Campaign.objects.filter(pk__in=sent, template=texts.template, status__in=_LIVE)
    live.update(updated_at=timezone.now(), **sends.texts_fields(texts, texts.template))
    for campaign in live.filter(pause_reason=PauseReason.CONTENT):
        sends.resume_if_stopped_for_content(run, campaign)


def reapply_texts(run: JourneyRun) -> None:
    """The run's live step campaigns send its approved texts (after a restart)."""
    for texts in StepTexts.objects.filter(run=run):
        _apply(run, texts.step, texts)


def _snapshot(texts: StepTexts, local: LocalVersion | None, actor: User) -> None:
    texts.status = TEXTS.APPROVED
    texts.approved_local = local
    texts.approved_version_id = local.version_id if local else None
    texts.approved_values = copy.deepcopy(local.values) if local else {}
    texts.decided_by, texts.decided_at = actor, timezone.now()


@transaction.atomic
def step_texts_choose(
    *, actor: User, run: JourneyRun, step_id: str, local_version: LocalVersion | None
) -> StepTexts:
    """The store's texts for one message step: one of its local versions of the step's
    template, or head office's texts (``None``, never waits for approval)."""
    if not may_personalise(actor, run):
        raise PermissionDenied(_("You may not write this store's texts."))
    step = _step(run, step_id)
    template: Template = _campaign(run, step).template
    local = None
    if local_version is not None:
        # Locked, as an approval locks it: an edit in the same instant comes wholly before or after.
        local = LocalVersion.objects.select_for_update().get(pk=local_version.pk)
        check_local_version(local, template, run.unit)
    texts = StepTexts.objects.select_for_update().filter(run=run, step=step_id).first()
    if texts is None:
        texts = StepTexts(run=run, step=step_id, unit_path=run.unit_path, template=template)
    elif texts.template_id != template.pk:  # texts of the step's former template
        texts.template, texts.approved_local, texts.approved_version = template, None, None
        texts.approved_values = {}
    texts.local_version, texts.comment = local, ""
    texts.chosen_by, texts.chosen_at = actor, timezone.now()
    automatic = local is None or access_for(actor).can(Capability.SEND_WITHOUT_APPROVAL, run.unit)
    if automatic:
        _snapshot(texts, local, actor)
    else:
        texts.status, texts.decided_by, texts.decided_at = TEXTS.PENDING, None, None
    texts.save()
    _apply(run, step_id, texts)
    refresh_problem(run)
    audit(
        actor=actor,
        action="journey.texts",
        target=run,
        node_path=run.unit_path,
        changes={
            "step": step_id,
            "local_version": str(local.public_id) if local else None,
            "status": texts.status,
        },
    )
    return texts


@transaction.atomic
def step_texts_decide(
    *, actor: User, run: JourneyRun, step_id: str, approve: bool, comment: str = ""
) -> StepTexts:
    """Approve or reject the texts a store chose for a step (as a submitted campaign)."""
    if not may_approve(actor, run):
        raise PermissionDenied(_("You may not approve this store's texts."))
    texts = StepTexts.objects.select_for_update().filter(run=run, step=step_id).first()
    if texts is None or texts.status != TEXTS.PENDING:
        raise ValidationError(_("No texts wait for approval on this step."))
    comment = comment.strip()[:300]
    if approve:
        # Waiting texts are always a local version (head office's never wait).
        assert texts.local_version_id is not None
        local = LocalVersion.objects.select_for_update().get(pk=texts.local_version_id)
        check_local_version(local, texts.template, run.unit)
        _snapshot(texts, local, actor)
    else:
        if not comment:
            raise ValidationError({"comment": _("Say why, so the unit can fix it.")})
        texts.status = TEXTS.REJECTED
        texts.decided_by, texts.decided_at = actor, timezone.now()
    texts.comment = comment
    texts.save()
    _apply(run, step_id, texts)
    refresh_problem(run)
    audit(
        actor=actor,
        action="journey.texts_approve" if approve else "journey.texts_reject",
        target=run,
        node_path=run.unit_path,
        changes={"step": step_id, "comment": comment},
    )
    return texts


def texts_problems(run: JourneyRun, *, as_chosen: bool = True) -> list[str]:
    """What each message step of the run would send, checked by the campaigns' content gate,
    each problem naming its step: a required zone left empty (by the store's texts, or by
    head office's where the store has none), a text a guardrail refuses, a template
    withdrawn. ``as_chosen``: texts waiting for approval count as the store's (they were
    checked when chosen; the step waits for the approval); otherwise what is sent today.
    Makes the steps' campaigns."""
    errors = flows.FlowErrors()
    chosen = {t.step: t for t in StepTexts.objects.filter(run=run).select_related("local_version")}
    for step in send_steps(run):
        campaign = sends.step_campaign(run, run.version_id, step)
        if isinstance(campaign, str):
            errors.messages.append(campaign)
            continue
        texts = chosen.get(step.id)
        pending = (
            texts is not None
            and texts.status == TEXTS.PENDING
            and texts.template_id == campaign.template_id
            and texts.local_version is not None
        )
        if pending and as_chosen:
            for problem in texts.local_version.problems:  # type: ignore[union-attr]
                errors.add(step.id, problem)
            continue
        for line in sends.content_lines(run, step.id, campaign):
            errors.add(step.id, line)
    return errors.messages


def check_texts(run: JourneyRun) -> None:
    """Refuse (ValidationError, every problem naming its step) a run that could not send."""
    problems = texts_problems(run)
    if problems:
        raise ValidationError(problems)


def refresh_problem(run: JourneyRun) -> None:
    """The run's page says at once what its steps' texts now stop (the engine says the
    same at its next try, and clears it once a step sends)."""
    problem = " ".join(texts_problems(run, as_chosen=False))[:300]
    if problem != run.problem:
        run.problem, run.problem_at = problem, timezone.now() if problem else None
        JourneyRun.objects.filter(pk=run.pk).update(problem=run.problem, problem_at=run.problem_at)


# --- the run page's section (reads) --------------------------------------------------------


@dataclass
class StepCard:
    """One message step as the run's page shows it: what it sends, and the store's choice."""

    step: flows.Step
    template: Template | None
    problem: str  # why the step cannot use its template ('' when it can)
    texts: StepTexts | None  # the store's choice for this template (None: head office's texts)
    former: bool  # the store's texts were for the step's former template
    versions: list[LocalVersion] = field(default_factory=list)  # the store's, to choose from
    zones: list[dict] = field(default_factory=list)  # each zone: label, what is sent, whose
    blocked: list[str] = field(default_factory=list)  # why what it sends may not be sent today


def _shown(zone: Zone, value) -> tuple[str, bool]:
    """A zone's value as words for the page (escaped there), and whether the store wrote it."""
    if zone.kind == "choice":
        label = {o.value: o.label for o in zone.options}
        return label.get(value) or label.get(zone.default, zone.default), bool(value)
    if zone.kind in ("text", "rich"):
        own = value not in (None, "")
        text = value if own else zone.default
        return (rich_to_text(text) if zone.kind == "rich" else html.unescape(text)), own
    picked = value if isinstance(value, dict) else {}
    return str(picked.get("title") or picked.get("alt") or ("✓" if picked else "—")), bool(picked)


def sent_content(run: JourneyRun, step: flows.Step) -> tuple[TemplateVersion, dict] | None:
    """The version and values the step's messages are rendered from today (as the step's
    campaign for the run's version renders them), None without a usable template."""
    found = (
        JourneySend.objects.filter(run=run, version_id=run.version_id, step=step.id)
        .select_related("campaign")
        .first()
    )
    if found is not None:
        approved = approved_content(found.campaign, run.unit)
        return approved.version, approved.values
    template = sends.template_of(step)
    if template is None or template.current is None:
        return None
    fields = sends.texts_fields(
        StepTexts.objects.filter(run=run, step=step.id, template=template).first(), template
    )
    return template.current, fields["approved_values"]


def step_cards(run: JourneyRun) -> list[StepCard]:
    chosen = {t.step: t for t in StepTexts.objects.filter(run=run).select_related("local_version")}
    cards = []
    for step in send_steps(run):
        template = sends.template_of(step)
        problem = sends.template_problem(run, step, template)
        texts = chosen.get(step.id)
        former = texts is not None and (template is None or texts.template_id != template.pk)
        card = StepCard(
            step=step,
            template=template,
            problem=problem,
            texts=None if former else texts,
            former=former,
        )
        content = None if problem else sent_content(run, step)
        send = (
            JourneySend.objects.filter(run=run, version_id=run.version_id, step=step.id)
            .select_related("campaign")
            .first()
        )
        if send is not None and not problem:
            card.blocked = sends.content_lines(run, step.id, send.campaign)
        if template is not None and content is not None:
            version, values = content
            card.versions = list(
                LocalVersion.objects.filter(unit=run.unit, template=template).order_by("name")
            )
            for zone in zones_of(version):
                text, own = _shown(zone, values.get(zone.name))
                card.zones.append({"zone": zone, "text": text, "own": own})
        cards.append(card)
    return cards
