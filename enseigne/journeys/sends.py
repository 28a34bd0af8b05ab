"""A journey's send step queues its messages in the campaign ledger; the runners send them.

Each send step of a run's version has its own ledger campaign (kind ``journey``, owned by
the store, HQ's template at its current version, sending while the run lasts). Reaching the
step inserts one ledger row per record, keyed by the enrollment (``Recipient.occurrence``),
in the engine's transaction: a batch rolled back inserts nothing, a batch run twice inserts
nothing more. Consent, suppression, pressure across campaigns and journeys, the SMS window,
the content gate, the journal — every gate of ``campaigns.gates`` — then applies at hand-off
as for any campaign; journeys have no gate of their own.
"""

from __future__ import annotations

import copy

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.brand.models import Template
from enseigne.campaigns.content import content_problems, problems_text
from enseigne.campaigns.models import Campaign, PauseReason, Recipient
from enseigne.contacts.models import Channel
from enseigne.journeys.flow import Step
from enseigne.journeys.models import Enrollment, JourneyRun, JourneySend, StepTexts
from enseigne.lib.ids import parse_uuid

CHANNELS = {"send_email": Channel.EMAIL, "send_sms": Channel.SMS}


def template_of(step: Step) -> Template | None:
    """The brand template the step names (None when there is none by that id)."""
    key = parse_uuid(step.template)
    return Template.objects.filter(public_id=key).first() if key else None


def template_problem(run: JourneyRun, step: Step, template: Template | None) -> str:
    """Why the step may not send with ``template`` in this run ('' when it may)."""
    if template is None or template.archived or template.current_id is None:
        return _("The template of step “%(step)s” was withdrawn.") % {"step": step.id}
    if template.channel != CHANNELS[step.kind]:
        return _("The template of step “%(step)s” is not for this channel.") % {"step": step.id}
    if not run.unit_path.startswith(template.shared_path):
        return _("The template of step “%(step)s” is not shared with this store.") % {
            "step": step.id
        }
    return ""


def step_campaign(run: JourneyRun, version_id: int, step: Step) -> Campaign | str:
    """The step's ledger campaign (made on first use), or why the step may not send."""
    found = (
        JourneySend.objects.filter(run=run, version_id=version_id, step=step.id)
        .select_related("campaign")
        .first()
    )
    if found is not None:
        return found.campaign
    template = template_of(step)
    problem = template_problem(run, step, template)
    if problem or template is None:
        return problem
    channel = CHANNELS[step.kind]
    now = timezone.now()
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                kind=Campaign.Kind.JOURNEY,
                channel=channel,
                name=f"{run.template.name} · {step.id}"[:200],
                owner=run.unit,
                owner_path=run.unit_path,
                template=template,
                status=Campaign.Status.SENDING,
                created_by=run.created_by,
                decided_at=now,
                launched_at=now,
                frozen_at=now,
                **texts_fields(
                    StepTexts.objects.filter(run=run, step=step.id, template=template).first(),
                    template,
                ),
            )
            JourneySend.objects.create(
                run=run,
                version_id=version_id,
                step=step.id,
                campaign=campaign,
                unit_path=run.unit_path,
            )
    except IntegrityError:  # another worker made it first
        return (
            JourneySend.objects.select_related("campaign")
            .get(run=run, version_id=version_id, step=step.id)
            .campaign
        )
    return campaign


def texts_fields(texts: StepTexts | None, template: Template) -> dict:
    """What a step's campaign sends, as a campaign keeps it (``campaigns.content``): the
    store's approved texts for the step, or head office's current version and defaults; and
    the local version it holds (frozen against edits, as for any campaign: the approved
    one, or the one waiting for approval)."""
    if texts is None or texts.template_id != template.pk:
        return {
            "approved_version_id": template.current_id,
            "approved_values": {},
            "local_version_id": None,
        }
    approved = texts.approved_version_id is not None
    return {
        "approved_version_id": texts.approved_version_id if approved else template.current_id,
        "approved_values": copy.deepcopy(texts.approved_values) if approved else {},
        "local_version_id": texts.local_version_id
        if texts.status == StepTexts.Status.PENDING
        else texts.approved_local_id,
    }


def content_lines(run: JourneyRun, step_id: str, campaign: Campaign) -> list[str]:
    """Why the step's campaign may not send what it sends today (the campaigns' content
    gate), for people; [] when it may."""
    lines = problems_text(content_problems(campaign))
    if (
        lines
        and StepTexts.objects.filter(
            run=run, step=step_id, template=campaign.template_id, status=StepTexts.Status.PENDING
        ).exists()
    ):
        lines.append(_("Your texts for this step wait for approval."))
    return lines


def resume_if_stopped_for_content(run: JourneyRun, campaign: Campaign) -> bool:
    """A step campaign the content gate stopped at hand-off sends again once its content
    passes (the store's new texts approved, HQ's rule changed back): nobody resumes a
    journey's step campaign by hand. Only while the run is running; compare-and-swap."""
    if (
        run.status != JourneyRun.Status.ACTIVE
        or campaign.status != Campaign.Status.PAUSED
        or campaign.pause_reason != PauseReason.CONTENT
        or content_problems(campaign)
    ):
        return False
    resumed = Campaign.objects.filter(
        pk=campaign.pk, status=Campaign.Status.PAUSED, pause_reason=PauseReason.CONTENT
    ).update(status=Campaign.Status.SENDING, pause_reason="", content_problems=[])
    if resumed:
        campaign.status, campaign.pause_reason = Campaign.Status.SENDING, ""
        transaction.on_commit(lambda: _wake(campaign.pk))
    return bool(resumed)


def queue(run: JourneyRun, step: Step, rows: list[Enrollment]) -> str:
    """Queue the step's message for these rows (all of one version); '' when queued, else
    why the step may not send (its rows stop; nothing is queued)."""
    campaign = step_campaign(run, rows[0].version_id, step)
    if isinstance(campaign, str):
        return campaign
    problems = content_lines(run, step.id, campaign)
    if problems:
        return " ".join(problems)[:300]
    resume_if_stopped_for_content(run, campaign)
    Recipient.objects.bulk_create(
        [
            Recipient(
                campaign=campaign,
                contact_id=row.contact_id,
                unit_id=run.unit_id,
                unit_path=run.unit_path,
                channel=campaign.channel,
                occurrence=row.pk,
            )
            for row in rows
        ],
        ignore_conflicts=True,
    )
    Campaign.objects.filter(pk=campaign.pk).update(recipient_total=F("recipient_total") + len(rows))
    transaction.on_commit(lambda: _wake(campaign.pk))
    return ""


def _wake(campaign_id: int) -> None:
    from enseigne.delivery.tasks import send_campaign

    send_campaign(campaign_id)
