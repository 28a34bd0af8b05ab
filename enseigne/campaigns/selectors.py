"""Scoped reads of campaigns, relays, rules and the send ledger."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from enseigne.campaigns.models import (
    Budget,
    Campaign,
    PressureRule,
    Recipient,
    Relay,
    SendingPolicy,
)
from enseigne.lib.ids import parse_uuid
from enseigne.lib.sendwindow import SendWindow
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.network.selectors import root_of

# National campaigns show up in units' calendars once HQ has scheduled them.
ANNOUNCED = (
    Campaign.Status.SCHEDULED,
    Campaign.Status.PREPARING,
    Campaign.Status.SENDING,
    Campaign.Status.PAUSED,
    Campaign.Status.FINISHED,
)


def campaigns_for_user(user: User) -> QuerySet[Campaign]:
    """Campaigns owned inside the user's scope, plus national ones relayed by their units."""
    paths = access_for(user).paths
    visible = path_filter(paths, "owner_path") | Q(
        kind=Campaign.Kind.NATIONAL,
        status__in=ANNOUNCED,
        pk__in=Relay.objects.filter(path_filter(paths)).values("campaign_id"),
    )
    return Campaign.objects.filter(visible).select_related("owner", "template")


def get_campaign_for_user(user: User, public_id, capability: str | None = None) -> Campaign:
    """The campaign, 404 when missing or out of scope; 403 when the user may only read it."""
    campaign = (
        campaigns_for_user(user).filter(public_id=public_id).first()
        if parse_uuid(public_id)
        else None
    )
    if campaign is None:
        raise Http404("No such campaign.")
    if capability and not access_for(user).can(capability, campaign.owner):
        raise PermissionDenied
    return campaign


def approval_inbox(user: User) -> QuerySet[Campaign]:
    """Submitted campaigns the user may decide on (HQ: all; a region: its units')."""
    access = access_for(user)
    paths = access.paths_with(Capability.APPROVE_CAMPAIGNS)
    candidates = Campaign.objects.filter(
        path_filter(paths, "owner_path"), status=Campaign.Status.SUBMITTED
    )
    allowed = [
        c.pk
        # A rule for tagged units reads the owner's tags: prefetched, not one query per campaign.
        for c in candidates.select_related("owner").prefetch_related("owner__tags")
        if access.can(Capability.APPROVE_CAMPAIGNS, c.owner)
    ]
    return Campaign.objects.filter(pk__in=allowed).select_related(
        "owner", "template", "submitted_by"
    )


def relays_for_user(user: User) -> QuerySet[Relay]:
    return Relay.objects.filter(path_filter(access_for(user).paths)).select_related(
        "campaign", "unit"
    )


def relay_for_unit(campaign: Campaign, unit: OrgNode) -> Relay | None:
    return (
        Relay.objects.filter(campaign=campaign, unit=unit).select_related("local_version").first()
    )


def policy_for(node: OrgNode) -> SendingPolicy:
    root = root_of(node)
    policy, _ = SendingPolicy.objects.get_or_create(node=root)
    return policy


def sms_window(policy: SendingPolicy) -> SendWindow:
    return SendWindow(
        days=tuple(policy.sms_days),
        start=policy.sms_start,
        end=policy.sms_end,
        holiday_country=policy.sms_holiday_country,
    )


def pressure_rules(node: OrgNode, channel: str) -> list[PressureRule]:
    root = root_of(node)
    return list(PressureRule.objects.filter(node=root, channel=channel))


def target_for_user(user: User, targets: list):
    """Of a campaign's target units, the first one ``user`` sees (a store: its own), else
    the first one (None when there is none)."""
    access = access_for(user)
    return next((t for t in targets if access.sees(t.unit.path)), targets[0] if targets else None)


def budget_for(unit: OrgNode, day) -> Budget | None:
    return Budget.objects.filter(unit=unit, starts_on__lte=day, ends_on__gte=day).first()


