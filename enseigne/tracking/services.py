"""Writes behind the public endpoints. They act as the system (no user), found by a signed token."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import (
    VALID_CONSENT,
    Channel,
    ConsentEvent,
    ConsentStatus,
    Contact,
    Suppression,
)
from enseigne.contacts.services import (
    consent_record,
    consent_withdraw_all,
    open_tracking_record,
    suppress_brand_wide,
)
from enseigne.delivery import bounces, events
from enseigne.delivery.messages import esp_row
from enseigne.delivery.models import Bounce, Event, Link
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.signing import unsign_id, unsign_ids
from enseigne.network.models import OrgNode
from enseigne.network.selectors import root_of


@dataclass(frozen=True)
class UnsubscribeTarget:
    recipient_id: int
    channel: str
    unit_name: str
    brand_name: str
    already: bool
    # The preference centre: (channel, subscribed) for each address the contact has, and
    # whether their own opens are recorded (None: no e-mail address).
    channels: tuple[tuple[str, bool], ...] = ()
    open_tracking: bool | None = None


def unsubscribe_target(token: str) -> UnsubscribeTarget | None:
    """What a token points at, or None for a forged, mangled or stale token."""
    recipient_id = unsign_id("unsubscribe", token)
    if recipient_id is None:
        return None
    with db_scope(ALL):
        row = (
            Recipient.objects.filter(pk=recipient_id)
            .select_related("unit", "contact")
            .only(
                "id",
                "channel",
                "unit__name",
                "unit__path",
                "contact__email_consent",
                "contact__sms_consent",
                "contact__email",
                "contact__phone",
                "contact__open_tracking",
            )
            .first()
        )
        if row is None:
            return None
        contact = row.contact
        already = contact is None or contact.consent_for(row.channel) not in VALID_CONSENT
        channels = (
            ()
            if contact is None
            else tuple(
                (channel, contact.consent_for(channel) in VALID_CONSENT)
                for channel, _address in contact.addresses()
            )
        )
        tracking = None if contact is None or not contact.email else contact.open_tracking
        return UnsubscribeTarget(
            row.pk, row.channel, row.unit.name, root_of(row.unit).name, already, channels, tracking
        )


def _locked(recipient_id: int) -> tuple[Recipient | None, Contact | None]:
    """The ledger row (with its campaign) and its contact, locked until the transaction ends."""
    row = Recipient.objects.filter(pk=recipient_id).select_related("campaign").first()
    if row is None or row.contact_id is None:
        return row, None
    return row, Contact.objects.select_for_update().filter(pk=row.contact_id).first()


def unsubscribe(*, recipient_id: int, ip_address: str | None = None, user_agent: str = "") -> bool:
    """Withdraw the contact's consent for the channel in this unit (idempotent)."""
    with transaction.atomic(), db_scope(ALL):
        row, contact = _locked(recipient_id)
        if contact is None or contact.consent_for(row.channel) == ConsentStatus.WITHDRAWN:
            return False
        consent_record(
            actor=None,
            contact=contact,
            channel=row.channel,
            status=ConsentStatus.WITHDRAWN,
            source=ConsentEvent.Source.UNSUBSCRIBE,
            source_ref=f"campaign:{row.campaign.public_id}",
            ip_address=ip_address,
            user_agent=user_agent,
        )
        # In the same transaction: the campaign's unsubscribe count moves with the consent.
        events.write([events.of_recipient(row, Event.Kind.UNSUBSCRIBED, timezone.now())])
        return True


