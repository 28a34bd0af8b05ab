"""Who a campaign reaches, who it does not and why: the preview and the frozen ledger.

Every candidate contact gets one reason, the first that applies, in this order: no
address, unusable number, no consent for the channel, suppressed, marketing pressure.
Budgets then cut the end of a unit's list when it cannot pay for all of it. The same
SQL classification feeds the preview and the INSERT … SELECT that freezes the audience
at launch, so what the user saw is what is sent (minus what changed in between, which
the hand-off checks again).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Case,
    CharField,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from enseigne.brand.models import LocalVersion
from enseigne.brand.previews import sms_preview
from enseigne.brand.sms import measure
from enseigne.campaigns.models import Campaign, Recipient, Relay, SendingPolicy
from enseigne.campaigns.selectors import budget_for, policy_for, pressure_rules, sms_window
from enseigne.contacts.models import VALID_CONSENT, Channel, Contact, Suppression
from enseigne.contacts.segments import SegmentCompiler
from enseigne.network.models import OrgNode

REASONS = {
    "no_address": _("no address for the channel"),
    "invalid_number": _("not a mobile number"),
    "no_consent": _("no consent for the channel"),
    "suppressed": _("unsubscribed, bounced or complained"),
    "pressure": _("marketing pressure cap reached"),
    "over_budget": _("over the unit's budget"),
    "opted_out": _("the unit opted out"),
}
# At hand-off the pipeline may also skip or fail a row for these.
HANDOFF_REASONS = {
    **REASONS,
    "contact_erased": _("contact erased"),
    "hard_bounce": _("address rejected"),
    "refused": _("refused by the receiving server"),
    "gave_up": _("still refused after every retry"),
    "connection_lost": _("connection lost after sending (it may have arrived)"),
    "cancelled": _("campaign cancelled"),
    "render_error": _("the message could not be personalised for this contact"),
}
# French mobile numbers; other countries' numbers are assumed able to receive SMS.
FRENCH_MOBILE = ("+336", "+337")
PLANNED = (Campaign.Status.APPROVED, Campaign.Status.SCHEDULED)
LAUNCHED = (Campaign.Status.SENDING, Campaign.Status.PAUSED)


class Sha256Hex(Func):
    """``enseigne_sha256(text)``: a SQL function on PostgreSQL, a Python one on SQLite.

    Wrapped in a scalar sub-select on purpose. Under row-level security PostgreSQL only
    uses an index for a condition it can evaluate before the policy, which means a
    leakproof one, and ``encode``/``convert_to`` are not leakproof: ``value_hash =
    enseigne_sha256(…)`` then scanned the whole suppression list once per contact. The
    sub-select is computed first, as a parameter, and the suppression index is used."""

    function = "enseigne_sha256"
    template = "(SELECT %(function)s(%(expressions)s))"
    output_field = CharField()


@dataclass
class Target:
    unit: OrgNode
    local_version: LocalVersion | None
    hq_share_percent: int = 0


@dataclass
class Preview:
    when: dt.datetime
    candidates: int = 0
    recipients: int = 0
    exclusions: dict[str, int] = field(default_factory=dict)
    pressure_sources: list[tuple[str, int]] = field(default_factory=list)
    deferred: list[dict] = field(default_factory=list)
    budgets: list[dict] = field(default_factory=list)
    cost: Decimal = Decimal("0")
    hq_cost: Decimal = Decimal("0")
    units: int = 0
    opted_out_units: int = 0

    @property
    def excluded(self) -> int:
        return sum(self.exclusions.values())

    def exclusion_rows(self) -> list[tuple[str, str, int]]:
        return [(key, str(REASONS[key]), n) for key, n in self.exclusions.items() if n]


def targets(campaign: Campaign) -> list[Target]:
    """The units a campaign sends from, each with the content version it uses."""
    if not campaign.is_national:
        return [Target(campaign.owner, campaign.local_version)]
    policy = policy_for(campaign.owner)
    base = campaign.target_node or campaign.owner
    units = OrgNode.objects.filter(path__startswith=base.path, kind=OrgNode.Kind.UNIT).select_related("profile")
    if campaign.target_tag_id:
        units = units.filter(tags=campaign.target_tag_id)
    relays = {r.unit_id: r for r in Relay.objects.filter(campaign=campaign).select_related("local_version")}
    chosen = []
    for unit in units.order_by("path"):
        relay = relays.get(unit.pk)
        if relay and relay.status == Relay.Status.OPTED_OUT:
            continue
        local = relay.local_version if relay and relay.status == Relay.Status.RELAYED else None
        chosen.append(Target(unit, local, policy.national_cofunding_percent))
    return chosen


def opted_out_units(campaign: Campaign) -> int:
    if not campaign.is_national:
        return 0
    return Relay.objects.filter(campaign=campaign, status=Relay.Status.OPTED_OUT).count()


def audience_condition(campaign: Campaign, units: list[OrgNode]) -> Q:
    """"This contact is in the campaign's audience", before consent and the other checks."""
    condition = Q(unit__in=[u.pk for u in units])
    rules = campaign.segment.rules if campaign.segment_id else campaign.audience_rules
    if rules and rules.get("rules"):
        condition &= SegmentCompiler(campaign.created_by).compile(rules)
    return condition


def candidates(campaign: Campaign, units: list[OrgNode]) -> QuerySet[Contact]:
    return Contact.objects.filter(audience_condition(campaign, units))


def _has_priority(other: Campaign, campaign: Campaign, priority: str) -> bool:
    def scheduled_key(c: Campaign):
        return (c.scheduled_at or c.created_at, c.pk)

    if priority == SendingPolicy.Priority.NATIONAL_FIRST and other.kind != campaign.kind:
        return other.is_national
    if priority == SendingPolicy.Priority.NATIONAL_FIRST:
        return (other.send_at, *scheduled_key(other)) < (campaign.send_at or timezone.now(), *scheduled_key(campaign))
    return scheduled_key(other) < scheduled_key(campaign)


def competitors(campaign: Campaign, when: dt.datetime, days: int) -> list[Campaign]:
    """Planned or running campaigns on the channel, near ``when``, that come before this one."""
    window = dt.timedelta(days=days)
    policy = policy_for(campaign.owner)
    others = Campaign.objects.filter(
        channel=campaign.channel, status__in=(*PLANNED, *LAUNCHED), send_at__gt=when - window,
        send_at__lt=when + window, is_transactional=False,
    ).exclude(pk=campaign.pk).select_related("owner", "segment", "target_node", "created_by")
    return [o for o in others if _has_priority(o, campaign, policy.pressure_priority)]


def _competitor_reaches(other: Campaign) -> Q:
    """An SQL test "this contact is in ``other``'s audience" (ledger if launched, else rules)."""
    if other.status in LAUNCHED:
        return Q(Exists(Recipient.objects.filter(campaign=other, contact=OuterRef("pk"),
                                                 status=Recipient.Status.PENDING)))
    # Not launched: its rules, tested on the contact row itself (an EXISTS over the contacts
    # table again cost a second lookup per contact).
    units = [t.unit for t in targets(other)]
    return audience_condition(other, units) & Q(**{f"{other.channel}_consent__in": VALID_CONSENT})


def _pressure(campaign: Campaign, when: dt.datetime) -> tuple[dict, Q | None, list[tuple[Campaign, Q]]]:
    """Per-cap loads to alias on the contacts, the "over a cap" test, and the planned
    campaigns counted (each with its "reaches this contact" test)."""
    rules = pressure_rules(campaign.owner, campaign.channel)
    if not rules:
        return {}, None, []
    # Competitors are found once, for the longest window, and each cap keeps those in its own.
    nearby = [(other, _competitor_reaches(other))
              for other in competitors(campaign, when, max(r.window_days for r in rules))]
    loads: dict = {}
    over: Q | None = None
    counted: dict[int, tuple[Campaign, Q]] = {}
    for index, rule in enumerate(rules):
        window = dt.timedelta(days=rule.window_days)
        total = Coalesce(Subquery(
            Recipient.objects.filter(contact=OuterRef("pk"), channel=campaign.channel, status=Recipient.Status.SENT,
                                     sent_at__gt=when - window).exclude(campaign=campaign)
            .order_by().values("contact").annotate(n=Count("id")).values("n")[:1],
            output_field=IntegerField()), 0)
        for other, reaches in nearby:
            if when - window < other.send_at < when + window:
                counted[other.pk] = (other, reaches)
                total = total + Case(When(reaches, then=1), default=0, output_field=IntegerField())
        name = f"pressure_load_{index}"
        loads[name] = total
        condition = Q(**{f"{name}__gte": rule.max_messages})
        over = condition if over is None else over | condition
    return loads, over, list(counted.values())


def classified(campaign: Campaign, contacts: QuerySet[Contact],
               when: dt.datetime) -> tuple[QuerySet[Contact], list[tuple[Campaign, Q]]]:
    """``contacts`` annotated with ``reason`` ('' = will receive) and the competitors used."""
    channel = campaign.channel
    address = "email" if channel == Channel.EMAIL else "phone"
    whens = [When(Q(**{f"{address}__isnull": True}) | Q(**{address: ""}), then=Value("no_address"))]
    if channel == Channel.SMS:
        foreign = ~Q(phone__startswith="+33")
        whens.append(When(~(foreign | Q(phone__startswith=FRENCH_MOBILE[0]) | Q(phone__startswith=FRENCH_MOBILE[1])),
                          then=Value("invalid_number")))
    if not campaign.is_transactional:
        whens.append(When(~Q(**{f"{channel}_consent__in": VALID_CONSENT}), then=Value("no_consent")))
    hashed = Sha256Hex(Concat(Value(f"{address}:"), F(address), output_field=CharField()))
    whens.append(When(Exists(Suppression.objects.filter(
        Q(unit_path="") | Q(unit_path=OuterRef("unit_path")), channel=channel, value_hash=OuterRef("address_hash"),
    )), then=Value("suppressed")))
    used: list[tuple[Campaign, Q]] = []
    loads: dict = {}
    if not campaign.is_transactional:
        loads, over, used = _pressure(campaign, when)
        if over is not None:
            whens.append(When(over, then=Value("pressure")))
    # alias(), not annotate(): the loads are computed inside the CASE, only for contacts
    # that passed the cheaper tests, and never selected on their own.
    annotated = contacts.alias(address_hash=hashed, **loads).annotate(
        reason=Case(*whens, default=Value(""), output_field=CharField()))
    return annotated, used


def unit_cost(campaign: Campaign, target: Target, policy: SendingPolicy) -> tuple[Decimal, int]:
    """(cost of one message for this unit, SMS segments per message)."""
    if campaign.channel == Channel.EMAIL:
        return policy.email_thousand_cost / 1000, 0
    version = campaign.template.current
    values = target.local_version.values if target.local_version else {}
    segments = measure(sms_preview(version, values, target.unit)).segments if version else 1
    return policy.sms_segment_cost * segments, segments


def spent(unit: OrgNode, start: dt.date, end: dt.date, policy: SendingPolicy) -> Decimal:
    """What the unit has paid for sent messages in the period (HQ's share of relays excluded)."""
    rows = (Recipient.objects.filter(unit=unit, status=Recipient.Status.SENT, sent_at__date__gte=start,
                                     sent_at__date__lte=end)
            .values("channel", "campaign__kind").annotate(n=Count("id"), segments=Sum("segments")))
    total = Decimal("0")
    for row in rows:
        cost = (policy.email_thousand_cost / 1000 * row["n"] if row["channel"] == Channel.EMAIL
                else policy.sms_segment_cost * (row["segments"] or 0))
        if row["campaign__kind"] == Campaign.Kind.NATIONAL:
            cost = cost * (100 - policy.national_cofunding_percent) / 100
        total += cost
    return total


def preview(campaign: Campaign, when: dt.datetime | None = None) -> Preview:
    when = when or campaign.send_at or timezone.now()
    result = Preview(when=when, opted_out_units=opted_out_units(campaign))
    chosen = targets(campaign)
    result.units = len(chosen)
    if not chosen:
        return result
    policy = policy_for(campaign.owner)
    contacts, used = classified(campaign, candidates(campaign, [t.unit for t in chosen]), when)
    per_unit: dict[int, dict[str, int]] = {}
    for row in contacts.order_by().values("unit_id", "reason").annotate(n=Count("id")):
        per_unit.setdefault(row["unit_id"], {})[row["reason"]] = row["n"]
    exclusions = dict.fromkeys(REASONS, 0)
    window = sms_window(policy)
    for target in chosen:
        counts = per_unit.get(target.unit.pk, {})
        result.candidates += sum(counts.values())
        for reason, n in counts.items():
            if reason:
                exclusions[reason] += n
        sendable = counts.get("", 0)
        if not sendable:
            continue
        each, _segments = unit_cost(campaign, target, policy)
        affordable, budget = _budget(campaign, target, policy, when, each, sendable)
        if budget is not None:
            result.budgets.append(budget)
        exclusions["over_budget"] += sendable - affordable
        result.recipients += affordable
        cost = each * affordable
        hq = cost * target.hq_share_percent / 100
        result.cost += cost
        result.hq_cost += hq
        if campaign.channel == Channel.SMS and not campaign.is_transactional:
            tz = _time_zone(target.unit)
            if not window.allows(when, tz):
                result.deferred.append({"unit": target.unit, "count": affordable,
                                        "until": window.next_allowed(when, tz)})
    result.exclusions = {k: v for k, v in exclusions.items() if v}
    if exclusions["pressure"]:
        result.pressure_sources = _pressure_sources(campaign, contacts, used, when)
    return result


def _budget(campaign, target, policy, when, each, sendable) -> tuple[int, dict | None]:
    """How many of ``sendable`` messages the unit can pay for, and its budget line (if any)."""
    budget = budget_for(target.unit, when.date())
    if budget is None or each == 0:
        return sendable, None
    unit_each = each * (100 - target.hq_share_percent) / 100
    remaining = budget.amount - spent(target.unit, budget.starts_on, budget.ends_on, policy)
    needed = unit_each * sendable
    over = needed > remaining
    line = {"unit": target.unit, "budget": budget.amount, "remaining": remaining,
            "needed": needed.quantize(Decimal("0.01")), "over": over}
    if not over or campaign.budget_override:
        return sendable, line
    return (max(0, int(remaining / unit_each)) if unit_each else sendable), line


def _pressure_sources(campaign, contacts, used, when) -> list[tuple[str, int]]:
    lost = contacts.filter(reason="pressure").values("pk")
    longest = max(r.window_days for r in pressure_rules(campaign.owner, campaign.channel))
    sources = list(
        Recipient.objects.filter(contact__in=lost, channel=campaign.channel, status=Recipient.Status.SENT,
                                 sent_at__gt=when - dt.timedelta(days=longest))
        .exclude(campaign=campaign).values_list("campaign__name").annotate(n=Count("contact", distinct=True))
    )
    for other, reaches in used:
        n = contacts.filter(reason="pressure").filter(reaches).count()
        if n:
            sources.append((other.name, n))
    return sorted(sources, key=lambda s: -s[1])


def _time_zone(unit: OrgNode) -> str:
    profile = getattr(unit, "profile", None)
    return profile.time_zone if profile and profile.time_zone else "Europe/Paris"


def freeze(campaign: Campaign, when: dt.datetime) -> int:
    """Write one ledger row per candidate: pending, or skipped with its reason. Idempotent."""
    chosen = targets(campaign)
    if not chosen:
        return 0
    policy = policy_for(campaign.owner)
    contacts, _used = classified(campaign, candidates(campaign, [t.unit for t in chosen]), when)
    select = contacts.order_by().values("id", "unit_id", "unit_path", "reason")
    sql, params = select.query.sql_with_params()
    table = Recipient._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (campaign_id, contact_id, unit_id, unit_path, channel, status, reason, detail, "  # noqa: S608
            "lease_owner, attempts, ambiguous_count, segments, feedback) "
            f"SELECT %s, sub.id, sub.unit_id, sub.unit_path, %s, "
            "CASE WHEN sub.reason = '' THEN 'pending' ELSE 'skipped' END, sub.reason, '', '', 0, 0, 0, '' "
            f"FROM ({sql}) sub WHERE true ON CONFLICT DO NOTHING",
            [campaign.pk, campaign.channel, *params],
        )
    window = sms_window(policy)
    for target in chosen:
        rows = Recipient.objects.filter(campaign=campaign, unit=target.unit, status=Recipient.Status.PENDING)
        each, segments = unit_cost(campaign, target, policy)
        if segments:
            rows.update(segments=segments)
        sendable = rows.count()
        affordable = _budget(campaign, target, policy, when, each, sendable)[0] if sendable else 0
        if affordable < sendable:
            cut = list(rows.order_by("-id").values_list("id", flat=True)[: sendable - affordable])
            Recipient.objects.filter(pk__in=cut).update(status=Recipient.Status.SKIPPED, reason="over_budget")
        if campaign.channel == Channel.SMS and not campaign.is_transactional:
            tz = _time_zone(target.unit)
            if not window.allows(when, tz):
                rows.update(not_before=window.next_allowed(when, tz))
    return Recipient.objects.filter(campaign=campaign).count()
