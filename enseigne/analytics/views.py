"""Dashboards and reports: thin views over analytics.selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from enseigne.analytics import by_persona, customers, people, selectors, services
from enseigne.analytics.bases import kept_contact_counts
from enseigne.brand.views import message_preview, sandboxed
from enseigne.campaigns.models import Campaign
from enseigne.campaigns.selectors import get_campaign_for_user
from enseigne.commerce.selectors import latest_orders
from enseigne.lib.csvexport import csv_download
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.forms import NodeCreateForm
from enseigne.network.models import OrgNode
from enseigne.network.selectors import (
    get_unit_for_user,
    home_unit_for,
    network_root,
    nodes_for_user,
    units_with,
)
from enseigne.personas.models import Persona
from enseigne.personas.selectors import persona_of_user_network, personas_of_user_network
from enseigne.tracking.models import Conversion


def _days(request: HttpRequest) -> int:
    try:
        days = int(request.GET.get("days", 90))
    except ValueError:
        days = 90
    return days if days in selectors.PERIODS else 90


@login_required
def hq_home(request: HttpRequest) -> HttpResponse:
    """The network at a glance: the org tree with each unit's contacts as the rollups counted them."""
    access = access_for(request.user)
    if not access.grants:
        raise PermissionDenied
    nodes = list(nodes_for_user(request.user).select_related("profile").prefetch_related("tags"))
    units = [n for n in nodes if n.kind == "unit"]
    counts, counted_at = kept_contact_counts(request.user, units)
    root = network_root()
    hq_root = people.hq_root_for(request.user, root)
    for node in nodes:
        node.contact_count = counts.get(node.pk, 0)
        node.indent = len(node.path) // 4 - 1
    return render(
        request,
        "network/hq_home.html",
        {
            "nodes": nodes,
            "network": root,
            "unit_count": len(units),
            "contact_total": sum(counts.values()),
            "counted_at": counted_at,
            "can_manage": access.is_hq_admin,
            # HQ only, in both network modes: the base counted in people (issue 20).
            "people": people.network_people(hq_root.path) if hq_root else None,
            "node_form": NodeCreateForm(parents=nodes_for_user(request.user).exclude(kind="unit"))
            if access.is_hq_admin
            else None,
        },
    )


@login_required
@require_GET
def results(request: HttpRequest) -> HttpResponse:
    """The network dashboard for those who may see one; a unit's people go to their unit's."""
    if access_for(request.user).can_anywhere(Capability.VIEW_NETWORK_ANALYTICS):
        try:
            data = selectors.network_dashboard(
                request.user,
                days=_days(request),
                kpi=request.GET.get("kpi", ""),
                descending=request.GET.get("order") != "asc",
            )
        except PermissionDenied:
            data = None
        if data is not None:
            return render(
                request,
                "analytics/network.html",
                {
                    **data,
                    "periods": selectors.PERIODS,
                    "order": request.GET.get("order", "desc"),
                    "can_record_sales": access_for(request.user).can_anywhere(
                        Capability.RECORD_CONVERSIONS
                    ),
                },
            )
    unit = home_unit_for(request.user)
    if unit is None:
        raise PermissionDenied
    return redirect("unit_dashboard", public_id=unit.public_id)


