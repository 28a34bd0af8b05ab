"""The worker's part of a launch: freeze the audience into the ledger, then go to sending.

A launch answers at once (``services.campaign_launch_start``: the campaign is ``preparing``);
freezing a national audience reads every contact of the network (1.2 s on the demo, about
20 s at 1,000,000 contacts) and is done here, by the worker. The freeze and the move to
``sending`` commit together, so no runner ever sees a sending campaign without its ledger,
and a worker killed in the middle leaves the campaign ``preparing`` with no row: the
scheduler's next pass (a worker starting, or every minute) prepares it again.

The campaign row is not locked while the audience is counted: a pause or a cancel in the
meantime answers at once and wins, and the freeze, finding the campaign no longer
preparing when it wants to move it to sending, is rolled back. Two preparations of one
campaign (a task queued twice) cannot both commit: the move to sending is a compare-and-
swap, and the ledger's unique key makes the loser's rows wait for the winner's, then add
nothing.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from enseigne.campaigns import audience
from enseigne.campaigns.content import campaign_stop_for_content, content_problems
from enseigne.campaigns.models import Campaign, PauseReason
from enseigne.campaigns.pausing import system_pause
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.services import audit

logger = logging.getLogger(__name__)
S = Campaign.Status


class _NoLongerPreparing(Exception):
    """Paused or cancelled during the freeze: roll it back."""


def campaign_prepare(campaign_id: int) -> str:
    """Check the approved content again, freeze the audience as of the launch, and go to
    sending (or to finished when the ledger got no row at all). Returns the status the
    campaign is left in. Idempotent: a campaign no longer preparing is left alone.

    The content gate refusing stops the campaign for its content (with the reasons, as at a
    scheduler wake); an error while freezing pauses it with ``PauseReason.PREPARATION``, so it
    is never left preparing with nobody at work on it."""
    # One scope per transaction (``db_scope`` opens one): the failure's own write must not
    # be rolled back with the freeze.
    try:
        with db_scope(ALL):
            return _prepare(campaign_id)
    except _NoLongerPreparing:
        with db_scope(ALL):
            return Campaign.objects.values_list("status", flat=True).get(pk=campaign_id)
    except Exception:
        logger.exception("preparing the audience of campaign %s failed", campaign_id)
        with db_scope(ALL):
            _fail(campaign_id)
        raise


def _prepare(campaign_id: int) -> str:
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_related("owner", "template", "segment", "created_by")
            .filter(pk=campaign_id)
            .first()
        )
        if campaign is None or campaign.status != S.PREPARING:
            return campaign.status if campaign else ""
        problems = content_problems(campaign)
        if problems:
            campaign_stop_for_content(campaign=campaign, problems=problems)
            return campaign.status
        total = audience.freeze(campaign, campaign.launched_at or timezone.now())
        now = timezone.now()
        # An empty ledger has nothing to send: finished now, and the page says why.
        target = S.SENDING if total else S.FINISHED
        moved = Campaign.objects.filter(pk=campaign.pk, status=S.PREPARING).update(
            status=target,
            frozen_at=now,
            recipient_total=total,
            finished_at=None if total else now,
            updated_at=now,
        )
        if not moved:
            raise _NoLongerPreparing
        audit(
            actor=None,
            action="campaign.prepared",
            target=campaign,
            node_path=campaign.owner_path,
            changes={"recipients": total},
        )
    return target


def _fail(campaign_id: int) -> None:
    system_pause(campaign_id, expected=S.PREPARING, reason=PauseReason.PREPARATION)


def campaigns_preparing() -> list[int]:
    """Campaigns waiting for their freeze (the scheduler prepares them again after a crash)."""
    with db_scope(ALL):
        return list(Campaign.objects.filter(status=S.PREPARING).values_list("pk", flat=True))