def progress(campaign: Campaign) -> dict:
    """Ledger counts for the progress bar: sent, pending, failed, not sent, unknown."""
    counts = dict(
        Recipient.objects.filter(campaign=campaign).values_list("status").annotate(n=Count("id"))
    )
    done = sum(counts.get(s, 0) for s in ("sent", "failed", "skipped", "ambiguous"))
    total = done + counts.get("pending", 0)
    sent = counts.get("sent", 0)
    not_sent = counts.get("skipped", 0) + counts.get("ambiguous", 0)
    return {
        "total": total,
        "sent": sent,
        "pending": counts.get("pending", 0),
        "failed": counts.get("failed", 0),
        "skipped": counts.get("skipped", 0),
        "ambiguous": counts.get("ambiguous", 0),
        "done": done,
        # Rows settled either way, never rounded up to 100 % while one is pending. The bar
        # shows its parts (sent, not sent, failed): a campaign whose first rows are refused
        # by a gate is not "32 %" of anything sent.
        "percent": _floor_percent(done, total),
        "sent_percent": _floor_percent(sent, total),
        "failed_percent": _floor_percent(counts.get("failed", 0), total),
        "not_sent_percent": _floor_percent(not_sent, total),
        **feedback_summary(campaign, sent),
    }


def _floor_percent(part: int, total: int) -> int:
    return 100 * part // total if total else 0


def feedback_summary(campaign: Campaign, sent: int) -> dict:
    """Bounces and complaints reported after hand-off, and the complaint rate against the limits."""
    feedback = feedback_counts(campaign)
    complaints = feedback.get("complaint", 0)
    return {
        "hard": feedback.get("hard", 0),
        "soft": feedback.get("soft", 0),
        "complaints": complaints,
        "complaint_rate": round(100 * complaints / sent, 2) if sent else 0.0,
        "complaint_warning": complaint_rate_reaches(complaints, sent, settings.COMPLAINT_WARN_RATE),
        "complaint_limit": round(100 * settings.COMPLAINT_PAUSE_RATE, 2),
    }


def complaint_rate_reaches(complaints: int, sent: int, limit: float) -> bool:
    """Whether complaints ÷ sent reached ``limit``; never below ``COMPLAINT_MIN_SENT`` messages
    (one complaint in 50 is not 2 % of anything)."""
    return complaints > 0 and sent >= settings.COMPLAINT_MIN_SENT and complaints / sent >= limit


def complaint_counts(campaign_id: int) -> tuple[int, int]:
    """(complaints, messages sent) for one campaign."""
    rows = Recipient.objects.filter(campaign_id=campaign_id)
    return (
        rows.filter(feedback="complaint").count(),
        rows.filter(status=Recipient.Status.SENT).count(),
    )


def feedback_counts(campaign: Campaign) -> dict[str, int]:
    """Bounces and complaints reported after hand-off, by kind."""
    return dict(
        Recipient.objects.filter(campaign=campaign)
        .exclude(feedback="")
        .values_list("feedback")
        .annotate(n=Count("id"))
    )


def skip_reasons(campaign: Campaign) -> list[tuple[str, int]]:
    return list(
        Recipient.objects.filter(campaign=campaign)
        .exclude(reason="")
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by("-n")
    )


def calendar_campaigns(user: User, start, end) -> QuerySet[Campaign]:
    # A journey's send steps are not campaigns of a day: the calendar shows the journey
    # itself, ongoing (journeys' own events).
    return (
        campaigns_for_user(user)
        .exclude(status__in=(Campaign.Status.CANCELLED, Campaign.Status.REJECTED))
        .exclude(kind=Campaign.Kind.JOURNEY)
        .filter(
            Q(send_at__gte=start, send_at__lt=end)
            | Q(send_at__isnull=True, created_at__gte=start, created_at__lt=end)
        )
    )


def budgets_for_user(user: User) -> QuerySet[Budget]:
    return (
        Budget.objects.filter(path_filter(access_for(user).paths))
        .select_related("unit")
        .order_by("unit__name", "-starts_on")
    )


def can_manage_rules(user: User, node: OrgNode) -> bool:
    return access_for(user).can(Capability.MANAGE_SENDING_RULES, root_of(node))
