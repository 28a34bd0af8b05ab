"""Journeys' pages: HQ's list and designer, the stores' list and their run's page, the
journey's report and the calendar's journeys."""

from __future__ import annotations

import datetime as dt
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET

from enseigne.brand import selectors as brand_selectors
from enseigne.brand.views import message_preview, sandboxed
from enseigne.contacts.fields import builder_labels
from enseigne.contacts.segments import field_catalogue
from enseigne.lib.forms import form_errors
from enseigne.network import selectors as network_selectors
from enseigne.network.access import AuthenticatedRequest
from enseigne.network.models import OrgNode, UnitTag

from . import drawing, editor, report, selectors, services, texts
from . import flow as flows
from .forms import (
    STEP_KINDS,
    ActivateForm,
    JourneySettingsForm,
    JourneyTemplateForm,
    MandatoryForm,
    OwnJourneyForm,
    PublishForm,
)
from .models import JourneyRun


@login_required
def hq_journeys(request: AuthenticatedRequest) -> HttpResponse:
    """HQ's journeys with their live version and runs; POST creates one, or pauses or
    resumes every journey of the network (``action``)."""
    root = selectors.get_hq_root_for_user(request.user)
    action = request.POST.get("action", "create")
    if request.method == "POST" and action in {"pause_all", "resume_all"}:
        return _network_pause(request, action, None, "hq_journeys")
    form = JourneyTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = services.journey_template_create(
                actor=request.user, owner=root, **form.cleaned_data
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("The journey was created: publish its first version."))
            return redirect("hq_journey", public_id=template.public_id)
    return render(
        request,
        "journeys/hq_list.html",
        {"templates": selectors.hq_templates(root), "form": form},
    )


def _network_pause(request, action: str, template, then: str, **kwargs) -> HttpResponse:
    if action == "pause_all":
        count = services.journeys_pause_network(actor=request.user, template=template)
        text = ngettext(
            "%(n)s running journey was paused.", "%(n)s running journeys were paused.", count
        )
        messages.success(request, text % {"n": count})
    else:
        count = services.journeys_resume_network(actor=request.user, template=template)
        text = ngettext("%(n)s journey was resumed.", "%(n)s journeys were resumed.", count)
        messages.success(request, text % {"n": count})
    return redirect(then, **kwargs)


@login_required
def hq_journey(request: AuthenticatedRequest, public_id) -> HttpResponse:
    """A journey's flow drawn, its figures over every store, and HQ's actions (POST
    ``action``: publish, mandatory, pause_all, resume_all)."""
    template = selectors.get_designable_template_for_user(request.user, public_id)
    action = request.POST.get("action", "publish") if request.method == "POST" else ""
    if action in {"pause_all", "resume_all"}:
        return _network_pause(request, action, template, "hq_journey", public_id=public_id)
    root = template.owner
    regions = [
        (str(n.public_id), n.name)
        for n in network_selectors.nodes_for_user(request.user).filter(
            path__startswith=root.path, kind__in=(OrgNode.Kind.NETWORK, OrgNode.Kind.REGION)
        )
    ]
    tags = [(str(t.pk), t.name) for t in UnitTag.objects.order_by("name")]
    live = template.live_version
    publish = PublishForm(
        request.POST if action == "publish" else None,
        initial={"flow": json.dumps(live.flow, indent=2, ensure_ascii=False) if live else ""},
    )
    mandatory = MandatoryForm(
        request.POST if action == "mandatory" else None, regions=regions, tags=tags
    )
    if action == "publish" and publish.is_valid():
        try:
            version = services.journey_publish(
                actor=request.user,
                template=template,
                flow=publish.cleaned_data["flow"],
                move_people=publish.cleaned_data["move_people"],
            )
        except ValidationError as exc:
            publish.add_error("flow", exc.messages)
        else:
            messages.success(
                request, _("Version %(n)s is published and live.") % {"n": version.number}
            )
            return redirect("hq_journey", public_id=public_id)
    if action == "mandatory" and mandatory.is_valid():
        node = tag = None
        if mandatory.cleaned_data["node"]:
            node = network_selectors.get_node_for_user(request.user, mandatory.cleaned_data["node"])
        else:
            tag = UnitTag.objects.get(pk=mandatory.cleaned_data["tag"])
        try:
            count = services.journey_make_mandatory(
                actor=request.user, template=template, node=node, tag=tag
            )
        except ValidationError as exc:
            mandatory.add_error(None, exc.messages)
        else:
            messages.success(
                request, _("The journey is now mandatory in %(n)s stores.") % {"n": count}
            )
            return redirect("hq_journey", public_id=public_id)
    designed = _flow_editor(request, template, action == "edit")
    if isinstance(designed, HttpResponse):
        return designed
    runs = JourneyRun.objects.filter(template=template).select_related("unit", "version")
    return render(
        request,
        "journeys/hq_detail.html",
        {
            **designed,
            "template": template,
            "publish": publish,
            "mandatory": mandatory,
            "runs": runs.order_by("unit__path"),
            "versions": template.versions.order_by("-number"),
            **_flow_context(live.flow if live else None, runs),
        },
    )


