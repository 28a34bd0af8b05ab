"""HQ's per-person GDPR pages: export the person's file, erase the person (with a confirmation)."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from enseigne.network.capabilities import Capability

from . import gdpr


@login_required
@require_GET
def person_export(request: HttpRequest, public_id) -> HttpResponse:
    person, root = gdpr.get_person_for_hq(request.user, public_id, Capability.EXPORT_CONTACTS)
    data = gdpr.person_export(actor=request.user, person=person, root=root)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="person-{person.public_id}.json"'
    return response


@login_required
@require_http_methods(["GET", "POST"])
def person_erase(request: HttpRequest, public_id) -> HttpResponse:
    person, root = gdpr.get_person_for_hq(request.user, public_id, Capability.ERASE_CONTACTS)
    if request.method == "POST":
        count = gdpr.person_erase(actor=request.user, person=person, root=root)
        messages.success(
            request,
            _(
                "The person was erased: %(count)s records in every store. Their addresses stay "
                "blocked, as hashes, so no import brings them back."
            )
            % {"count": count},
        )
        return redirect("home")
    return render(
        request,
        "identity/gdpr_erase.html",
        {"person": person, "records": gdpr.person_records(person)},
    )
