"""Campaigns over the JSON API: create, read, submit, approve, schedule; same rules as the UI."""

from __future__ import annotations

import datetime as dt
import uuid

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from enseigne.api.bounds import fits
from enseigne.api.paging import PageParams, page_of, paginate
from enseigne.brand.selectors import get_local_version_for_user, get_template_for_user
from enseigne.campaigns import figures, selectors, services
from enseigne.campaigns.models import Campaign
from enseigne.contacts.selectors import get_segment_for_user
from enseigne.network import selectors as network_selectors
from enseigne.network.access import access_for

router = Router(tags=["campaigns"])


class ProgressOut(Schema):
    total: int
    sent: int
    pending: int
    failed: int
    skipped: int
    ambiguous: int
    percent: int


class CampaignOut(Schema):
    id: uuid.UUID
    kind: str
    channel: str
    name: str
    status: str
    owner: uuid.UUID
    template: uuid.UUID
    send_at: dt.datetime | None
    decision_comment: str
    needs_confirmation: bool
    progress: ProgressOut | None

    @staticmethod
    def of(campaign: Campaign) -> CampaignOut:
        return CampaignOut(
            id=campaign.public_id,
            kind=campaign.kind,
            channel=campaign.channel,
            name=campaign.name,
            status=campaign.status,
            owner=campaign.owner.public_id,
            template=campaign.template.public_id,
            send_at=campaign.send_at,
            decision_comment=campaign.decision_comment,
            needs_confirmation=campaign.needs_confirmation,
            progress=ProgressOut(**selectors.progress(campaign)) if campaign.launched_at else None,
        )


class AudienceOut(Schema):
    """The audience figures the worker keeps (never counted in the request). ``counted``
    false: none kept yet (the figure fields are null) and ``computing`` says a count was
    asked for. ``stale``: kept figures whose inputs changed or that are older than 15
    minutes, shown while new ones are counted."""

    counted: bool
    stale: bool
    computing: bool
    computed_at: dt.datetime | None
    age_seconds: int | None
    for_date: dt.datetime | None
    recipients: int | None = None
    candidates: int | None = None
    exclusions: dict[str, int] | None = None
    pressure_sources: dict[str, int] | None = None
    cost: float | None = None
    hq_cost: float | None = None

    @staticmethod
    def of(kept: figures.Kept) -> AudienceOut:
        shown = AudienceOut(
            counted=kept.preview is not None,
            stale=kept.stale,
            computing=kept.computing,
            computed_at=kept.computed_at,
            age_seconds=int((timezone.now() - kept.computed_at).total_seconds())
            if kept.computed_at
            else None,
            for_date=kept.for_date,
        )
        if kept.preview is not None:
            result = kept.preview
            shown.recipients = result.recipients
            shown.candidates = result.candidates
            shown.exclusions = result.exclusions
            shown.pressure_sources = dict(result.pressure_sources)
            shown.cost = float(result.cost)
            shown.hq_cost = float(result.hq_cost)
        return shown


class CampaignDetailOut(CampaignOut):
    audience: AudienceOut | None = None


class CampaignIn(Schema):
    kind: str = fits(Campaign, "kind", "local")
    channel: str = fits(Campaign, "channel")
    name: str = fits(Campaign, "name", "")
    template: uuid.UUID
    unit: uuid.UUID | None = None
    local_version: uuid.UUID | None = None
    segment: uuid.UUID | None = None
    target_node: uuid.UUID | None = None
    audience_rules: dict | None = None
    allow_opt_out: bool = True
    relay_deadline: dt.datetime | None = None
    send_at: dt.datetime | None = None


class DecisionIn(Schema):
    comment: str = Field("", max_length=2_000)
    over_budget: bool = False


class ScheduleIn(Schema):
    send_at: dt.datetime


