"""Attribution, first version: which campaigns a unit's sales are credited to.

A sale is credited to campaigns whose messages the buyer clicked within the window
before it (``SendingPolicy.attribution_window_days``):

- last click (the default): all of it to the last click;
- first click: all of it to the first;
- linear: shared equally between the clicks;
- time decay: shared with weights halving every ``HALF_LIFE_DAYS`` before the sale.

A sale with no click in the window is credited to no campaign, whatever the model: a
unit's credited revenue is the same under every model, only its split between campaigns
changes. ROI reads the model the network chose.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from enseigne.campaigns.models import AttributionModel
from enseigne.tracking.conversions import Touch, touches
from enseigne.tracking.models import Conversion

HALF_LIFE_DAYS = 7
M = AttributionModel


@dataclass
class Credit:
    conversions: Decimal  # fractional under the sharing models
    revenue: Decimal


def weights(model: str, clicks: list[Touch], sale_at: dt.datetime) -> list[Decimal]:
    if not clicks:
        return []
    if model == M.FIRST_CLICK:
        return [Decimal(1)] + [Decimal(0)] * (len(clicks) - 1)
    if model == M.LINEAR:
        return [Decimal(1) / len(clicks)] * len(clicks)
    if model == M.TIME_DECAY:
        raw = [
            Decimal(2) ** Decimal(-(sale_at - c.at).total_seconds() / 86400 / HALF_LIFE_DAYS)
            for c in clicks
        ]
        total = sum(raw)
        return [w / total for w in raw]
    return [Decimal(0)] * (len(clicks) - 1) + [Decimal(1)]


def credit(
    conversions: Iterable[Conversion], model: str, window_days: int
) -> dict[tuple[int, int], Credit]:
    """Credit per (campaign id, unit id) for ``conversions`` under ``model``."""
    conversions = [c for c in conversions if c.contact_id is not None]
    out: dict[tuple[int, int], Credit] = defaultdict(lambda: Credit(Decimal(0), Decimal(0)))
    if not conversions:
        return out
    window = dt.timedelta(days=window_days)
    start = min(c.occurred_at for c in conversions) - window
    end = max(c.occurred_at for c in conversions)
    clicks_of = touches({c.contact_id for c in conversions}, start, end)
    for conversion in conversions:
        clicks = [
            t
            for t in clicks_of.get(conversion.contact_id, [])
            if conversion.occurred_at - window <= t.at <= conversion.occurred_at
        ]
        for touch, weight in zip(
            clicks, weights(model, clicks, conversion.occurred_at), strict=True
        ):
            if weight:
                entry = out[(touch.campaign_id, conversion.unit_id)]
                entry.conversions += weight
                entry.revenue += conversion.amount * weight
    return out


def campaign_credit(
    campaign_id: int, conversions, model: str, window_days: int
) -> dict[int, Credit]:
    """One campaign's credit per unit id."""
    return {
        unit: c
        for (campaign, unit), c in credit(conversions, model, window_days).items()
        if campaign == campaign_id
    }
