"""What sending costs and who pays it: the rule, stated once.

Prices are the network's ``SendingPolicy``: an e-mail costs ``email_thousand_cost`` per
thousand, an SMS ``sms_segment_cost`` per segment, and every SMS is billed at least one
segment. On a national campaign HQ pays ``national_cofunding_percent`` of what its relays
cost; the unit pays the rest, and only that counts against the unit's budget.

Read by the audience preview (the cost shown, HQ's part), the budget check of the preview
and the freeze, the budget page (``audience.spent``) and the rollups (``analytics``).
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Value
from django.db.models.functions import Greatest

from enseigne.campaigns.models import SendingPolicy
from enseigne.contacts.models import Channel

# The segments a ledger row (``Recipient.segments``) is billed, as SQL: ``billed_segments``.
BILLED_SEGMENTS = Greatest("segments", Value(1))


def billed_segments(segments: int | None) -> int:
    """The segments one SMS is billed: its own count, at least one."""
    return max(segments or 0, 1)


def cost(policy: SendingPolicy, *, channel: str, messages: int, segments: int = 0) -> Decimal:
    """What ``messages`` messages cost on ``channel``; ``segments`` is the segments billed
    for all of them (SMS only, see ``billed_segments``)."""
    if channel == Channel.EMAIL:
        return policy.email_thousand_cost * messages / 1000
    return policy.sms_segment_cost * segments


def hq_percent(policy: SendingPolicy, *, national: bool) -> int:
    """The part of a campaign's cost that HQ pays, in percent."""
    return policy.national_cofunding_percent if national else 0


def hq_share(amount: Decimal, percent: int) -> Decimal:
    return amount * percent / 100


def unit_share(amount: Decimal, percent: int) -> Decimal:
    """What the unit pays of ``amount`` when HQ pays ``percent`` of it."""
    return amount - hq_share(amount, percent)


def paid_by_unit(
    policy: SendingPolicy, *, channel: str, messages: int, segments: int, national: bool
) -> Decimal:
    """The unit's part of what ``messages`` sent messages cost."""
    amount = cost(policy, channel=channel, messages=messages, segments=segments)
    return unit_share(amount, hq_percent(policy, national=national))
