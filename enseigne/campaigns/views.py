"""Campaign pages: list, wizard, campaign page (preview, decisions, progress), approvals, calendar."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from enseigne.brand.free import free_frame
from enseigne.brand.models import LocalVersion
from enseigne.brand.variants import varied_personas
from enseigne.brand.views import message_preview, sandboxed
from enseigne.campaigns import audience, content, figures, selectors, services
from enseigne.campaigns.confirmation import send_summary
from enseigne.campaigns.forms import (
    WEEKDAYS,
    BudgetForm,
    DecisionForm,
    FreeMessageForm,
    LocalCampaignEditForm,
    LocalCampaignForm,
    NationalCampaignForm,
    PressureForm,
    ScheduleForm,
    SendingPolicyForm,
)
from enseigne.campaigns.models import Campaign, PressureRule
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.selectors import nodes_for_user, root_of
from enseigne.network.views import form_errors


def _get(request, public_id, capability=None) -> Campaign:
    return selectors.get_campaign_for_user(request.user, public_id, capability)


LIST_COLUMNS = ("public_id", "name", "kind", "channel", "owner__name", "send_at", "status")


@login_required
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = selectors.campaigns_for_user(request.user)
    status = request.GET.get("status", "")
    if status in Campaign.Status.values:
        campaigns = campaigns.filter(status=status)
    access = access_for(request.user)
    return render(
        request,
        "campaigns/list.html",
        {
            # The columns the list shows: not the approved content, rules and problems
            # (JSON) of 200 campaigns, nor their templates.
            "campaigns": campaigns.select_related(None)
            .select_related("owner")
            .only(*LIST_COLUMNS)[:200],
            "status": status,
            "statuses": Campaign.Status.choices,
            "can_national": access.can_anywhere(Capability.CREATE_NATIONAL_CAMPAIGNS),
            "can_local": access.can_anywhere(Capability.CREATE_LOCAL_CAMPAIGNS),
            "can_free": access.can_anywhere(Capability.CREATE_FREE_CAMPAIGNS),
            "inbox_count": selectors.approval_inbox(request.user).count(),
            "relays": selectors.relays_for_user(request.user)
            .filter(status="pending", campaign__status__in=("scheduled", "approved"))
            .only(
                "campaign__public_id",
                "campaign__name",
                "campaign__relay_deadline",
                "unit__name",
            )
            .order_by("campaign__send_at")[:20],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def campaign_new(request: HttpRequest) -> HttpResponse:
    national = request.GET.get("kind") == "national"
    access = access_for(request.user)
    needed = Capability.CREATE_NATIONAL_CAMPAIGNS if national else Capability.CREATE_LOCAL_CAMPAIGNS
    if not access.can_anywhere(needed):
        raise PermissionDenied
    form_class = NationalCampaignForm if national else LocalCampaignForm
    # "Use it in a campaign" from a saved local version arrives with its unit, template and version.
    initial = {
        key: request.GET[key]
        for key in ("unit", "channel", "template", "local_version")
        if key in request.GET
    }
    form = form_class(request.user, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if national:
                campaign = services.campaign_create_national(actor=request.user, **data)
            else:
                campaign = services.campaign_create_local(actor=request.user, **data)
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("Draft saved. Check the audience, then submit it."))
            return redirect("campaign_detail", public_id=campaign.public_id)
    return render(request, "campaigns/new.html", {"form": form, "national": national})


@login_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, public_id) -> HttpResponse:
    """A draft's name, content, audience and date, until it is submitted."""
    campaign = _get(request, public_id)
    if not services.can_edit(request.user, campaign):
        raise PermissionDenied
    refusal = services.edit_refusal(campaign)
    if refusal:
        messages.error(request, refusal)
        return redirect("campaign_detail", public_id=campaign.public_id)
    if campaign.is_national:
        form = NationalCampaignForm(request.user, request.POST or None, campaign=campaign)
    else:
        form = LocalCampaignEditForm(request.user, campaign, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.campaign_update(actor=request.user, campaign=campaign, **form.cleaned_data)
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("Draft saved. Check the audience, then submit it."))
            return redirect("campaign_detail", public_id=campaign.public_id)
    return render(
        request,
        "campaigns/new.html",
        {"form": form, "national": campaign.is_national, "campaign": campaign},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@require_POST
def campaign_duplicate(request: HttpRequest, public_id) -> HttpResponse:
    """A new draft from any campaign, in the same owner; its dates are left to choose."""
    campaign = _get(request, public_id)
    if not services.can_edit(request.user, campaign):
        raise PermissionDenied
    try:
        duplicate = services.campaign_duplicate(actor=request.user, campaign=campaign)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("campaign_detail", public_id=campaign.public_id)
    messages.success(
        request,
        _("“%(name)s” is a new draft: check its audience and choose its date.")
        % {"name": duplicate.name},
    )
    return redirect("campaign_edit", public_id=duplicate.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def campaign_free(request: HttpRequest) -> HttpResponse:
    """A free campaign starts with the text: pick the unit and channel, then write in the zone editor."""
    form = FreeMessageForm(request.user, request.POST or None)
    if not form.fields["unit"].queryset.exists():  # no unit where the permission tree allows it
        raise PermissionDenied
    if request.method == "POST" and form.is_valid():
        unit = form.cleaned_data["unit"]
        try:
            frame = free_frame(actor=request.user, unit=unit, channel=form.cleaned_data["channel"])
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            return redirect(
                f"{reverse('template_personalise', args=[frame.public_id])}?unit={unit.public_id}"
            )
    return render(request, "campaigns/free.html", {"form": form})


@login_required
@require_GET
def campaign_detail(request: HttpRequest, public_id) -> HttpResponse:
    campaign = _get(request, public_id)
    user = request.user
    launched = campaign.launched_at is not None
    relay = None
    relay_locals = []
    if campaign.is_national:
        relays = selectors.relays_for_user(user).filter(campaign=campaign).order_by("unit__name")
        mine = [
            r for r in relays if access_for(user).can(Capability.CREATE_LOCAL_CAMPAIGNS, r.unit)
        ]
        relay = mine[0] if len(mine) == 1 else None
        if relay is not None:
            relay_locals = list(
                LocalVersion.objects.filter(unit=relay.unit, template=campaign.template)
            )
    else:
        relays = []
    problems = content.content_problems(campaign) if campaign.status in content.CHECKED else []
    return render(
        request,
        "campaigns/detail.html",
        {
            "campaign": campaign,
            "launched": launched,
            "relays": relays,
            "relay": relay,
            "relay_locals": relay_locals,
            "message_personas": varied_personas(
                campaign.template.current.variants if campaign.template.current else {},
                campaign.owner_path,
            ),
            "can_edit": services.can_edit(user, campaign),
            "can_approve": services.can_approve(user, campaign),
            "can_exceed": access_for(user).can(Capability.EXCEED_BUDGET, campaign.owner),
            "progress": selectors.progress(campaign) if launched else None,
            "skip_reasons": [
                (audience.HANDOFF_REASONS.get(k, k), n) for k, n in selectors.skip_reasons(campaign)
            ]
            if launched
            else [],
            "content_problems": problems,
            # Another unit's version is none of a store's business: only the problems it sees.
            "visible_problems": [
                p for p in problems if not p.unit_path or access_for(user).sees(p.unit_path)
            ],
            # Only someone who sees every unit of the campaign can tell that nothing is left.
            "content_solved": not problems and access_for(user).sees(campaign.owner_path),
            "schedule_form": ScheduleForm(initial={"send_at": campaign.send_at}),
            "decision_form": DecisionForm(),
        },
    )


@login_required
@require_GET
def campaign_preview(request: HttpRequest, public_id) -> HttpResponse:
    """The audience panel (htmx fragment): the kept figures, their age, and while the worker
    counts, a panel that asks again every few seconds."""
    campaign = _get(request, public_id)
    kept = figures.kept_for(campaign, access_for(request.user))
    return render(
        request,
        "campaigns/_preview.html",
        {"campaign": campaign, "preview": kept.preview, "figures": kept},
    )


@login_required
@require_GET
def campaign_message(request: HttpRequest, public_id) -> HttpResponse:
    """The message as the user's unit sends it (its footer, the version it relayed), or as the
    first target unit does for someone who sees them all; for the sandboxed preview frame."""
    campaign = _get(request, public_id)
    version = campaign.template.current
    target = selectors.target_for_user(request.user, audience.targets(campaign))
    if version is None or target is None:
        return sandboxed("<p>—</p>")
    values = target.local_version.values if target.local_version else {}
    if campaign.approved_version_id is not None:  # approved: what is sent is what was approved
        approved = content.approved_content(campaign, target.unit)
        version, values = approved.version, approved.values
    # As a customer of one of the personas head office wrote variants for (?persona=).
    wanted = request.GET.get("persona", "")
    persona = wanted if wanted in varied_personas(version.variants, target.unit.path) else None
    return message_preview(version, values, target.unit, campaign.channel, persona)


def campaign_action(request, public_id, action, *, done: str = "", then=None, **extra):
    """Run a campaign service as the user and go back to the campaign page with its outcome;
    ``then(campaign)`` runs once the change is committed (e.g. wake a runner)."""
    campaign = _get(request, public_id)
    try:
        action(actor=request.user, campaign=campaign, **extra)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    else:
        if then is not None:
            transaction.on_commit(lambda: then(campaign))
        if done:
            messages.success(request, done)
    return redirect("campaign_detail", public_id=campaign.public_id)


def confirmed(request: HttpRequest) -> bool:
    """Whether a send's form comes from its confirmation page (its hidden ``confirm`` field)."""
    return request.POST.get("confirm") == "yes"


def send_confirmation(
    request: HttpRequest, campaign: Campaign, *, schedule_form: ScheduleForm | None = None
) -> HttpResponse:
    """What a send will do, with the button that posts it again confirmed: *Send now* without
    ``schedule_form``, *Schedule* with the user's (valid) date in it."""
    if not services.can_edit(request.user, campaign):
        raise PermissionDenied
    when = schedule_form.cleaned_data["send_at"] if schedule_form else None
    kept = figures.kept_for(campaign, access_for(request.user))
    try:
        summary = send_summary(campaign, when, preview=kept.preview)
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return redirect("campaign_detail", public_id=campaign.public_id)
    return render(
        request,
        "campaigns/confirm_send.html",
        {
            "campaign": campaign,
            "summary": summary,
            "preview": kept.preview,
            "figures": kept,
            "schedule_form": schedule_form,
        },
    )


@login_required
@require_POST
def campaign_submit(request, public_id):
    return campaign_action(request, public_id, services.campaign_submit)


@login_required
@require_POST
def campaign_decide(request, public_id, decision: str):
    form = DecisionForm(request.POST)
    form.is_valid()
    comment = form.cleaned_data.get("comment", "")
    if decision == "approve":
        return campaign_action(
            request,
            public_id,
            services.campaign_approve,
            comment=comment,
            over_budget=form.cleaned_data.get("over_budget", False),
        )
    return campaign_action(request, public_id, services.campaign_reject, comment=comment)


@login_required
@require_POST
def campaign_schedule(request, public_id):
    campaign = _get(request, public_id)
    if not services.can_edit(request.user, campaign):
        raise PermissionDenied
    form = ScheduleForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("campaign_detail", public_id=campaign.public_id)
    if not confirmed(request):
        return send_confirmation(request, campaign, schedule_form=form)
    return campaign_action(
        request, public_id, services.campaign_schedule, send_at=form.cleaned_data["send_at"]
    )


@login_required
@require_POST
def campaign_cancel(request, public_id):
    return campaign_action(request, public_id, services.campaign_cancel)


@login_required
@require_POST
def campaign_reopen(request, public_id):
    return campaign_action(
        request,
        public_id,
        services.campaign_reopen,
        done=_("Back to draft: choose or write the content again, then submit it."),
    )


@login_required
@require_POST
def campaign_relay(request, public_id):
    campaign = _get(request, public_id)
    relays = [
        r
        for r in selectors.relays_for_user(request.user).filter(campaign=campaign)
        if access_for(request.user).can(Capability.CREATE_LOCAL_CAMPAIGNS, r.unit)
    ]
    if not relays:
        raise PermissionDenied
    relay = relays[0]
    local = None
    if request.POST.get("local_version"):
        local = LocalVersion.objects.filter(
            unit=relay.unit, template=campaign.template, public_id=request.POST["local_version"]
        ).first()
    try:
        services.relay_decide(
            actor=request.user,
            campaign=campaign,
            unit=relay.unit,
            relay=request.POST.get("decision") != "opt_out",
            local_version=local,
        )
        figures.figures_request(campaign)
        messages.success(request, _("Your answer is saved."))
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    return redirect("campaign_detail", public_id=campaign.public_id)


@login_required
@require_GET
def campaign_progress(request, public_id):
    campaign = _get(request, public_id)
    progress = selectors.progress(campaign)
    eta = None
    if campaign.launched_at and progress["done"] and progress["pending"]:
        elapsed = (timezone.now() - campaign.launched_at).total_seconds()
        eta = timezone.now() + dt.timedelta(
            seconds=elapsed / progress["done"] * progress["pending"]
        )
    shown = request.GET.get("shown", campaign.status)
    response = render(
        request,
        "campaigns/_progress.html",
        {
            "campaign": campaign,
            "progress": progress,
            "eta": eta,
            # Preparing → sending: the header's state follows (the actions stay the same).
            "status_changed": shown != campaign.status,
        },
    )
    if request.htmx and campaign.status not in (Campaign.Status.PREPARING, Campaign.Status.SENDING):
        # Sending ended (finished, paused, cancelled), or preparing did not lead to it: the
        # whole page changes (actions, the reason, the report), so htmx loads it again.
        response["HX-Refresh"] = "true"
    return response


@login_required
@require_GET
def approvals(request):
    if not access_for(request.user).can_anywhere(Capability.APPROVE_CAMPAIGNS):
        raise PermissionDenied
    return render(
        request, "campaigns/approvals.html", {"campaigns": selectors.approval_inbox(request.user)}
    )


@login_required
@require_GET
def calendar(request):
    return render(request, "campaigns/calendar.html", {})


@login_required
@require_GET
def calendar_events(request):
    start = parse_datetime(request.GET.get("start", "")) or timezone.now() - dt.timedelta(days=45)
    end = parse_datetime(request.GET.get("end", "")) or timezone.now() + dt.timedelta(days=45)
    events = []
    for campaign in selectors.calendar_campaigns(request.user, start, end):
        when = campaign.send_at or campaign.created_at
        events.append(
            {
                "id": str(campaign.public_id),
                "title": f"{campaign.name} ({campaign.owner.name})",
                # Wall-clock time in the app's time zone, without an offset: the calendar
                # shows it as the other pages do, whatever the browser's own zone.
                "start": timezone.localtime(when).replace(tzinfo=None).isoformat(),
                "allDay": False,
                "editable": campaign.is_editable and services.can_edit(request.user, campaign),
                "classNames": [f"campaign-{campaign.kind}", f"campaign-{campaign.status}"],
                "extendedProps": {
                    "kind": campaign.kind,
                    "status": campaign.get_status_display(),
                    "channel": campaign.channel,
                    "url": f"/campaigns/{campaign.public_id}/",
                },
            }
        )
    return JsonResponse(events, safe=False)


def _figures_json(kept: figures.Kept) -> dict:
    preview = kept.preview
    return {
        "ready": preview is not None and not kept.stale,
        "computing": kept.computing,
        "computed_at": kept.computed_at.isoformat() if kept.computed_at else None,
        "for_date": kept.for_date.isoformat() if kept.for_date else None,
        "recipients": preview.recipients if preview else None,
        "pressure": preview.exclusions.get("pressure", 0) if preview else None,
        "sources": [{"campaign": name, "contacts": n} for name, n in preview.pressure_sources]
        if preview
        else [],
    }


@login_required
@require_POST
def campaign_move(request, public_id):
    """Calendar drag of a draft. It answers at once with the kept figures (their date and age):
    with ``confirm`` the campaign is moved and the worker counts the new date's audience; the
    calendar then asks again (without ``confirm``) until the new figures are ``ready``."""
    campaign = _get(request, public_id)
    if not services.can_edit(request.user, campaign):
        raise PermissionDenied
    try:
        when = parse_datetime(request.POST.get("send_at", ""))
    except ValueError:  # well formed but impossible, e.g. month 13
        when = None
    if when is None:
        return JsonResponse({"error": _("Give a date and time.")}, status=400)
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    moved = False
    before = None
    if request.POST.get("confirm") == "1":
        before = figures.kept_for(campaign, access_for(request.user))
        try:
            services.campaign_move(actor=request.user, campaign=campaign, send_at=when)
            moved = True
        except ValidationError as exc:
            return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    after = figures.kept_for(campaign, access_for(request.user))
    answer = {"moved": moved, **_figures_json(after)}
    if before is not None:
        answer["pressure_before"] = _figures_json(before)["pressure"]
    return JsonResponse(answer)


@login_required
@require_http_methods(["GET", "POST"])
def sending_rules(request: HttpRequest) -> HttpResponse:
    """The network's sending rules for everyone to read; HQ (manage sending rules) edits them.

    One page, three forms told apart by ``part``: the policy (SMS window, priority, costs),
    the pressure caps, a unit's budget for a period. Budgets show what was spent.
    """
    user = request.user
    top = nodes_for_user(user).first()
    if top is None:
        raise PermissionDenied
    root = root_of(top)
    policy = selectors.policy_for(root)
    can_manage = selectors.can_manage_rules(user, root)
    part = request.POST.get("part", "")
    policy_form = SendingPolicyForm(request.POST if part == "policy" else None, instance=policy)
    rules = PressureRule.objects.filter(node=root)
    pressure_form = PressureForm(request.POST if part == "pressure" else None, rules=rules)
    budget_form = BudgetForm(user, request.POST if part == "budget" else None)
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied
        if part not in ("policy", "pressure", "budget"):
            return HttpResponse(_("Unknown form."), status=400, content_type="text/plain")
        form = {"policy": policy_form, "pressure": pressure_form, "budget": budget_form}[part]
        if form.is_valid():
            try:
                if part == "policy":
                    services.sending_policy_update(actor=user, node=root, **form.cleaned_data)
                elif part == "pressure":
                    services.pressure_rules_replace(
                        actor=user, node=root, rules=form.cleaned_data["rules"]
                    )
                else:
                    services.budget_set(actor=user, **form.cleaned_data)
            except ValidationError as exc:
                form_errors(form, exc)
            else:
                # The campaigns still to send are counted again by the worker, not here.
                figures.figures_request_for_network(root)
                messages.success(
                    request, _("Sending rules saved. They apply to the next preview and hand-off.")
                )
                return redirect("sending_rules")
        if part == "policy":
            policy.refresh_from_db()  # the form edited the instance in place
    budgets = []
    shown = list(selectors.budgets_for_user(user)[:100])
    spent = audience.spent_by_budget(shown, policy)
    for budget in shown:
        used = spent[budget.pk]
        budgets.append(
            {
                "budget": budget,
                "spent": used,
                "left": budget.amount - used,
                "percent": min(100, round(100 * used / budget.amount)) if budget.amount else 100,
            }
        )
    return render(
        request,
        "campaigns/rules.html",
        {
            "policy": policy,
            "rules": rules,
            "can_manage": can_manage,
            "policy_form": policy_form,
            "pressure_form": pressure_form,
            "budget_form": budget_form,
            "budgets": budgets,
            "days": [label for value, label in WEEKDAYS if value in policy.sms_days],
            "today": timezone.localdate(),
        },
        status=400 if request.method == "POST" else 200,
    )
