"""Sending controls over the JSON API: launch, pause, resume."""

from __future__ import annotations

from ninja import Router

from enseigne.campaigns.api import CampaignOut
from enseigne.campaigns.selectors import get_campaign_for_user
from enseigne.delivery import services
from enseigne.network.access import AuthenticatedRequest

# Every route sits behind the API's TokenAuth, so the user is never anonymous.
router = Router(tags=["campaigns"])


@router.post("/campaigns/{campaign_id}/launch", response=CampaignOut)
def launch_campaign(request: AuthenticatedRequest, campaign_id: str):
    campaign = get_campaign_for_user(request.user, campaign_id)
    services.sending_launch(actor=request.user, campaign=campaign)
    return CampaignOut.of(campaign)


@router.post("/campaigns/{campaign_id}/pause", response=CampaignOut)
def pause_campaign(request: AuthenticatedRequest, campaign_id: str):
    campaign = get_campaign_for_user(request.user, campaign_id)
    return CampaignOut.of(services.sending_pause(actor=request.user, campaign=campaign))


@router.post("/campaigns/{campaign_id}/resume", response=CampaignOut)
def resume_campaign(request: AuthenticatedRequest, campaign_id: str):
    campaign = get_campaign_for_user(request.user, campaign_id)
    services.sending_resume(actor=request.user, campaign=campaign)
    return CampaignOut.of(campaign)
