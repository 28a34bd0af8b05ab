"""Sales pages: a CSV of order lines imported the way contacts are (upload, column mapping,
dry run, the worker's progress, the row-by-row report). Thin views over the importer."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import ChoiceField
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy, pgettext_lazy
from django_htmx.middleware import HtmxDetails

from enseigne.brand.catalogue import catalogue_import
from enseigne.commerce import selectors
from enseigne.commerce.forms import CatalogueUploadForm
from enseigne.commerce.importer import (
    TARGET_LABELS,
    TARGETS,
    order_import_again,
    order_import_prepare,
    order_import_start,
)
from enseigne.commerce.models import OrderImport, OrderImportProblem
from enseigne.contacts.forms import ImportUploadForm
from enseigne.lib.csvexport import csv_download
from enseigne.lib.imports import check_upload_size, import_report
from enseigne.lib.rowsecurity import db_scope
from enseigne.network import selectors as network_selectors
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import User
from enseigne.network.views import form_errors


class _Request(HttpRequest):
    """A request past ``login_required`` and django-htmx's middleware."""

    user: User
    htmx: HtmxDetails


REPORT_KINDS = (
    (
        OrderImportProblem.Kind.REFUSED,
        gettext_lazy("Rows not imported"),
        gettext_lazy(
            "These rows were not imported, nor the other rows of their order. Correct them in "
            "the file and import it again: orders already recorded are not counted twice."
        ),
    ),
    (
        OrderImportProblem.Kind.FLAGGED,
        gettext_lazy("Lines to check"),
        gettext_lazy(
            "These lines were imported, but the library has no product with their SKU. Add "
            "the product to the catalogue, or correct the SKU in the till."
        ),
    ),
)
PROBLEM_REPORT_HEADER = [
    pgettext_lazy("CSV column", "Row"),
    pgettext_lazy("CSV column", "Column"),
    pgettext_lazy("CSV column", "Value"),
    pgettext_lazy("CSV column", "Rule"),
    pgettext_lazy("CSV column", "Reason"),
    pgettext_lazy("CSV column", "Kind"),
]


@login_required
def order_import_list(request: _Request) -> HttpResponse:
    units = network_selectors.units_with(request.user, Capability.RECORD_CONVERSIONS)
    choices = [(str(u.public_id), u.name) for u in units]
    if not choices:
        raise PermissionDenied
    form = ImportUploadForm(
        request.POST or None, request.FILES or None, initial={"unit": choices[0][0]}
    )
    unit_field = form.fields["unit"]
    assert isinstance(unit_field, ChoiceField)
    unit_field.choices = choices
    if request.method == "POST" and form.is_valid():
        unit = network_selectors.get_unit_for_user(
            request.user, form.cleaned_data["unit"], Capability.RECORD_CONVERSIONS
        )
        upload = form.cleaned_data["file"]
        try:
            check_upload_size(upload.size)
            order_import = order_import_prepare(
                actor=request.user, unit=unit, file_name=upload.name, content=upload.read()
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            return redirect("order_import_detail", public_id=order_import.public_id)
    return render(
        request,
        "commerce/order_imports.html",
        {
            "form": form,
            "imports": selectors.order_imports_for_user(request.user)[:30],
            "can_import_catalogue": access_for(request.user).can_anywhere(Capability.MANAGE_ASSETS),
        },
    )


@login_required
def order_import_detail(request: _Request, public_id) -> HttpResponse:
    """The mapping form, then the progress and report; polled by htmx while the worker runs
    (one address for the page and its progress, so one row in the authorization matrix)."""
    order_import = selectors.get_order_import_for_user(request.user, public_id)
    if request.htmx and request.method == "GET":
        return _progress(request, order_import)
    error = None
    if request.method == "POST" and request.POST.get("for_real"):
        try:
            again = order_import_again(actor=request.user, order_import=order_import)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            return redirect("order_import_detail", public_id=again.public_id)
    elif request.method == "POST" and order_import.status == OrderImport.Status.MAPPING:
        mapping = {c: request.POST.get(f"map_{i}", "") for i, c in enumerate(order_import.columns)}
        try:
            order_import_start(
                actor=request.user,
                order_import=order_import,
                mapping=mapping,
                dry_run=bool(request.POST.get("dry_run")),
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
            order_import.mapping = {c: t for c, t in mapping.items() if t}
        else:
            return redirect("order_import_detail", public_id=order_import.public_id)
    columns = [(i, c, order_import.mapping.get(c, "")) for i, c in enumerate(order_import.columns)]
    return render(
        request,
        "commerce/order_import_detail.html",
        {
            "imp": order_import,
            "columns": columns,
            "targets": [(key, TARGET_LABELS[key]) for key in TARGETS],
            "error": error,
            **_report(order_import),
        },
    )


def _report(order_import: OrderImport) -> dict:
    return import_report(order_import.is_finished, order_import.problems.all(), REPORT_KINDS)


def _progress(request: _Request, order_import: OrderImport) -> HttpResponse:
    response = render(
        request,
        "commerce/_order_import_progress.html",
        {"imp": order_import, **_report(order_import)},
    )
    if order_import.is_finished:
        response["HX-Refresh"] = "true"
    return response


@login_required
def order_import_problems(request: _Request, public_id) -> StreamingHttpResponse:
    order_import = selectors.get_order_import_for_user(request.user, public_id)
    problems = OrderImportProblem.objects.filter(order_import=order_import)

    def rows():
        with db_scope(access_for(request.user).paths):
            for p in problems.iterator(chunk_size=2000):
                yield [p.row_number, p.column, p.value, p.rule, p.reason, p.get_kind_display()]

    return csv_download(
        request,
        filename=f"order-import-report-{order_import.public_id}.csv",
        header=PROBLEM_REPORT_HEADER,
        rows=rows(),
    )


@login_required
def catalogue_import_page(request: _Request) -> HttpResponse:
    """HQ loads its product catalogue into the library: products created or updated by
    SKU, shared with the chosen node's stores; bad rows reported, the others imported."""
    nodes = network_selectors.nodes_with(request.user, Capability.MANAGE_ASSETS)
    choices = [(str(n.public_id), n.name) for n in nodes]
    if not choices:
        raise PermissionDenied
    form = CatalogueUploadForm(
        request.POST or None, request.FILES or None, initial={"node": choices[0][0]}
    )
    node_field = form.fields["node"]
    assert isinstance(node_field, ChoiceField)
    node_field.choices = choices
    result = None
    if request.method == "POST" and form.is_valid():
        node = network_selectors.get_node_for_user(request.user, form.cleaned_data["node"])
        upload = form.cleaned_data["file"]
        try:
            check_upload_size(upload.size)
            result = catalogue_import(
                actor=request.user,
                node=node,
                own=False,
                file_name=upload.name,
                content=upload.read(),
                dry_run=form.cleaned_data["dry_run"],
            )
        except ValidationError as exc:
            form_errors(form, exc)
    return render(
        request,
        "commerce/catalogue_import.html",
        {
            "form": form,
            "result": result,
            "dry_run": form.is_bound and form.cleaned_data.get("dry_run"),
        },
    )