@login_required
@require_GET
def unit_dashboard(request: HttpRequest, public_id) -> HttpResponse:
    unit = get_unit_for_user(request.user, public_id)
    data = selectors.unit_dashboard(unit, days=_days(request))
    base = data["base"]
    charts = {
        "base_chart": {
            "kind": "line",
            "dates": True,
            "x": [d["day"].isoformat() for d in base],
            "series": [
                {"name": _("Contacts"), "data": [d["contacts"] for d in base], "area": True}
            ],
        },
        "consent_chart": {
            "kind": "line",
            "percent": True,
            "dates": True,
            "x": [d["day"].isoformat() for d in base],
            "series": [
                {"name": _("E-mail consent"), "data": [_percent(d["email_rate"]) for d in base]},
                {"name": _("SMS consent"), "data": [_percent(d["sms_rate"]) for d in base]},
            ],
        },
    }
    if data["budget"]:
        series = data["budget"]["series"]
        charts["budget_chart"] = {
            "kind": "line",
            "dates": True,
            "x": [day.isoformat() for day, _left in series],
            "series": [
                {
                    "name": _("Left"),
                    "data": [float(left) for _day, left in series],
                    "step": "end",
                    "area": True,
                }
            ],
        }
    return render(
        request,
        "analytics/unit.html",
        {
            **data,
            **charts,
            "periods": selectors.PERIODS,
            "can_record_sales": access_for(request.user).can(Capability.RECORD_CONVERSIONS, unit),
            # The unit was authorized above: its own figures and the network's medians only.
            "customers": customers.store_customers(unit),
            "min_people": customers.MIN_PEOPLE,
            "min_stores": customers.MIN_STORES,
            "min_category_buyers": customers.MIN_CATEGORY_BUYERS,
            "min_row_people": customers.MIN_ROW_PEOPLE,
        },
    )


def _persona_filter(request: HttpRequest) -> Persona | None:
    """The persona of ``?persona=``: one of the user's network's, else ignored with a message
    (an unknown id and another network's persona alike: no hint which)."""
    wanted = request.GET.get("persona", "")
    if not wanted:
        return None
    persona = persona_of_user_network(request.user, wanted)
    if persona is None:
        messages.warning(
            request, _("That persona is not one of your network's: all recipients are shown.")
        )
    return persona


def _percent(rate) -> float | None:
    return None if rate.percent is None else round(rate.percent, 1)


@login_required
@require_GET
def campaign_report(request: HttpRequest, public_id) -> HttpResponse:
    campaign = get_campaign_for_user(request.user, public_id)
    report = selectors.campaign_report(request.user, campaign)
    days = report["days"]
    timeline = {
        "kind": "line",
        "dates": True,
        "x": [day.isoformat() for day, _c in days],
        "series": [
            {"name": _("Sent"), "data": [c.sent for _d, c in days]},
            {"name": _("Opens"), "data": [c.opened for _d, c in days]},
            {"name": _("Clicks"), "data": [c.clicks for _d, c in days]},
            {"name": _("Unsubscribed"), "data": [c.unsubscribed for _d, c in days]},
        ],
    }
    hq_root = people.hq_root_for(request.user)
    persona = _persona_filter(request)
    return render(
        request,
        "analytics/campaign_report.html",
        {
            "campaign": campaign,
            "timeline": timeline,
            "personas": personas_of_user_network(request.user),
            "persona": persona,
            "by_persona": selectors.campaign_persona_results(request.user, campaign, persona)
            if persona
            else None,
            "min_persona_delivered": by_persona.FEW_DELIVERED,
            # HQ only: how many distinct people the sent messages reached (issue 20).
            "reach": people.campaign_reach(campaign.pk) if hq_root else None,
            "show_reach": hq_root is not None,
            **report,
        },
    )


@login_required
@require_GET
def people_shopping(request: HttpRequest) -> HttpResponse:
    """HQ's cross-shopping matrix: people who are customers of two stores (issue 20)."""
    hq_root = people.hq_root_for(request.user)
    if hq_root is None:
        raise PermissionDenied
    return render(
        request,
        "analytics/people.html",
        {
            "figures": people.network_people(hq_root.path),
            **people.cross_shopping(hq_root.path),
        },
    )


@login_required
@require_GET
def campaign_report_csv(request: HttpRequest, public_id) -> StreamingHttpResponse:
    campaign = get_campaign_for_user(request.user, public_id)
    report = selectors.campaign_report(request.user, campaign)
    name = slugify(campaign.name) or "campaign"
    return csv_download(
        request,
        filename=f"report-{name}.csv",
        header=selectors.REPORT_CSV_HEADER,
        rows=selectors.report_csv_rows(report),
    )