def _flow_editor(request, template, posted: bool) -> HttpResponse | dict:
    """The flow editor's forms (the live flow, or what was posted and the command posted
    with it); publishing a valid flow redirects, any problem is shown beside its step."""
    choices = editor.choices_for(request.user, template.owner_path)
    command = request.POST.get("editor", "refresh") if posted else ""
    kept = {"reentry": template.reentry, "reentry_days": template.reentry_days}
    kept["holdout_percent"] = template.holdout_percent
    if posted:  # what was typed, kept across the editor's commands
        kept = {name: request.POST.get(f"settings-{name}", "")[:20] for name in kept}
    settings = JourneySettingsForm(
        request.POST if command == "publish" else None, prefix="settings", initial=kept
    )
    if posted:
        trigger, steps = editor.posted_values(request.POST)
        if command != "publish":
            steps = editor.apply(command, steps, request.POST.get("add_kind", ""))
    else:
        live = template.live_version
        trigger, steps = editor.values_of(live.flow if live else None)
    # Checked when posted: to publish, or to draw the preview of what was typed.
    trigger_form, step_forms = editor.build_forms(
        trigger, steps, choices, bound=posted, url=request.path
    )
    flow = editor.flow_of(trigger_form, step_forms) if posted else None
    problems: list[str] = []
    if command == "publish" and flow is None:
        problems.append(_("Some fields need your attention: see the steps marked below."))
    elif command == "publish" and settings.is_valid():
        try:
            version = services.journey_design_publish(
                actor=request.user,
                template=template,
                flow=flow,
                move_people=request.POST.get("move_people") == "on",
                **settings.cleaned_data,
            )
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                form_errors(settings, exc)
            else:
                problems = editor.place_errors(exc.messages, step_forms)
        else:
            messages.success(
                request, _("Version %(n)s is published and live.") % {"n": version.number}
            )
            return redirect("hq_journey", public_id=template.public_id)
    if posted and command != "publish":
        # Only a publish shows errors: the other commands redraw what was typed.
        trigger_form, step_forms = editor.build_forms(
            trigger, steps, choices, bound=False, url=request.path
        )
    preview = _flow_context(flow, JourneyRun.objects.none()) if posted and flow else {}
    return {
        "editor_trigger": trigger_form,
        "editor_steps": step_forms,
        "editor_settings": settings,
        "editor_problems": problems,
        "editor_preview": preview.get("boxes", []),
        "editor_open": posted,
        "move_people": request.POST.get("move_people") == "on",
        "step_kinds": STEP_KINDS,
        # The segment builder's catalogue, for the conditions' and the trigger's rules.
        "catalogue": field_catalogue(request.user),
        "builder_labels": builder_labels(),
        "units": [
            (str(u.public_id), u.name) for u in network_selectors.nodes_for_user(request.user)
        ],
    }


def _flow_context(raw_flow, runs) -> dict:
    """The flow drawn with each step's figures over ``runs``."""
    if raw_flow is None:
        return {"boxes": [], "trigger": ""}
    try:
        parsed = flows.parse(raw_flow)
    except ValidationError:
        return {"boxes": [], "trigger": ""}
    return {
        "boxes": drawing.with_figures(drawing.draw(parsed), selectors.step_figures(runs)),
        "trigger": drawing.trigger_label(parsed.trigger),
        "goal": parsed.goal is not None,
    }


