"""Scoped reads behind the campaign report and the dashboards.

Every figure comes from the rollups (``DailyStat``, ``UnitDay``) filtered by the acting
user's org paths; a campaign report adds the raw events not rolled up yet. Network and
size-group references are aggregates over every unit (rates and medians, never another
unit's rows or contacts).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncWeek
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from enseigne.analytics import by_persona, rollups
from enseigne.analytics.attribution import campaign_credit, credit
from enseigne.analytics.models import DailyStat, UnitDay
from enseigne.analytics.rollups import COUNTER_FIELDS, Counters
from enseigne.campaigns.audience import spent as budget_spent
from enseigne.campaigns.models import AttributionModel, Budget, Campaign, Recipient, Relay
from enseigne.campaigns.selectors import policy_for
from enseigne.commerce.selectors import StoreSales, store_sales
from enseigne.contacts.models import Channel
from enseigne.delivery.models import Event, Link
from enseigne.lib.ids import parse_uuid
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.lib.stats import Rate, compare, median, size_group, size_group_label, sparkline
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.personas.models import Persona
from enseigne.tracking.models import Conversion

PERIODS = (30, 90, 365)


def _counters(row: dict) -> Counters:
    return Counters(**{name: row[name] or 0 for name in COUNTER_FIELDS})


SUMS = {name: Sum(name) for name in COUNTER_FIELDS}


# -- KPIs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    numerator: str  # the counter the sparkline follows
    channel: str = ""  # '' = both channels
    higher_is_better: bool = True
    is_rate: bool = True


KPIS = (
    Kpi("email_click_rate", _("E-mail click rate"), "clickers", Channel.EMAIL),
    Kpi("sms_click_rate", _("SMS click rate"), "clickers", Channel.SMS),
    Kpi("unsubscribe_rate", _("Unsubscribe rate"), "unsubscribed", higher_is_better=False),
    Kpi("sms_stop_rate", _("SMS STOP rate"), "unsubscribed", Channel.SMS, higher_is_better=False),
    Kpi("conversion_rate", _("Rate of sales credited to campaigns"), "conversions"),
    Kpi("revenue", _("Revenue credited to campaigns"), "revenue", is_rate=False),
    Kpi("roi", _("ROI"), "revenue", is_rate=False),
    Kpi("sent", _("Messages sent"), "sent", is_rate=False),
)
KPI_BY_KEY = {k.key: k for k in KPIS}


@dataclass
class UnitFigures:
    """One unit's (or one group's) counters per channel over a period."""

    email: Counters = field(default_factory=Counters)
    sms: Counters = field(default_factory=Counters)

    @property
    def total(self) -> Counters:
        total = Counters()
        total.add(self.email)
        total.add(self.sms)
        return total

    def add(self, other: UnitFigures) -> None:
        self.email.add(other.email)
        self.sms.add(other.sms)

    def of(self, channel: str) -> Counters:
        """One channel's counters, or both together for ''."""
        return (
            self.sms
            if channel == Channel.SMS
            else self.email
            if channel == Channel.EMAIL
            else self.total
        )

    def add_channel(self, channel: str, counters: Counters) -> None:
        (self.sms if channel == Channel.SMS else self.email).add(counters)

    @staticmethod
    def delivered(c: Counters) -> int:
        # ESPs that report deliveries give ``delivered`` events; otherwise sent minus bounced.
        return c.delivered or max(0, c.sent - c.bounced)

    def _both(self, name: str):
        # One counter of both channels, without building the total's Counters: the dashboards
        # ask 8 KPIs of every unit twice over (thousands of calls a page).
        return getattr(self.email, name) + getattr(self.sms, name)

    def rate(self, key: str) -> Rate | None:
        if key == "email_click_rate":
            return Rate(self.email.clickers, self.delivered(self.email))
        if key == "sms_click_rate":
            return Rate(self.sms.clickers, self.delivered(self.sms))
        if key == "unsubscribe_rate":
            return Rate(
                self._both("unsubscribed"), self.delivered(self.email) + self.delivered(self.sms)
            )
        if key == "sms_stop_rate":
            return Rate(self.sms.unsubscribed, self.delivered(self.sms))
        if key == "conversion_rate":
            return Rate(
                self._both("conversions"), self.delivered(self.email) + self.delivered(self.sms)
            )
        return None

    def value(self, key: str) -> float | None:
        rate = self.rate(key)
        if rate is not None:
            return rate.value
        if key == "revenue":
            return float(self._both("revenue"))
        if key == "sent":
            return float(self._both("sent"))
        if key == "roi":
            return roi(self._both("revenue"), self._both("cost"))
        raise KeyError(key)


