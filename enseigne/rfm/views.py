"""RFM pages: the R×F heat map and the month-to-month migration of the units a user sees,
and HQ's grid and window."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from enseigne.identity.selectors import get_identity_root_for_user, may_manage_identity
from enseigne.network import selectors as network_selectors
from enseigne.network.access import AuthenticatedRequest
from enseigne.network.models import OrgNode

from . import selectors
from .groups import CELLS, SCORES, Group, cell
from .models import MAX_WINDOW_MONTHS
from .services import rfm_policy_update


def _page(request: AuthenticatedRequest, node: OrgNode | None) -> HttpResponse:
    units = network_selectors.units_under(request.user, node)
    paths = [unit.path for unit in units]
    root = (node.path if node else (paths[0] if paths else ""))[: OrgNode.steplen]
    months = selectors.snapshot_months(paths)
    month = months[-1] if months else None
    chosen = request.GET.get("month", "")
    for candidate in months:
        if candidate.strftime("%Y-%m") == chosen:
            month = candidate
    migration = selectors.migration(paths, month) if month else None
    heat = selectors.heat_map(paths, root) if root else []
    cells = [cell for row in heat for cell in row]
    # Buyers with the same number of purchases share a frequency score, so when many bought
    # the same number of times a score can stay empty: the page says so rather than leave
    # an unexplained column of zeros.
    empty = (
        [f for f in SCORES if not any(c.records for c in cells if c.frequency == f)]
        if any(c.records for c in cells)
        else []
    )
    return render(
        request,
        "rfm/heat_map.html",
        {
            "node": node,
            "units": units if node is None or node.kind != OrgNode.Kind.UNIT else [],
            "heat": heat,
            "empty_frequencies": ", ".join(f"F{f}" for f in empty),
            "window_start": selectors.window_start_of(root) if root else None,
            "frequencies": list(SCORES),
            "months": months,
            "month": month,
            "migration": migration,
            "targets": [label for _key, label in Group.choices],
            "is_editor": may_manage_identity(request.user),
        },
    )


@login_required
def rfm_overview(request: AuthenticatedRequest) -> HttpResponse:
    """The heat map of every unit the user sees (a store manager: their store), or of one
    unit or region (``?unit=``)."""
    unit = request.GET.get("unit")
    node = network_selectors.get_node_for_user(request.user, unit) if unit else None
    return _page(request, node)


@login_required
def rfm_settings(request: AuthenticatedRequest) -> HttpResponse:
    """HQ's grid (a group for each of the 25 R×F cells) and window."""
    root = get_identity_root_for_user(request.user)
    policy = selectors.policy_of(root)
    grid = selectors.grid_of(root)
    window: object = selectors.window_months_of(root)
    errors: list[str] = []
    if request.method == "POST":
        grid = {key: request.POST.get(key, "") for key in CELLS}
        window = request.POST.get("window_months", "")
        try:
            rfm_policy_update(actor=request.user, grid=grid, window_months=window)
        except ValidationError as exc:
            errors = exc.messages
        else:
            messages.success(
                request, _("The RFM settings were saved: the scores follow in a few moments.")
            )
            return redirect("rfm_settings")
    rows = [
        {"recency": r, "cells": [(cell(r, f), grid.get(cell(r, f), "")) for f in SCORES]}
        for r in range(5, 0, -1)
    ]
    return render(
        request,
        "rfm/settings.html",
        {
            "rows": rows,
            "frequencies": list(SCORES),
            "groups": Group.choices,
            "window": window,
            "most": MAX_WINDOW_MONTHS,
            "errors": errors,
            "updated": policy.updated_at if policy else None,
        },
    )