@login_required
def journey_list(request: AuthenticatedRequest) -> HttpResponse:
    """The journeys the user's stores may run and their runs; POST activates one, or
    (``action`` design) starts a store's own journey where the store may design one."""
    user = request.user
    seen = network_selectors.units_under(user)
    # HQ designs the network's journeys on its own pages, not the stores'.
    designers = (
        []
        if services.may_design_for_network(user)
        else [u for u in seen if services.may_design_for_store(user, u)]
    )
    design = OwnJourneyForm(
        request.POST if request.POST.get("action") == "design" else None,
        units=[(str(u.public_id), u.name) for u in designers],
        prefix="own",
    )
    if request.method == "POST" and request.POST.get("action") == "design":
        if not designers:
            raise PermissionDenied(_("This store may not design journeys of its own."))
        if design.is_valid():
            data = dict(design.cleaned_data)
            owner = network_selectors.get_node_for_user(user, data.pop("unit"))
            try:
                template = services.journey_template_create(actor=user, owner=owner, **data)
            except ValidationError as exc:
                form_errors(design, exc)
            else:
                messages.success(request, _("The journey was created: publish its first version."))
                return redirect("hq_journey", public_id=template.public_id)
        return _list(request, seen, design, None)
    units = [u for u in seen if services.may_run_in(user, u)]
    if request.method == "POST" and not units:
        raise PermissionDenied(_("You may not run journeys in any store."))
    offered = list(selectors.templates_offered(user))
    form = ActivateForm(
        request.POST or None,
        templates=[(str(t.public_id), t.name) for t in offered],
        units=[(str(u.public_id), u.name) for u in units],
        initial={"starts_on": timezone.localdate()},
    )
    if request.method == "POST" and form.is_valid():
        template = selectors.get_offered_template_for_user(user, form.cleaned_data["template"])
        unit = network_selectors.get_node_for_user(user, form.cleaned_data["unit"])
        try:
            run = services.journey_activate(
                actor=user,
                template=template,
                unit=unit,
                starts_on=form.cleaned_data["starts_on"],
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("The journey runs in %(unit)s.") % {"unit": unit.name})
            return redirect("journey_run", public_id=run.public_id)
    return _list(request, seen, design if designers else None, form if units and offered else None)


def _list(request, seen, design, form) -> HttpResponse:
    user = request.user
    own = [t for t in selectors.templates_designed_by_stores(user) if t.owner in seen]
    return render(
        request,
        "journeys/list.html",
        {
            "offered": selectors.templates_offered(user),
            "own": own,
            "runs": selectors.runs_for_user(user),
            "form": form,
            "design": design,
        },
    )


@login_required
def journey_run(request: AuthenticatedRequest, public_id) -> HttpResponse:
    """One store's run: its flow drawn with its own figures; POST ``action`` pause, resume
    or stop."""
    run = selectors.get_run_for_user(request.user, public_id)
    may_control = services.may_run_in(request.user, run.unit)
    is_hq = services.may_design_for_network(request.user)
    if request.method == "POST":
        if not (may_control or is_hq):
            raise PermissionDenied(_("You may not control this store's journeys."))
        action = request.POST.get("action")
        act = {
            "pause": services.journey_run_pause,
            "resume": services.journey_run_resume,
            "stop": services.journey_run_stop,
        }.get(action or "")
        if act is None:
            messages.error(request, _("Choose pause, resume or stop."))
        else:
            try:
                act(actor=request.user, run=run)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("Done."))
        return redirect("journey_run", public_id=public_id)
    runs = JourneyRun.objects.filter(pk=run.pk)
    return render(
        request,
        "journeys/run.html",
        {
            "run": run,
            "may_control": may_control,
            "is_hq": is_hq,
            **_flow_context(run.version.flow, runs),
        },
    )


# -- The journey's report and the calendar's journeys ---------------------------------------


@login_required
@require_GET
def journey_report(request: AuthenticatedRequest, public_id) -> HttpResponse:
    """A journey's report over the stores the user sees: per-step figures, each store's
    lift against the control group, their total and the network's beside it."""
    template, runs = selectors.get_reported_template_for_user(request.user, public_id)
    found = report.journey_report(request.user, template, runs)
    return render(request, "journeys/report.html", {"report": found, "template": template})


def _day_after(raw: str) -> dt.date:
    """The day after the calendar's range (its ``end``, as FullCalendar sends it: midnight of
    the first day not shown); 45 days ahead when it is missing or not a date."""
    try:
        end = parse_datetime(raw)
    except ValueError:  # well formed, not a date ("2026-13-45T00:00")
        end = None
    day = end.date() if end else timezone.localdate() + dt.timedelta(days=45)
    return min(day, dt.date.max - dt.timedelta(days=1)) + dt.timedelta(days=1)


