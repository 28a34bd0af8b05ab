"""The system pausing a campaign by itself (complaint rate, a failed preparation): one
compare-and-swap from the status it expects, and its audit line, or neither."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from enseigne.campaigns.models import Campaign, PauseReason
from enseigne.network.services import audit


def system_pause(campaign_id: int, *, expected: str, reason: PauseReason, **details) -> bool:
    """``expected`` → paused with ``reason``; True if this call paused it."""
    with transaction.atomic():
        paused = Campaign.objects.filter(pk=campaign_id, status=expected).update(
            status=Campaign.Status.PAUSED, pause_reason=reason, updated_at=timezone.now()
        )
        if paused:
            campaign = Campaign.objects.get(pk=campaign_id)
            audit(
                actor=None,
                action="campaign.pause",
                target=campaign,
                node_path=campaign.owner_path,
                changes={"reason": reason.value, **details},
            )
    return bool(paused)