@router.post("/campaigns", response={201: CampaignOut})
def create_campaign(request: HttpRequest, payload: CampaignIn):
    template = get_template_for_user(request.user, payload.template)
    if payload.kind == "national":
        target = (
            network_selectors.get_node_for_user(request.user, payload.target_node)
            if payload.target_node
            else None
        )
        campaign = services.campaign_create_national(
            actor=request.user,
            channel=payload.channel,
            name=payload.name,
            template=template,
            target_node=target,
            audience_rules=payload.audience_rules,
            allow_opt_out=payload.allow_opt_out,
            relay_deadline=payload.relay_deadline,
            send_at=payload.send_at,
        )
    elif payload.kind == "local":
        if payload.unit is None or payload.segment is None:
            raise ValidationError({"unit": _("A local campaign needs a unit and a segment.")})
        unit = network_selectors.get_unit_for_user(request.user, payload.unit)
        local = (
            get_local_version_for_user(request.user, payload.local_version)
            if payload.local_version
            else None
        )
        campaign = services.campaign_create_local(
            actor=request.user,
            unit=unit,
            channel=payload.channel,
            name=payload.name,
            template=template,
            local_version=local,
            segment=get_segment_for_user(request.user, payload.segment),
            send_at=payload.send_at,
        )
    else:
        raise ValidationError({"kind": _("kind is “local” or “national”.")})
    return Status(201, CampaignOut.of(campaign))


@router.get("/campaigns", response=page_of(CampaignOut))
def list_campaigns(
    request: HttpRequest,
    page: Query[PageParams],
    status: str = "",
    kind: str = "",
    channel: str = "",
):
    """Campaigns in your scope (and national ones relayed by your units), newest first."""
    campaigns = selectors.campaigns_for_user(request.user)
    if status:
        campaigns = campaigns.filter(status=status)
    if kind:
        campaigns = campaigns.filter(kind=kind)
    if channel:
        campaigns = campaigns.filter(channel=channel)
    return paginate(campaigns.order_by("-created_at"), page, CampaignOut.of)


@router.get("/campaigns/{campaign_id}", response=CampaignDetailOut)
def get_campaign(request: HttpRequest, campaign_id: str):
    campaign = selectors.get_campaign_for_user(request.user, campaign_id)
    detail = CampaignDetailOut(**CampaignOut.of(campaign).dict())
    if campaign.status in figures.COUNTED and campaign.status != Campaign.Status.REJECTED:
        # The kept figures as the caller may see them; missing or stale ones are asked of
        # the worker, like the campaign page's audience panel.
        detail.audience = AudienceOut.of(figures.kept_for(campaign, access_for(request.user)))
    return detail


def _get(request, campaign_id) -> Campaign:
    return selectors.get_campaign_for_user(request.user, campaign_id)


@router.post("/campaigns/{campaign_id}/submit", response=CampaignOut)
def submit_campaign(request: HttpRequest, campaign_id: str):
    campaign = _get(request, campaign_id)
    return CampaignOut.of(services.campaign_submit(actor=request.user, campaign=campaign))


@router.post("/campaigns/{campaign_id}/approve", response=CampaignOut)
def approve_campaign(request: HttpRequest, campaign_id: str, payload: DecisionIn | None = None):
    campaign = _get(request, campaign_id)
    payload = payload or DecisionIn()
    return CampaignOut.of(
        services.campaign_approve(
            actor=request.user,
            campaign=campaign,
            comment=payload.comment,
            over_budget=payload.over_budget,
        )
    )


@router.post("/campaigns/{campaign_id}/reject", response=CampaignOut)
def reject_campaign(request: HttpRequest, campaign_id: str, payload: DecisionIn):
    campaign = _get(request, campaign_id)
    return CampaignOut.of(
        services.campaign_reject(actor=request.user, campaign=campaign, comment=payload.comment)
    )


@router.post("/campaigns/{campaign_id}/schedule", response=CampaignOut)
def schedule_campaign(request: HttpRequest, campaign_id: str, payload: ScheduleIn):
    campaign = _get(request, campaign_id)
    return CampaignOut.of(
        services.campaign_schedule(actor=request.user, campaign=campaign, send_at=payload.send_at)
    )
