"""Background work for campaigns: counting audiences, so that no page does (campaigns/figures.py)."""

from __future__ import annotations

from huey.contrib.djhuey import db_task

from enseigne.campaigns.figures import figures_compute


@db_task(retries=1, retry_delay=30)
def audience_refresh(campaign_id: int) -> None:
    """Count the campaign's audience and keep the figures (by id; idempotent)."""
    figures_compute(campaign_id)