@login_required
@require_GET
def sales(request: HttpRequest) -> HttpResponse:
    """The latest orders of the stores the user records sales for (every order the tills and
    shops reported), and apart from them the sales the tracking credited to a campaign."""
    paths = access_for(request.user).paths_with(Capability.RECORD_CONVERSIONS)
    if not paths:
        raise PermissionDenied
    units = OrgNode.objects.filter(path_filter(paths, "path"), kind=OrgNode.Kind.UNIT)
    credited = (
        Conversion.objects.filter(path_filter(paths), campaign_id__isnull=False)
        .select_related("unit")
        .order_by("-occurred_at")[:SALES_SHOWN]
    )
    names = dict(
        Campaign.objects.filter(pk__in={c.campaign_id for c in credited}).values_list("pk", "name")
    )
    return render(
        request,
        "analytics/sales.html",
        {
            "orders": latest_orders(units, SALES_SHOWN),
            "credited": credited,
            "campaign_names": names,
            "shown": SALES_SHOWN,
        },
    )


SALES_SHOWN = 50


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    measure = request.GET.get("by", "clicks")
    measure = measure if measure in selectors.GALLERY_MEASURES else "clicks"
    access = access_for(request.user)
    units = units_with(request.user, Capability.CREATE_LOCAL_CAMPAIGNS)
    persona = _persona_filter(request)
    return render(
        request,
        "analytics/gallery.html",
        {
            "entries": selectors.gallery(measure=measure, persona=persona),
            "personas": personas_of_user_network(request.user),
            "persona": persona,
            "persona_keep": [("by", measure)],
            "measure": measure,
            "measures": selectors.GALLERY_MEASURES,
            "units": [u for u in units if access.can(Capability.PERSONALISE_TEMPLATES, u)],
            "can_promote": access.is_hq and access.can_anywhere(Capability.MANAGE_TEMPLATES),
            "min_delivered": selectors.GALLERY_MIN_DELIVERED,
        },
    )


@login_required
@require_GET
def gallery_preview(request: HttpRequest, public_id) -> HttpResponse:
    """The campaign's message with a sample contact, in the sandboxed preview frame."""
    campaign = selectors.get_gallery_campaign(public_id)
    version = campaign.template.current
    if version is None:
        return sandboxed("<p>—</p>")
    return message_preview(
        version, services.campaign_values(campaign), campaign.owner, campaign.channel
    )


@login_required
@require_POST
def gallery_copy(request: HttpRequest, public_id) -> HttpResponse:
    campaign = selectors.get_gallery_campaign(public_id)
    units = {
        str(u.public_id): u for u in units_with(request.user, Capability.CREATE_LOCAL_CAMPAIGNS)
    }
    unit = units.get(request.POST.get("unit", "")) or (
        next(iter(units.values())) if len(units) == 1 else None
    )
    if unit is None:
        raise PermissionDenied
    try:
        draft = services.gallery_copy(actor=request.user, campaign=campaign, unit=unit)
    except ValidationError as problem:
        for message in problem.messages:
            messages.error(request, message)
        return redirect("gallery")
    messages.success(
        request,
        _("“%(name)s” is now a draft of %(unit)s: choose its audience and date.")
        % {"name": draft.name, "unit": unit.name},
    )
    return redirect("campaign_edit", public_id=draft.public_id)


@login_required
@require_POST
def gallery_promote(request: HttpRequest, public_id) -> HttpResponse:
    campaign = selectors.get_gallery_campaign(public_id)
    try:
        template = services.gallery_promote(actor=request.user, campaign=campaign)
    except ValidationError as problem:
        for message in problem.messages:
            messages.error(request, message)
        return redirect("gallery")
    messages.success(request, _("“%(name)s” is now a network template.") % {"name": template.name})
    return redirect("template_edit", public_id=template.public_id)