@login_required
@require_GET
def journey_calendar(request: AuthenticatedRequest) -> HttpResponse:
    """The campaign calendar's journeys (its second source of events): each ongoing from
    its start, with no end, drawn past the range asked so it reads as still running."""
    after_end = _day_after(request.GET.get("end", ""))
    events = []
    for entry in selectors.calendar_journeys(request.user, after_end):
        if len(entry.runs) == 1:
            run = entry.runs[0]
            title = _("%(journey)s · %(store)s (journey, ongoing)") % {
                "journey": entry.template.name,
                "store": run.unit.name,
            }
            url = reverse("journey_run", args=[run.public_id])
        else:
            title = _("%(journey)s · %(n)s stores (journey, ongoing)") % {
                "journey": entry.template.name,
                "n": len(entry.runs),
            }
            url = reverse("journey_report", args=[entry.template.public_id])
        events.append(
            {
                "id": f"journey-{entry.template.public_id}",
                "title": title,
                "start": entry.starts_on.isoformat(),
                "end": after_end.isoformat(),
                "allDay": True,
                "editable": False,
                "classNames": ["journey-ongoing", *(["journey-paused"] if entry.paused else [])],
                "extendedProps": {
                    "kind": "journey",
                    "status": _("Paused") if entry.paused else _("Running"),
                    "url": url,
                },
            }
        )
    return JsonResponse(events, safe=False)


@login_required
def journey_run_texts(request: AuthenticatedRequest, public_id) -> HttpResponse:
    """The store's texts in the run's messages (the run page's section, loaded by htmx; a
    page of its own without it). GET ``preview``: a step's message as it is sent (with
    ``pending``: as the texts waiting for approval would send it), for the sandboxed frame.
    POST ``action``: choose (``step``, ``local_version``: one of the store's versions or
    '' for head office's texts), approve, reject (``comment``)."""
    run = selectors.get_run_for_user(request.user, public_id)
    if request.method == "POST":
        return _texts_post(request, run)
    if "preview" in request.GET:
        return _texts_preview(request, run, request.GET["preview"])
    context = {
        "run": run,
        "cards": texts.step_cards(run),
        "may_personalise": texts.may_personalise(request.user, run),
        "may_approve": texts.may_approve(request.user, run),
    }
    page = "journeys/_texts.html" if request.headers.get("HX-Request") else "journeys/texts.html"
    response = render(request, page, context)
    patch_vary_headers(response, ["HX-Request"])  # a fragment or a page, by that header
    return response


def _texts_post(request: AuthenticatedRequest, run: JourneyRun) -> HttpResponse:
    if not (texts.may_personalise(request.user, run) or texts.may_approve(request.user, run)):
        raise PermissionDenied(_("You may not write this store's texts."))
    action = request.POST.get("action", "")
    step = request.POST.get("step", "")
    try:
        if action == "choose":
            wanted = request.POST.get("local_version", "")
            local = (
                brand_selectors.get_local_version_for_user(request.user, wanted) if wanted else None
            )
            chosen = texts.step_texts_choose(
                actor=request.user, run=run, step_id=step, local_version=local
            )
            if chosen.status == chosen.Status.PENDING:
                messages.success(
                    request,
                    _(
                        "Your texts wait for approval; until then the step sends what was "
                        "approved before."
                    ),
                )
            else:
                messages.success(request, _("The step now sends these texts."))
        elif action in {"approve", "reject"}:
            texts.step_texts_decide(
                actor=request.user,
                run=run,
                step_id=step,
                approve=action == "approve",
                comment=request.POST.get("comment", ""),
            )
            messages.success(request, _("Done."))
        else:
            messages.error(request, _("Choose texts, approve or reject."))
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
    return redirect(reverse("journey_run", args=[run.public_id]) + "#texts")


def _texts_preview(request: AuthenticatedRequest, run: JourneyRun, step_id: str) -> HttpResponse:
    card = next((c for c in texts.step_cards(run) if c.step.id == step_id), None)
    if card is None or card.template is None or card.problem:
        return sandboxed("<p>—</p>")
    pending = card.texts.local_version if card.texts and card.texts.status == "pending" else None
    if request.GET.get("pending") and pending is not None:
        version, values = pending.version, pending.values
    else:
        content = texts.sent_content(run, card.step)
        if content is None:
            return sandboxed("<p>—</p>")
        version, values = content
    return message_preview(version, values, run.unit, card.template.channel)
