"""Sales pages: a CSV of order lines, and HQ's product catalogue, imported the way contacts
are (upload, column mapping, dry run, the worker's progress, the row-by-row report). Thin
views over the importers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy, pgettext_lazy
from django_htmx.middleware import HtmxDetails

from enseigne.commerce import catalogue_importer, selectors
from enseigne.commerce.forms import CatalogueUploadForm
from enseigne.commerce.importer import (
    TARGET_LABELS,
    TARGETS,
    order_import_again,
    order_import_prepare,
    order_import_start,
)
from enseigne.commerce.models import CatalogueImportProblem, OrderImport, OrderImportProblem
from enseigne.contacts.forms import ImportUploadForm
from enseigne.lib.csvexport import csv_download
from enseigne.lib.imports import (
    ImportStatus,
    import_report,
    upload_form,
    upload_prepare,
)
from enseigne.lib.rowsecurity import db_scope
from enseigne.network import selectors as network_selectors
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import User


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
        OrderImportProblem.Kind.NO_BUYER,
        gettext_lazy("Orders kept without their buyer"),
        gettext_lazy(
            "These orders were recorded, without the buyer their e-mail or phone names. "
            "Correct the address in the till, or add the customer to this store's contacts."
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
    (
        OrderImportProblem.Kind.RESOLVED,
        gettext_lazy("Lines linked to their product since"),
        gettext_lazy(
            "These lines had an SKU the library did not know; a catalogue import has since "
            "added the product, and the lines now count in its category. Nothing to do."
        ),
    ),
)
# A dry run's report, in the conditional: nothing was written.
DRY_RUN_REPORT_KINDS = (
    (
        OrderImportProblem.Kind.REFUSED,
        gettext_lazy("Rows that would not be imported"),
        gettext_lazy(
            "Simulation: nothing was written. These rows would not be imported, nor the other "
            "rows of their order. Correct them in the file before importing it."
        ),
    ),
    (
        OrderImportProblem.Kind.NO_BUYER,
        gettext_lazy("Orders that would be kept without their buyer"),
        gettext_lazy(
            "Simulation: nothing was written. These orders would be recorded without the "
            "buyer their e-mail or phone names. Correct the address, or add the customer to "
            "this store's contacts, before importing the file."
        ),
    ),
    (
        OrderImportProblem.Kind.FLAGGED,
        gettext_lazy("Lines that would need checking"),
        gettext_lazy(
            "Simulation: nothing was written. These lines would be imported, but the library "
            "has no product with their SKU. Add the product to the catalogue, or correct the "
            "SKU in the till."
        ),
    ),
    (
        OrderImportProblem.Kind.RESOLVED,
        gettext_lazy("Lines whose product was added since"),
        gettext_lazy(
            "Simulation: nothing was written. A catalogue import has since added the product "
            "of these lines' SKU: imported now, they would be linked to it."
        ),
    ),
)
_DRY_RUN_KIND_LABELS: dict[str, Any] = {
    OrderImportProblem.Kind.REFUSED: gettext_lazy("Simulation: would not be imported"),
    OrderImportProblem.Kind.NO_BUYER: gettext_lazy(
        "Simulation: would be imported without its buyer"
    ),
    OrderImportProblem.Kind.FLAGGED: gettext_lazy("Simulation: would be imported, to check"),
    OrderImportProblem.Kind.RESOLVED: gettext_lazy(
        "Simulation: product added to the catalogue since"
    ),
}
CATALOGUE_REPORT_KINDS = (
    (
        CatalogueImportProblem.Kind.REFUSED,
        gettext_lazy("Rows not imported"),
        gettext_lazy(
            "These rows were not imported. Correct them in the file and import it again: "
            "products already imported are found by their SKU, not created twice."
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
    form = upload_form(ImportUploadForm, request, "unit", units)

    def prepare(data: dict, file_name: str, content: bytes) -> OrderImport:
        unit = network_selectors.get_unit_for_user(
            request.user, data["unit"], Capability.RECORD_CONVERSIONS
        )
        return order_import_prepare(
            actor=request.user, unit=unit, file_name=file_name, content=content
        )

    if request.method == "POST" and (order_import := upload_prepare(form, prepare)):
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


def _import_detail(
    request: _Request,
    imp,
    *,
    start: Callable[[dict[str, str], bool], object],
    again: Callable[[], object],
    page: str,
    targets: list[tuple[str, object]],
    report: dict,
) -> HttpResponse:
    """An import's page (sales or catalogue): the mapping form, then the progress and the
    report, polled by htmx while the worker runs (one address for the page and its
    progress, so one row in the authorization matrix); after a dry run, "import for real".
    ``page`` names its URL (``<page>_detail``) and templates (``commerce/<page>_detail.html``,
    ``commerce/_<page>_progress.html``)."""
    url_name, template = f"{page}_detail", f"commerce/{page}_detail.html"
    progress_template = f"commerce/_{page}_progress.html"
    if request.htmx and request.method == "GET":
        response = render(request, progress_template, {"imp": imp, **report})
        if imp.is_finished:
            response["HX-Refresh"] = "true"
        return response
    error = None
    if request.method == "POST" and request.POST.get("for_real"):
        try:
            started = again()
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            return redirect(url_name, public_id=started.public_id)  # type: ignore[attr-defined]
    elif request.method == "POST" and imp.status == ImportStatus.MAPPING:
        mapping = {c: request.POST.get(f"map_{i}", "") for i, c in enumerate(imp.columns)}
        try:
            start(mapping, bool(request.POST.get("dry_run")))
        except ValidationError as exc:
            error = " ".join(exc.messages)
            imp.mapping = {c: t for c, t in mapping.items() if t}
        else:
            return redirect(url_name, public_id=imp.public_id)
    columns = [(i, c, imp.mapping.get(c, "")) for i, c in enumerate(imp.columns)]
    return render(
        request,
        template,
        {"imp": imp, "columns": columns, "targets": targets, "error": error, **report},
    )


@login_required
def order_import_detail(request: _Request, public_id) -> HttpResponse:
    order_import = selectors.get_order_import_for_user(request.user, public_id)
    return _import_detail(
        request,
        order_import,
        start=lambda mapping, dry_run: order_import_start(
            actor=request.user, order_import=order_import, mapping=mapping, dry_run=dry_run
        ),
        again=lambda: order_import_again(actor=request.user, order_import=order_import),
        page="order_import",
        targets=[(key, TARGET_LABELS[key]) for key in TARGETS],
        report=import_report(
            order_import.is_finished,
            order_import.problems.all(),
            DRY_RUN_REPORT_KINDS if order_import.dry_run else REPORT_KINDS,
        ),
    )


def _report_download(
    request: _Request, problems, filename: str, row, first: list | None = None
) -> StreamingHttpResponse:
    """An import's full report as CSV, read under the user's scope (``first``: a line
    before the problems, e.g. a dry run's summary)."""

    def rows():
        if first is not None:
            yield first
        with db_scope(access_for(request.user).paths):
            for problem in problems.iterator(chunk_size=2000):
                yield row(problem)

    return csv_download(request, filename=filename, header=PROBLEM_REPORT_HEADER, rows=rows())


@login_required
def order_import_problems(request: _Request, public_id) -> StreamingHttpResponse:
    order_import = selectors.get_order_import_for_user(request.user, public_id)
    dry_run = order_import.dry_run

    def kind(problem: OrderImportProblem) -> str:
        label = _DRY_RUN_KIND_LABELS.get(problem.kind) if dry_run else None
        return str(label) if label is not None else problem.get_kind_display()

    return _report_download(
        request,
        OrderImportProblem.objects.filter(order_import=order_import),
        f"order-import-{'dry-run-' if dry_run else ''}report-{order_import.public_id}.csv",
        lambda p: [p.row_number, p.column, p.value, p.rule, p.reason_text, kind(p)],
        first=["", "", "", "", order_import.dry_run_summary, gettext("Simulation")]
        if dry_run
        else None,
    )


@login_required
def catalogue_import_page(request: _Request) -> HttpResponse:
    """HQ loads its product catalogue into the library: upload here, then the mapping, the
    dry run and the report on the import's page (products created or updated by SKU,
    shared with the chosen node's stores)."""
    nodes = network_selectors.nodes_with(request.user, Capability.MANAGE_ASSETS)
    form = upload_form(CatalogueUploadForm, request, "node", nodes)

    def prepare(data: dict, file_name: str, content: bytes):
        node = network_selectors.get_node_for_user(request.user, data["node"])
        return catalogue_importer.catalogue_import_prepare(
            actor=request.user, node=node, file_name=file_name, content=content
        )

    if request.method == "POST" and (catalogue_import := upload_prepare(form, prepare)):
        return redirect("catalogue_import_detail", public_id=catalogue_import.public_id)
    return render(
        request,
        "commerce/catalogue_import.html",
        {"form": form, "imports": selectors.catalogue_imports_for_user(request.user)[:30]},
    )


@login_required
def catalogue_import_detail(request: _Request, public_id) -> HttpResponse:
    catalogue_import = selectors.get_catalogue_import_for_user(request.user, public_id)
    return _import_detail(
        request,
        catalogue_import,
        start=lambda mapping, dry_run: catalogue_importer.catalogue_import_start(
            actor=request.user,
            catalogue_import=catalogue_import,
            mapping=mapping,
            dry_run=dry_run,
        ),
        again=lambda: catalogue_importer.catalogue_import_again(
            actor=request.user, catalogue_import=catalogue_import
        ),
        page="catalogue_import",
        targets=[
            (key, catalogue_importer.TARGET_LABELS[key]) for key in catalogue_importer.TARGETS
        ],
        report=import_report(
            catalogue_import.is_finished, catalogue_import.problems.all(), CATALOGUE_REPORT_KINDS
        ),
    )


@login_required
def catalogue_import_problems(request: _Request, public_id) -> StreamingHttpResponse:
    catalogue_import = selectors.get_catalogue_import_for_user(request.user, public_id)
    return _report_download(
        request,
        CatalogueImportProblem.objects.filter(catalogue_import=catalogue_import),
        f"catalogue-import-report-{catalogue_import.public_id}.csv",
        lambda p: [p.row_number, p.column, p.value, "", p.reason_text, p.get_kind_display()],
    )