def roi(revenue: Decimal, cost: Decimal) -> float | None:
    """(revenue − cost) ÷ cost; None when nothing was spent."""
    return float((revenue - cost) / cost) if cost else None


def _bases() -> dict[int, UnitDay]:
    """Each unit's latest contact-base snapshot."""
    latest = UnitDay.objects.aggregate(day=Max("day"))["day"]
    return {row.unit_id: row for row in UnitDay.objects.filter(day=latest)}


@dataclass
class References:
    """The network's and each size group's pooled figures, and their per-unit medians."""

    network: UnitFigures
    groups: dict[int, UnitFigures]
    medians: dict[str, float | None]
    group_medians: dict[int, dict[str, float | None]]
    group_of: dict[int, int]
    # Per unit: its figures (sales only when credited to a campaign), its latest contact
    # base, and per ISO week its counters by channel (the sparklines). The caller shows only
    # the units in its reader's scope.
    by_unit: dict[int, UnitFigures] = field(default_factory=dict)
    bases: dict[int, UnitDay] = field(default_factory=dict)
    weekly: dict[int, dict[dt.date, UnitFigures]] = field(default_factory=dict)


def references(since: dt.date, *, weekly: bool = False) -> References:
    """Read for the whole network whoever asks, in one pass over the rollups: only rates,
    medians and the figures of the caller's own units leave through the dashboards."""
    by_unit: dict[int, UnitFigures] = defaultdict(UnitFigures)
    by_week: dict[int, dict[dt.date, UnitFigures]] = defaultdict(lambda: defaultdict(UnitFigures))
    with db_scope(ALL):
        rows = DailyStat.objects.filter(day__gte=since, campaign_id__isnull=False)
        rows = (
            rows.annotate(week=TruncWeek("day")).values("unit_id", "channel", "week")
            if weekly
            else rows.values("unit_id", "channel")
        )
        for row in rows.annotate(**SUMS).order_by():
            counters = _counters(row)
            if weekly:
                by_week[row["unit_id"]][_as_date(row["week"])].add_channel(row["channel"], counters)
            by_unit[row["unit_id"]].add_channel(row["channel"], counters)
        bases = _bases()
    units = set(bases) | set(by_unit)
    group_of = {u: size_group(bases[u].contacts if u in bases else 0) for u in units}
    network = UnitFigures()
    groups: dict[int, UnitFigures] = defaultdict(UnitFigures)
    members: dict[int, list[int]] = defaultdict(list)
    for unit in units:
        figures = by_unit.get(unit, UnitFigures())
        network.add(figures)
        groups[group_of[unit]].add(figures)
        members[group_of[unit]].append(unit)

    def medians_of(unit_ids):
        return {
            k.key: median(
                by_unit.get(u, UnitFigures()).value(k.key) for u in unit_ids if u in by_unit
            )
            for k in KPIS
        }

    return References(
        network=network,
        groups=dict(groups),
        medians=medians_of(units),
        group_medians={g: medians_of(m) for g, m in members.items()},
        group_of=group_of,
        by_unit=dict(by_unit),
        bases=bases,
        weekly=dict(by_week),
    )


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _judge(figures: UnitFigures, medians: dict[str, float | None]) -> dict[str, str]:
    """Each rate against the median unit's (a pooled rate would be the biggest units' rate)."""
    verdicts = {}
    for kpi in KPIS:
        rate = figures.rate(kpi.key)
        if rate is not None:
            verdicts[kpi.key] = compare(
                rate, medians.get(kpi.key), higher_is_better=kpi.higher_is_better
            )
    return verdicts


# -- network dashboard ---------------------------------------------------------------------------


