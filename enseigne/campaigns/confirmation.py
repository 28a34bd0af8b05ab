"""What a send will do, read before the user confirms it.

*Send now* and *Schedule* used to act on one click: a national campaign once left with 12,036
e-mails days before the stores' relay deadline, five stores of eight undecided, and nothing
said that those stores send head office's version. The summary puts together the audience
preview (who, per store, who not and why, cost), the date it leaves and, for a national
campaign, each store's answer, so the confirmation page only has to show it. The audience part
is the figures the worker keeps (campaigns/figures.py), shown with their age.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.brand.models import LocalVersion
from enseigne.campaigns import audience
from enseigne.campaigns.models import Campaign, Relay
from enseigne.network.models import OrgNode


@dataclass
class Relayed:
    unit: OrgNode
    local_version: LocalVersion | None  # None: head office's version, unchanged
    recipients: int


@dataclass
class SendSummary:
    campaign: Campaign
    when: dt.datetime
    now: bool  # leaves at once (Send now) rather than at a chosen date
    # The kept audience figures (campaigns/figures.py; the page says their age), or an empty
    # preview while the worker has not counted them yet (``counted`` is then False).
    preview: audience.Preview
    counted: bool = True
    relayed: list[Relayed] = field(default_factory=list)
    opted_out: list[OrgNode] = field(default_factory=list)
    # Stores that have not answered (or were never asked): they send head office's version.
    undecided: list[audience.UnitCount] = field(default_factory=list)

    @property
    def deadline_ahead(self) -> dt.datetime | None:
        """The relay deadline, when the campaign would leave before it (stores lose their say)."""
        deadline = self.campaign.relay_deadline
        if self.campaign.is_national and deadline and self.when < deadline:
            return deadline
        return None

    @property
    def undecided_recipients(self) -> int:
        return sum(line.recipients for line in self.undecided)


def send_summary(
    campaign: Campaign, when: dt.datetime | None = None, *, preview: audience.Preview | None
) -> SendSummary:
    """The summary of sending ``campaign`` at ``when`` (None: now), from the kept audience
    figures ``preview`` (None: not counted yet). It counts nothing itself: a national count
    in the request made this page take 40 s on a busy machine.

    Raises ``ValidationError`` for a campaign that cannot be sent or scheduled in its state,
    with the same words as the refusal the launch would give."""
    if campaign.status not in audience.PLANNED:
        raise ValidationError(
            _("This campaign is %(status)s; it cannot be sent.")
            % {"status": campaign.get_status_display().lower()}
        )
    leaves = when or timezone.now()
    summary = SendSummary(
        campaign=campaign,
        when=leaves,
        now=when is None,
        preview=preview or audience.Preview(when=leaves),
        counted=preview is not None,
    )
    if not campaign.is_national:
        return summary
    relays = {
        r.unit_id: r
        for r in Relay.objects.filter(campaign=campaign).select_related("unit", "local_version")
    }
    # The preview's units are the ones that send (opted-out stores are not among them).
    for line in summary.preview.per_unit:
        relay = relays.get(line.unit.pk)
        if relay is not None and relay.status == Relay.Status.RELAYED:
            summary.relayed.append(Relayed(line.unit, relay.local_version, line.recipients))
        else:
            summary.undecided.append(line)
    summary.opted_out = sorted(
        (r.unit for r in relays.values() if r.status == Relay.Status.OPTED_OUT),
        key=lambda unit: unit.path,
    )
    return summary
