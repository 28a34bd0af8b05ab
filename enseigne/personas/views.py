"""Personas' pages: HQ's list, editor and order; everyone's counts for the units they see."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from enseigne.contacts.fields import builder_labels
from enseigne.contacts.segments import field_catalogue
from enseigne.identity.selectors import may_manage_identity
from enseigne.network import selectors as network_selectors
from enseigne.network.access import AuthenticatedRequest
from enseigne.network.models import OrgNode

from . import selectors, services
from .forms import PersonaForm
from .models import Persona, PersonaCount
from .services import PERSONA_FIELDS


def _counts_context(user, personas: list, node: OrgNode | None) -> dict[str, Any]:
    units = network_selectors.units_under(user, node)
    paths = [unit.path for unit in units]
    month, counts = selectors.unit_counts(paths)
    rows: list[dict[str, Any]] = [
        {"unit": unit, "counts": [counts.get((unit.path, p.pk), 0) for p in personas]}
        for unit in units
    ]
    evolution = selectors.evolution(paths)
    return {
        "personas": personas,
        "counts_month": month,
        "rows": rows,
        "totals": [sum(row["counts"][i] for row in rows) for i in range(len(personas))],
        "has_counts": bool(counts) or bool(evolution.months),
        "evolution_chart": evolution.series(personas),
        "months": len(evolution.months),
    }


@login_required
def persona_overview(request: AuthenticatedRequest) -> HttpResponse:
    """The personas of the user's network and their counts in the units the user sees
    (``?unit=``: under one unit or region, 404 outside the user's); HQ also edits,
    reorders and recomputes them (POST), and sees the network's persons."""
    user = request.user
    if request.method == "POST":
        return _recompute(request)
    personas = list(selectors.personas_of_user_network(user))
    if request.GET.get("unit"):
        node = network_selectors.get_node_for_user(user, request.GET["unit"])
        context = _counts_context(user, personas, node)
        return render(request, "personas/unit.html", {**context, "node": node})
    is_editor = may_manage_identity(user)
    context = _counts_context(user, personas, None)
    if is_editor:
        root = selectors.get_personas_root_for_user(user)
        people = selectors.evolution([root], PersonaCount.Level.PERSON)
        context["listing"] = [
            (p, people.latest(p), records)
            for p, records in zip(personas, context["totals"], strict=True)
        ]
        context["persons_chart"] = people.series(personas)
    return render(request, "personas/overview.html", {**context, "is_editor": is_editor})


def _recompute(request: AuthenticatedRequest) -> HttpResponse:
    selectors.get_personas_root_for_user(request.user)
    services.personas_recompute(actor=request.user)
    messages.success(
        request, _("The personas are being recomputed: the counts follow in a few moments.")
    )
    return redirect("persona_overview")


@login_required
def persona_edit(request: AuthenticatedRequest, public_id=None) -> HttpResponse:
    selectors.get_personas_root_for_user(request.user)
    persona = None
    if public_id is not None:
        persona = selectors.get_persona_for_user(request.user, public_id)
    initial: dict[str, object] = {"rules": {"match": "all", "rules": []}}
    if persona is not None:
        initial = {"name": persona.name, "description": persona.description, "rules": persona.rules}
    action = request.POST.get("action", "save")
    if persona is not None and action in {"up", "down", "delete"}:
        return _act(request, persona, action)
    form = PersonaForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.persona_save(
                actor=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                rules=form.cleaned_data["rules"],
                persona=persona,
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            messages.success(
                request,
                _(
                    "The persona was saved. The personas are being recomputed: the counts follow in a few moments."
                ),
            )
            return redirect("persona_detail", public_id=saved.public_id)
    rules = form.data.get("rules") if form.is_bound else json.dumps(initial["rules"])
    catalogue = [f for f in field_catalogue(request.user) if f["field"] not in PERSONA_FIELDS]
    return render(
        request,
        "personas/edit.html",
        {
            "form": form,
            "persona": persona,
            "rules_json": rules,
            "catalogue": catalogue,
            "builder_labels": {**builder_labels(), "countUrl": reverse("segment_count")},
            "units": [
                (str(u.public_id), u.name) for u in network_selectors.nodes_for_user(request.user)
            ],
        },
    )


def _act(request: AuthenticatedRequest, persona: Persona, action: str) -> HttpResponse:
    if action == "delete":
        services.persona_delete(actor=request.user, persona=persona)
        messages.success(
            request,
            _(
                "The persona was deleted. The personas are being recomputed: the counts follow in a few moments."
            ),
        )
    else:
        step = -1 if action == "up" else 1
        services.persona_move(actor=request.user, persona=persona, step=step)
        messages.success(
            request,
            _(
                "The order was changed. The personas are being recomputed: the counts follow in a few moments."
            ),
        )
    return redirect("persona_overview")