def analytics_paths(user: User) -> tuple[str, ...]:
    paths = access_for(user).paths_with(Capability.VIEW_NETWORK_ANALYTICS)
    if not paths:
        raise PermissionDenied
    return paths


def network_dashboard(
    user: User,
    *,
    days: int = 90,
    kpi: str = "email_click_rate",
    descending: bool = True,
    today: dt.date | None = None,
) -> dict:
    """Units in the user's analytics scope ranked by ``kpi``, with strengths and weaknesses."""
    paths = analytics_paths(user)
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=days - 1)
    chosen = KPI_BY_KEY.get(kpi, KPIS[0])
    refs = references(since, weekly=True)
    units = list(
        OrgNode.objects.filter(path_filter(paths, "path"), kind=OrgNode.Kind.UNIT).order_by("name")
    )
    # The stores' own orders beside what campaigns were credited with (the units are the
    # user's: the query reads nothing outside them).
    sales = store_sales(units, rollups.local_midnight(since))
    scope = UnitFigures()
    rows = []
    for unit in units:
        figures = refs.by_unit.get(unit.pk, UnitFigures())
        scope.add(figures)
        group = refs.group_of.get(unit.pk, 0)
        base = refs.bases.get(unit.pk)
        rows.append(
            {
                "unit": unit,
                "figures": figures,
                "value": figures.value(chosen.key),
                "rate": figures.rate(chosen.key),
                "contacts": base.contacts if base else 0,
                "store_sales": sales.get(unit.pk, StoreSales()),
                "group": size_group_label(group),
                "vs_network": _judge(figures, refs.medians),
                "vs_similar": _judge(figures, refs.group_medians.get(group, {})),
                "spark": sparkline(
                    _sparkline_values(refs.weekly.get(unit.pk, {}), since, today, chosen)
                ),
            }
        )
    with_value = [r for r in rows if r["value"] is not None]
    with_value.sort(key=lambda r: r["value"], reverse=descending)
    ranked = with_value + [r for r in rows if r["value"] is None]
    for position, row in enumerate(ranked, 1):
        row["position"] = position
        row["flags"] = [(KPI_BY_KEY[k], v) for k, v in row["vs_network"].items() if v]
        row["similar_flags"] = [(KPI_BY_KEY[k], v) for k, v in row["vs_similar"].items() if v]
        row["roi"] = row["figures"].value("roi")
    scope_nodes = list(OrgNode.objects.filter(path__in=paths).order_by("path"))
    whole_network = any(node.depth == 1 for node in scope_nodes)
    return {
        "rows": ranked,
        # Whose stores these are: the network's, or (a region manager's) the nodes in scope.
        "whole_network": whole_network,
        "scope_name": ", ".join(node.name for node in scope_nodes),
        "scope_value": scope.value(chosen.key),
        "scope_total": scope.total,
        "scope_roi": scope.value("roi"),
        "scope_sales": sum((row["store_sales"] for row in ranked), StoreSales()),
        "kpi": chosen,
        "kpis": KPIS,
        "days": days,
        "since": since,
        "network": refs.network,
        "network_value": refs.network.value(chosen.key),
        "relays": relay_rates(paths, since),
        "refreshed_at": rollups.refreshed_at(),
    }


def _sparkline_values(
    weeks: dict[dt.date, UnitFigures], since: dt.date, today: dt.date, kpi: Kpi
) -> list[float]:
    """The KPI's numerator week by week, from the Monday of ``since`` to this week."""
    first = since - dt.timedelta(days=since.weekday())
    count = (today - first).days // 7 + 1
    values = [0.0] * count
    for monday, figures in weeks.items():
        index = (monday - first).days // 7
        if 0 <= index < count:
            values[index] += float(getattr(figures.of(kpi.channel), kpi.numerator) or 0)
    return values