def preferences_save(
    *,
    recipient_id: int,
    keep: dict[str, bool],
    brand_wide: bool,
    open_tracking: bool | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> list[str]:
    """The preference centre: stop the channels not kept, for this shop or for the whole brand;
    accept or refuse that this shop records the person's own opens.

    Channels are only withdrawn here: subscribing again needs the shop's own consent
    collection (with its proof), not a box ticked on a page reached from an e-mail. Returns
    what changed (channels stopped, and ``open_tracking``).
    """
    stopped = []
    with transaction.atomic(), db_scope(ALL):
        row, contact = _locked(recipient_id)
        if contact is None:
            return stopped
        for channel, address in contact.addresses():
            if keep.get(channel, True):
                continue
            same = [contact]
            if brand_wide:
                field = "email" if channel == Channel.EMAIL else "phone"
                same = Contact.objects.select_for_update().filter(**{field: address})
                suppress_brand_wide(
                    channel=channel, address=address, reason=Suppression.Reason.UNSUBSCRIBE
                )
            if consent_withdraw_all(
                same,
                channel=channel,
                source=ConsentEvent.Source.UNSUBSCRIBE,
                source_ref=f"preferences:{row.campaign.public_id}",
                ip_address=ip_address,
                user_agent=user_agent,
            ):
                stopped.append(channel)
        if open_tracking is not None and open_tracking_record(
            contact=contact,
            granted=open_tracking,
            source=ConsentEvent.Source.FORM,
            source_ref=f"preferences:{row.campaign.public_id}",
            ip_address=ip_address,
            user_agent=user_agent,
        ):
            stopped.append("open_tracking")
        if row.channel in stopped:
            events.write([events.of_recipient(row, Event.Kind.UNSUBSCRIBED, timezone.now())])
    return stopped


# -- clicks and opens --------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkTarget:
    id: int
    campaign_id: int
    unit_id: int
    unit_path: str
    url: str


# A link never changes once made, and a unit's path only when HQ moves it: each web
# process reads them once. Plain dicts so the WSGI fast path can look without querying.
_LINKS: dict[int, LinkTarget] = {}
_UNIT_PATHS: dict[int, str] = {}
CACHE_SIZE = 50_000


def _remember(cache: dict, key: int, value) -> None:
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _link(link_id: int) -> LinkTarget | None:
    cached = _LINKS.get(link_id)
    if cached is not None:
        return cached
    with db_scope(ALL):
        link = (
            Link.objects.filter(pk=link_id)
            .only("campaign_id", "unit_id", "unit_path", "url")
            .first()
        )
    if link is None:
        return None
    target = LinkTarget(link.pk, link.campaign_id, link.unit_id, link.unit_path, link.url)
    _remember(_LINKS, link_id, target)
    return target


def known_link(link_id: int) -> LinkTarget | None:
    """The link if this process has read it already (no query)."""
    return _LINKS.get(link_id)


def known_unit_path(unit_id: int) -> str | None:
    return _UNIT_PATHS.get(unit_id)


def forget_links() -> None:
    """Empty this process's caches (tests reuse ids after a rollback)."""
    _LINKS.clear()
    _UNIT_PATHS.clear()


def click_target(token: str, *, cached_only: bool = False) -> tuple[int, LinkTarget] | None:
    """(ledger row, link) for a genuine click token, or None: a forged or altered one goes nowhere.
    ``cached_only``: None too when this process has not read the link yet (no query)."""
    ids = unsign_ids("click", token, 2)
    if ids is None:
        return None
    recipient_id, link_id = ids
    link = known_link(link_id) if cached_only else _link(link_id)
    return None if link is None else (recipient_id, link)


def click(recipient_id: int, link: LinkTarget, *, machine: bool) -> None:
    events.record(
        events.row(
            occurred_at=timezone.now(),
            kind=Event.Kind.CLICKED,
            channel="email",
            campaign_id=link.campaign_id,
            unit_id=link.unit_id,
            unit_path=link.unit_path,
            recipient_id=recipient_id,
            link_id=link.id,
            machine=machine,
        )
    )


def open_target(token: str) -> tuple[int, int, int] | None:
    """(campaign, unit, ledger row or 0) for a genuine pixel token."""
    return unsign_ids("open", token, 3)  # type: ignore[return-value]


def _unit_path(unit_id: int) -> str | None:
    cached = _UNIT_PATHS.get(unit_id)
    if cached is not None:
        return cached
    with db_scope(ALL):
        node = OrgNode.objects.filter(pk=unit_id).only("path").first()
    if node is None:
        return None
    _remember(_UNIT_PATHS, unit_id, node.path)
    return node.path


def opened(campaign_id: int, unit_id: int, recipient_id: int, *, machine: bool) -> None:
    """An open, counted for the campaign and unit; per person only when the token names the row
    (the pipeline puts it there only for a contact who accepted per-person open tracking)."""
    unit_path = _unit_path(unit_id)
    if unit_path is None:
        return
    events.record(
        events.row(
            occurred_at=timezone.now(),
            kind=Event.Kind.OPENED,
            channel="email",
            campaign_id=campaign_id,
            unit_id=unit_id,
            unit_path=unit_path,
            recipient_id=recipient_id or None,
            machine=machine,
        )
    )


# -- ESP tracking events (anymail) ------------------------------------------------------------

# anymail's normalised event types → what the report is. Others (delivered, opened…) are
# for analytics, not for the suppression list.
_ESP_KINDS = {
    "bounced": Bounce.Kind.HARD,
    "deferred": Bounce.Kind.SOFT,
    "complained": Bounce.Kind.COMPLAINT,
    "autoresponded": Bounce.Kind.AUTO_REPLY,
}


def esp_event(event, esp_name: str) -> Bounce | None:
    """Act on one of anymail's tracking events (the webhook authenticated the ESP)."""
    row = esp_row(getattr(event, "metadata", None))
    kind = _ESP_KINDS.get(event.event_type)
    reason = getattr(event, "reject_reason", None)
    raw = getattr(event, "esp_event", None)
    raw_type = str(raw.get("Type", "")) if isinstance(raw, dict) else ""
    if event.event_type == "bounced" and (
        reason not in (None, "bounced", "invalid") or raw_type == "SoftBounce"
    ):
        kind = Bounce.Kind.SOFT  # blocked, filtered, timed out, mailbox full: the address is fine
    if event.event_type == "bounced" and kind is not None:
        kind = bounces.esp_kind(kind, str(getattr(event, "mta_response", "") or ""))
    if event.event_type == "rejected":
        kind = {
            "bounced": Bounce.Kind.HARD,
            "invalid": Bounce.Kind.HARD,
            "spam": Bounce.Kind.COMPLAINT,
        }.get(reason)
    if event.event_type == "unsubscribed" and row is not None:
        unsubscribe(recipient_id=row, user_agent=f"{esp_name} webhook")
        return None
    if kind is None:
        return None
    reference = str(getattr(event, "event_id", "") or "") or ":".join(
        str(x)
        for x in (
            event.event_type,
            getattr(event, "message_id", ""),
            event.recipient,
            event.timestamp,
        )
    )
    report = bounces.Report(
        kind=kind,
        recipient_id=row,
        status=str(reason or ""),
        diagnostic=str(
            getattr(event, "description", "") or getattr(event, "mta_response", "") or ""
        )[:300],
        address=event.recipient or "",
        reference=reference[:200],
    )
    return bounces.record(report, source=esp_name[:20], trusted_address=True)