def relay_rates(paths, since: dt.date) -> list[dict]:
    """National campaigns of the period: how many units in scope relayed, opted out, did not decide."""
    campaigns = Campaign.objects.filter(
        kind=Campaign.Kind.NATIONAL, send_at__date__gte=since
    ).order_by("-send_at")
    counts = defaultdict(dict)
    for campaign_id, status, n in (
        Relay.objects.filter(path_filter(paths), campaign__in=campaigns)
        .values_list("campaign_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[campaign_id][status] = n
    out = []
    for campaign in campaigns.filter(pk__in=list(counts)):
        c = counts[campaign.pk]
        total = sum(c.values())
        relayed = c.get(Relay.Status.RELAYED, 0)
        out.append(
            {
                "campaign": campaign,
                "relayed": relayed,
                "opted_out": c.get(Relay.Status.OPTED_OUT, 0),
                "pending": c.get(Relay.Status.PENDING, 0),
                "total": total,
                "rate": Rate(relayed, total),
            }
        )
    return out


# -- unit dashboard ------------------------------------------------------------------------------


def unit_dashboard(unit: OrgNode, *, days: int = 90, today: dt.date | None = None) -> dict:
    """One unit's results, its base, its budget, and how it compares (the caller checked scope)."""
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=days - 1)
    rows = (
        DailyStat.objects.filter(unit_path=unit.path, day__gte=since, campaign_id__isnull=False)
        .values("campaign_id", "channel")
        .annotate(**SUMS, first=Max("day"))
        .order_by("-first")
    )
    named = {
        pk: (name, public_id)
        for pk, name, public_id in Campaign.objects.filter(
            pk__in=[r["campaign_id"] for r in rows]
        ).values_list("pk", "name", "public_id")
    }
    policy = policy_for(unit)
    credits = credit(
        Conversion.objects.filter(unit=unit, occurred_at__gte=rollups.local_midnight(since)),
        policy.attribution_model,
        policy.attribution_window_days,
    )
    campaigns = []
    for row in rows:
        c = _counters(row)
        credited = credits.get((row["campaign_id"], unit.pk))
        revenue = credited.revenue.quantize(Decimal("0.01")) if credited else Decimal("0.00")
        name, public_id = named.get(row["campaign_id"], ("?", None))
        campaigns.append(
            {
                "name": name,
                "public_id": public_id,
                "channel": row["channel"],
                "c": c,
                "delivered": UnitFigures.delivered(c),
                "click_rate": Rate(c.clickers, UnitFigures.delivered(c)),
                "unsubscribe_rate": Rate(c.unsubscribed, UnitFigures.delivered(c)),
                "conversions": credited.conversions if credited else Decimal(0),
                "revenue": revenue,
                "roi": roi(revenue, c.cost),
            }
        )
    refs = references(since)
    figures = refs.by_unit.get(unit.pk, UnitFigures())
    group = refs.group_of.get(unit.pk, 0)
    similar = refs.group_medians.get(group, {})
    vs_network, vs_similar = _judge(figures, refs.medians), _judge(figures, similar)
    comparison = [
        {
            "kpi": k,
            "value": figures.value(k.key),
            "rate": figures.rate(k.key),
            "network": refs.medians.get(k.key),
            "similar": similar.get(k.key),
            "vs_network": vs_network.get(k.key, ""),
            "vs_similar": vs_similar.get(k.key, ""),
        }
        for k in KPIS
    ]
    return {
        "unit": unit,
        "days": days,
        "since": since,
        "store_sales": store_sales([unit], rollups.local_midnight(since)).get(
            unit.pk, StoreSales()
        ),
        "figures": figures,
        "total": figures.total,
        "roi": roi(figures.total.revenue, figures.total.cost),
        "campaigns": campaigns,
        "comparison": comparison,
        "group": size_group_label(group),
        "base": base_history(unit, since),
        "budget": budget_burn(unit, today, policy),
        "refreshed_at": rollups.refreshed_at(),
        "model": policy.get_attribution_model_display(),
    }


def base_history(unit: OrgNode, since: dt.date) -> list[dict]:
    return [
        {
            "day": d.day,
            "contacts": d.contacts,
            "email_rate": Rate(d.email_ok, d.contacts),
            "sms_rate": Rate(d.sms_ok, d.contacts),
        }
        for d in UnitDay.objects.filter(
            unit_path=unit.path, unit_id=unit.pk, day__gte=since
        ).order_by("day")
    ]


def budget_burn(unit: OrgNode, today: dt.date, policy=None) -> dict | None:
    """The current budget, what is spent and left of it, and what was left day by day (the
    burn-down, from the rollups). "Spent" is the sending gate's own figure
    (``campaigns.audience.spent``): the unit's share of what its messages sent from the
    budget's first day cost (every campaign, local or a national one it relayed, HQ's share of
    the relays excluded), at the network's current prices."""
    budget = Budget.objects.filter(unit=unit, starts_on__lte=today, ends_on__gte=today).first()
    if budget is None:
        return None
    spent = dict(
        DailyStat.objects.filter(
            unit_path=unit.path,
            unit_id=unit.pk,
            day__gte=budget.starts_on,
            day__lte=min(today, budget.ends_on),
        )
        .values_list("day")
        .annotate(s=Sum("cost"))
        .order_by()
    )
    left, series, day = budget.amount, [], budget.starts_on
    while day <= min(today, budget.ends_on):
        left -= spent.get(day, 0) or 0
        series.append((day, left.quantize(Decimal("0.01"))))
        day += dt.timedelta(days=1)
    paid = budget_spent(unit, budget.starts_on, budget.ends_on, policy or policy_for(unit))
    return {
        "budget": budget,
        "left": (budget.amount - paid).quantize(Decimal("0.01")),
        "spent": paid.quantize(Decimal("0.01")),
        "series": series,
    }


# -- campaign report -----------------------------------------------------------------------------


def campaign_rows(campaign: Campaign, paths) -> dict[rollups.Key, Counters]:
    """The campaign's counters per (day, unit, channel) within ``paths``: the rollups, plus the raw
    events that occurred since the last pass's cut-off (a few minutes' worth)."""
    covered = rollups.covered_until()
    out: dict[rollups.Key, Counters] = {}
    if covered is not None:
        for row in (
            DailyStat.objects.filter(path_filter(paths), campaign_id=campaign.pk)
            .values("day", "campaign_id", "unit_id", "unit_path", "channel")
            .annotate(**SUMS)
            .order_by()
        ):
            out[
                (row["day"], row["campaign_id"], row["unit_id"], row["unit_path"], row["channel"])
            ] = _counters(row)
    start = covered if covered is not None else campaign.created_at - dt.timedelta(days=1)
    for key, counters in rollups.aggregate(
        start, campaign_id=campaign.pk, unit_paths=paths
    ).items():
        out.setdefault(key, Counters()).add(counters)
    return out


def campaign_report(user: User, campaign: Campaign) -> dict:
    """Funnel, timeline, per-unit results and clicks per link of a campaign, within the user's scope."""
    paths = access_for(user).paths
    rows = campaign_rows(campaign, paths)
    total, by_day, by_unit = Counters(), defaultdict(Counters), defaultdict(Counters)
    for (day, _campaign, unit, _path, _channel), counters in rows.items():
        total.add(counters)
        by_day[day].add(counters)
        by_unit[unit].add(counters)
    delivered = UnitFigures.delivered(total)
    funnel = [
        (_("Sent"), total.sent),
        (_("Delivered"), delivered),
        (_("Opens"), total.opened),
        (_("Unique clickers"), total.clickers),
        (_("Conversions"), total.conversions),
    ]
    relays = {}
    if campaign.is_national:
        relays = {r.unit_id: r for r in Relay.objects.filter(path_filter(paths), campaign=campaign)}
    units = {u.pk: u for u in OrgNode.objects.filter(pk__in=set(by_unit) | set(relays))}
    unit_rows = []
    for unit_id, unit in sorted(units.items(), key=lambda item: item[1].name):
        c = by_unit.get(unit_id, Counters())
        unit_rows.append(
            {
                "unit": unit,
                "c": c,
                "delivered": UnitFigures.delivered(c),
                "click_rate": Rate(c.clickers, UnitFigures.delivered(c)),
                "relay": relays.get(unit_id),
                "roi": roi(c.revenue, c.cost),
            }
        )
    relayed = sum(1 for r in relays.values() if r.status == Relay.Status.RELAYED)
    policy = policy_for(campaign.owner)
    sales = list(
        Conversion.objects.filter(
            path_filter(paths),
            occurred_at__gte=campaign.created_at,
            contact_id__in=Recipient.objects.filter(campaign=campaign).values("contact_id"),
        )
    )
    models = []
    for model, label in AttributionModel.choices:
        credits = campaign_credit(campaign.pk, sales, model, policy.attribution_window_days)
        revenue = sum((c.revenue for c in credits.values()), Decimal(0))
        models.append(
            {
                "key": model,
                "label": label,
                "chosen": model == policy.attribution_model,
                "conversions": sum((c.conversions for c in credits.values()), Decimal(0)),
                "revenue": revenue.quantize(Decimal("0.01")),
                "roi": roi(revenue, total.cost),
            }
        )
        if model == policy.attribution_model:
            for row in unit_rows:
                credited = credits.get(row["unit"].pk)
                row["revenue"] = (
                    credited.revenue.quantize(Decimal("0.01")) if credited else Decimal("0.00")
                )
                row["roi"] = roi(row["revenue"], row["c"].cost)
            chosen_revenue = revenue.quantize(Decimal("0.01"))
    return {
        "total": total,
        "revenue": chosen_revenue,
        "attribution": models,
        "window_days": policy.attribution_window_days,
        "delivered": delivered,
        "funnel": funnel,
        "click_rate": Rate(total.clickers, delivered),
        "unsubscribe_rate": Rate(total.unsubscribed, delivered),
        "roi": roi(chosen_revenue, total.cost),
        "days": sorted(by_day.items()),
        "units": unit_rows,
        "relay_rate": Rate(relayed, len(relays)) if relays else None,
        "links": link_clicks(campaign, paths),
    }


def campaign_persona_results(user: User, campaign: Campaign, persona: Persona) -> dict:
    """The campaign's results among its recipients whose record has ``persona``, within the
    user's scope, beside every recipient's counted the same way (from the events, opens
    left out: ``by_persona``)."""
    events = Event.objects.filter(path_filter(access_for(user).paths))
    out = {"persona": persona}
    for key, chosen in (("chosen", persona), ("everyone", None)):
        c = by_persona.persona_counters(events, [campaign.pk], chosen).get(campaign.pk, Counters())
        delivered = UnitFigures.delivered(c)
        out[key] = {
            "c": c,
            "delivered": delivered,
            "click_rate": Rate(c.clickers, delivered),
            "unsubscribe_rate": Rate(c.unsubscribed, delivered),
        }
    return out


def link_clicks(campaign: Campaign, paths) -> list[dict]:
    """Each URL of the campaign with its counted clicks and unique clickers (summed over units)."""
    links = {link.pk: link for link in Link.objects.filter(path_filter(paths), campaign=campaign)}
    counts = (
        Event.objects.filter(
            path_filter(paths),
            campaign_id=campaign.pk,
            kind=Event.Kind.CLICKED,
            machine=False,
            link_id__in=list(links),
        )
        .values_list("link_id")
        .annotate(n=Count("id"), u=Count("recipient_id", distinct=True))
        .order_by()
    )
    by_url: dict[str, dict] = {}
    for link in links.values():
        by_url.setdefault(
            link.url, {"url": link.url, "position": link.position, "clicks": 0, "clickers": 0}
        )
        by_url[link.url]["position"] = min(by_url[link.url]["position"], link.position)
    for link_id, n, u in counts:
        entry = by_url[links[link_id].url]
        entry["clicks"] += n
        entry["clickers"] += u
    return sorted(by_url.values(), key=lambda e: (-e["clicks"], e["position"]))


def report_csv_rows(report: dict):
    for row in report["units"]:
        c, rate = row["c"], row["click_rate"]
        yield [
            row["unit"].name,
            row["unit"].code,
            row["relay"].get_status_display() if row["relay"] else "",
            c.sent,
            row["delivered"],
            c.opened,
            c.clicks,
            c.clickers,
            "" if rate.percent is None else f"{rate.percent:.2f}",
            c.unsubscribed,
            c.bounced,
            c.complained,
            c.conversions,
            row["revenue"],
            c.cost.quantize(Decimal("0.01")),
        ]


REPORT_CSV_HEADER = [
    pgettext_lazy("CSV column", "Unit"),
    pgettext_lazy("CSV column", "Code"),
    pgettext_lazy("CSV column", "Relay"),
    pgettext_lazy("CSV column", "Sent"),
    pgettext_lazy("CSV column", "Delivered"),
    pgettext_lazy("CSV column", "Opens"),
    pgettext_lazy("CSV column", "Clicks"),
    pgettext_lazy("CSV column", "Unique clickers"),
    pgettext_lazy("CSV column", "Click rate (%)"),
    pgettext_lazy("CSV column", "Unsubscribes"),
    pgettext_lazy("CSV column", "Bounces"),
    pgettext_lazy("CSV column", "Complaints"),
    pgettext_lazy("CSV column", "Conversions"),
    pgettext_lazy("CSV column", "Revenue"),
    pgettext_lazy("CSV column", "Cost"),
]


# -- best-practice gallery -----------------------------------------------------------------------

GALLERY_SIZE = 24
GALLERY_MIN_DELIVERED = 200
GALLERY_MEASURES = {"clicks": _("click rate"), "sales": _("sales rate")}


def gallery(
    *,
    measure: str = "clicks",
    days: int = 365,
    today: dt.date | None = None,
    persona: Persona | None = None,
) -> list[dict]:
    """The network's best local campaigns: their content and results, never anyone's contacts.

    Ranked by the lower end of the 95 % interval, so a campaign that did well on 40
    messages does not outrank one that did nearly as well on 4,000. Read for the whole
    network (aggregates only), whoever asks: every unit may learn from every other. With a
    ``persona``, each campaign's results among the recipients whose record has it
    (``by_persona``), ranked and thresholded the same way.
    """
    today = today or timezone.localdate()
    since = today - dt.timedelta(days=days - 1)
    with db_scope(ALL):
        local = Campaign.objects.filter(
            kind=Campaign.Kind.LOCAL, status=Campaign.Status.FINISHED, template__is_free=False
        )
        rows = (
            DailyStat.objects.filter(day__gte=since, campaign_id__in=local.values("pk"))
            .values("campaign_id")
            .annotate(**SUMS)
            .order_by()
        )
        results = {row["campaign_id"]: _counters(row) for row in rows}
        if persona is not None:
            results = by_persona.persona_counters(
                by_persona.events_since(rollups.local_midnight(since)), list(results), persona
            )
        entries = []
        for campaign_id, c in results.items():
            delivered = UnitFigures.delivered(c)
            if delivered < GALLERY_MIN_DELIVERED:
                continue
            rate = Rate(c.clickers if measure == "clicks" else c.conversions, delivered)
            entries.append(
                {
                    "campaign_id": campaign_id,
                    "c": c,
                    "delivered": delivered,
                    "rate": rate,
                    "click_rate": Rate(c.clickers, delivered),
                    "sales_rate": Rate(c.conversions, delivered),
                    "unsubscribe_rate": Rate(c.unsubscribed, delivered),
                }
            )
        entries.sort(key=lambda e: e["rate"].interval[0], reverse=True)
        entries = entries[:GALLERY_SIZE]
        campaigns = {
            c.pk: c
            for c in Campaign.objects.filter(
                pk__in=[e["campaign_id"] for e in entries]
            ).select_related("owner", "template", "local_version")
        }
        for entry in entries:
            campaign = campaigns[entry["campaign_id"]]
            entry["campaign"] = campaign
            entry["texts"] = [
                v
                for v in (campaign.local_version.values.values() if campaign.local_version else [])
                if isinstance(v, str) and v.strip()
            ][:3]
    return entries


def get_gallery_campaign(public_id) -> Campaign:
    """A campaign the gallery shows (finished, local); 404 otherwise."""
    campaign = None
    if parse_uuid(public_id):
        with db_scope(ALL):
            campaign = (
                Campaign.objects.filter(
                    public_id=public_id,
                    kind=Campaign.Kind.LOCAL,
                    status=Campaign.Status.FINISHED,
                    template__is_free=False,
                )
                .select_related("owner", "template", "local_version")
                .first()
            )
    if campaign is None:
        raise Http404("No such campaign in the gallery.")
    return campaign
