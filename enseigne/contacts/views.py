"""Contact pages: thin views over selectors and services."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from enseigne.contacts import selectors, services
from enseigne.contacts.fields import builder_labels
from enseigne.contacts.forms import (
    ConsentForm,
    ContactForm,
    ImportUploadForm,
    NewContactForm,
    SegmentForm,
)
from enseigne.contacts.import_services import import_prepare, import_start
from enseigne.contacts.importer import import_target_choices
from enseigne.contacts.models import ContactImport, ImportRejection, Segment
from enseigne.contacts.segments import (
    field_catalogue,
    segment_contacts,
    segment_count,
    segment_sizes,
)
from enseigne.lib.csvexport import csv_download
from enseigne.lib.imports import import_report, upload_form, upload_prepare
from enseigne.lib.paging import BoundedPaginator
from enseigne.lib.rowsecurity import db_scope
from enseigne.network import selectors as network_selectors
from enseigne.network.access import access_for, path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.views import form_errors


def _unit_choices(user, capability: str):
    return [(str(u.public_id), u.name) for u in network_selectors.units_with(user, capability)]


@login_required
def unit_home(request: HttpRequest, public_id) -> HttpResponse:
    unit = network_selectors.get_unit_for_user(request.user, public_id)
    access = access_for(request.user)
    return render(
        request,
        "network/unit_home.html",
        {
            "unit": unit,
            "stats": selectors.unit_contact_stats(request.user, unit),
            "can_edit": access.can(Capability.MANAGE_NETWORK, unit),
            "can_import": access.can(Capability.IMPORT_CONTACTS, unit),
            "can_add": access.can(Capability.EDIT_CONTACTS, unit),
        },
    )


def _filtered_contacts(request: HttpRequest, segment: Segment | None = None):
    """The list's and the export's contacts: search, unit, tag, consent and ``segment``."""
    unit = None
    unit_id = request.GET.get("unit", "")
    if unit_id:
        unit = network_selectors.get_node_for_user(request.user, unit_id)
    contacts = selectors.contact_search(
        request.user,
        query=request.GET.get("q", ""),
        unit=unit,
        tag=request.GET.get("tag", "").strip().lower(),
        consent=request.GET.get("consent", ""),
    )
    if segment is not None:
        members = segment_contacts(request.user, segment.rules, owner=segment.owner)
        contacts = contacts.filter(pk__in=members.values("pk"))
    return contacts


def _segment_filter(request: HttpRequest) -> Segment | None:
    """``?segment=``: the members of one of the user's segments (404 for anyone else's)."""
    public_id = request.GET.get("segment", "")
    return selectors.get_segment_for_user(request.user, public_id) if public_id else None


@login_required
def contact_list(request: HttpRequest) -> HttpResponse:
    segment = _segment_filter(request)
    contacts = _filtered_contacts(request, segment)
    paginator = BoundedPaginator(contacts, settings.CONTACTS_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    access = access_for(request.user)
    context = {
        "page": page,
        "query": request.GET.urlencode(),
        "filters": request.GET,
        "units": network_selectors.units_for_user(request.user),
        "can_export": access.can_anywhere(Capability.EXPORT_CONTACTS),
        "can_add": bool(network_selectors.units_with(request.user, Capability.EDIT_CONTACTS)),
        "segment": segment,
    }
    template = "contacts/_rows.html" if request.htmx else "contacts/list.html"
    return render(request, template, context)


# Column titles in the reader's language: the exports are opened in a spreadsheet by people.
CONTACT_EXPORT_HEADER = [
    pgettext_lazy("CSV column", "Identifier"),
    pgettext_lazy("CSV column", "Unit"),
    pgettext_lazy("CSV column", "Email"),
    pgettext_lazy("CSV column", "Phone"),
    pgettext_lazy("CSV column", "First name"),
    pgettext_lazy("CSV column", "Last name"),
    pgettext_lazy("CSV column", "Birthday"),
    pgettext_lazy("CSV column", "Language"),
    pgettext_lazy("CSV column", "Email consent"),
    pgettext_lazy("CSV column", "SMS consent"),
    pgettext_lazy("CSV column", "Tags"),
    pgettext_lazy("CSV column", "Created on"),
]
REJECTION_REPORT_HEADER = [
    pgettext_lazy("CSV column", "Row"),
    pgettext_lazy("CSV column", "Column"),
    pgettext_lazy("CSV column", "Value"),
    pgettext_lazy("CSV column", "Reason"),
    pgettext_lazy("CSV column", "Kind"),
]


@login_required
def contact_export(request: HttpRequest) -> StreamingHttpResponse:
    if not access_for(request.user).can_anywhere(Capability.EXPORT_CONTACTS):
        raise PermissionDenied
    export_paths = access_for(request.user).paths_with(Capability.EXPORT_CONTACTS)
    contacts = _filtered_contacts(request, _segment_filter(request)).filter(
        path_filter(export_paths)
    )
    services.export_recorded(actor=request.user, count=contacts.count())

    def rows():
        # The response streams after the view returns: read under the same scope.
        with db_scope(access_for(request.user).paths):
            for c in contacts.prefetch_related("tags").iterator(chunk_size=2000):
                yield [
                    c.public_id,
                    c.unit.code,
                    c.email,
                    c.phone,
                    c.first_name,
                    c.last_name,
                    c.birthday,
                    c.language,
                    c.email_consent,
                    c.sms_consent,
                    " ".join(t.name for t in c.tags.all()),
                    c.created_at.isoformat(),
                ]

    return csv_download(request, filename="contacts.csv", header=CONTACT_EXPORT_HEADER, rows=rows())


@login_required
def contact_new(request: HttpRequest) -> HttpResponse:
    choices = _unit_choices(request.user, Capability.EDIT_CONTACTS)
    if not choices:
        raise PermissionDenied
    form = NewContactForm(request.POST or None, initial={"unit": choices[0][0]})
    form.fields["unit"].choices = choices
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        unit = network_selectors.get_unit_for_user(
            request.user, data["unit"], Capability.EDIT_CONTACTS
        )
        consents = {ch: "granted" for ch in ("email", "sms") if data[f"{ch}_consent"]}
        try:
            contact = services.contact_create(
                actor=request.user,
                unit=unit,
                data={k: data[k] for k in services.EDITABLE_FIELDS},
                tags=data["tags"].split(","),
                consents=consents,
                consent_source="in_store",
                consent_wording=data["consent_wording"],
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("The contact was added."))
            return redirect("contact_detail", public_id=contact.public_id)
    return render(request, "contacts/form.html", {"form": form, "title": _("New contact")})


@login_required
def contact_detail(request: HttpRequest, public_id) -> HttpResponse:
    contact = selectors.get_contact_for_user(request.user, public_id)
    access = access_for(request.user)
    return render(
        request,
        "contacts/detail.html",
        {
            "contact": contact,
            "events": contact.consent_events.select_related("recorded_by"),
            "tags": contact.tags.order_by("name"),
            "suppressions": selectors.contact_suppressions(contact),
            "consent_form": ConsentForm(),
            "can_edit": access.can(Capability.EDIT_CONTACTS, contact.unit),
            "can_erase": access.can(Capability.ERASE_CONTACTS, contact.unit),
            "can_export": access.can(Capability.EXPORT_CONTACTS, contact.unit),
        },
    )


@login_required
def contact_edit(request: HttpRequest, public_id) -> HttpResponse:
    contact = selectors.get_contact_for_user(request.user, public_id, Capability.EDIT_CONTACTS)
    initial = {f: getattr(contact, f) for f in services.EDITABLE_FIELDS}
    initial["tags"] = ", ".join(t.name for t in contact.tags.all())
    form = ContactForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.contact_update(
                actor=request.user,
                contact=contact,
                data={k: data[k] for k in services.EDITABLE_FIELDS},
                tags=data["tags"].split(","),
            )
        except ValidationError as exc:
            form_errors(form, exc)
        else:
            messages.success(request, _("The contact was saved."))
            return redirect("contact_detail", public_id=contact.public_id)
    return render(
        request,
        "contacts/form.html",
        {"form": form, "contact": contact, "title": _("Edit contact")},
    )


@login_required
@require_POST
def contact_consent(request: HttpRequest, public_id) -> HttpResponse:
    contact = selectors.get_contact_for_user(request.user, public_id, Capability.EDIT_CONTACTS)
    form = ConsentForm(request.POST)
    if form.is_valid():
        try:
            services.consent_record(
                actor=request.user,
                contact=contact,
                channel=form.cleaned_data["channel"],
                status=form.cleaned_data["status"],
                source=form.cleaned_data["source"],
                wording_version=form.cleaned_data["wording_version"],
                ip_address=request.META.get("REMOTE_ADDR"),
                user_agent=request.headers.get("User-Agent", ""),
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("The consent was recorded."))
    return redirect("contact_detail", public_id=contact.public_id)


@login_required
def contact_data(request: HttpRequest, public_id) -> JsonResponse:
    contact = selectors.get_contact_for_user(request.user, public_id, Capability.EXPORT_CONTACTS)
    services.export_recorded(actor=request.user, count=1, contact=contact)
    response = JsonResponse(selectors.contact_data_export(contact), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="contact-{contact.public_id}.json"'
    return response


@login_required
def contact_erase(request: HttpRequest, public_id) -> HttpResponse:
    contact = selectors.get_contact_for_user(request.user, public_id, Capability.ERASE_CONTACTS)
    if request.method == "POST":
        services.contact_erase(actor=request.user, contact=contact)
        messages.success(
            request,
            _(
                "The contact was erased. Their address stays blocked, as a hash, so no import brings them back."
            ),
        )
        return redirect("contact_list")
    return render(request, "contacts/erase.html", {"contact": contact})


@login_required
def import_list(request: HttpRequest) -> HttpResponse:
    units = network_selectors.units_with(request.user, Capability.IMPORT_CONTACTS)
    form = upload_form(ImportUploadForm, request, "unit", units)

    def prepare(data: dict, file_name: str, content: bytes) -> ContactImport:
        unit = network_selectors.get_unit_for_user(
            request.user, data["unit"], Capability.IMPORT_CONTACTS
        )
        return import_prepare(actor=request.user, unit=unit, file_name=file_name, content=content)

    if request.method == "POST" and (contact_import := upload_prepare(form, prepare)):
        return redirect("import_detail", public_id=contact_import.public_id)
    return render(
        request,
        "contacts/imports.html",
        {
            "form": form,
            "imports": selectors.imports_for_user(request.user)[:30],
        },
    )


@login_required
def import_detail(request: HttpRequest, public_id) -> HttpResponse:
    contact_import = selectors.get_import_for_user(request.user, public_id)
    targets = import_target_choices()
    error = None
    if request.method == "POST" and contact_import.status == ContactImport.Status.MAPPING:
        mapping = {
            c: request.POST.get(f"map_{i}", "") for i, c in enumerate(contact_import.columns)
        }
        try:
            import_start(
                actor=request.user,
                contact_import=contact_import,
                mapping=mapping,
                consent_channels=request.POST.getlist("consent_channels"),
                consent_wording=request.POST.get("consent_wording", ""),
                tags=request.POST.get("tags", "").split(","),
            )
        except ValidationError as exc:
            error = " ".join(exc.messages)
            contact_import.mapping = {c: t for c, t in mapping.items() if t}
        else:
            return redirect("import_detail", public_id=contact_import.public_id)
    columns = [
        (i, c, contact_import.mapping.get(c, "")) for i, c in enumerate(contact_import.columns)
    ]
    return render(
        request,
        "contacts/import_detail.html",
        {
            "imp": contact_import,
            "columns": columns,
            "targets": targets,
            "error": error,
            **_import_report(contact_import),
        },
    )


# Each kind of report line: its heading and what the store manager should do about it.
IMPORT_REPORT_KINDS = (
    (
        ImportRejection.Kind.REFUSED,
        gettext_lazy("Rows not imported"),
        gettext_lazy(
            "These rows were not imported. Correct them in the file and import it again: rows "
            "already imported are not duplicated."
        ),
    ),
    (
        ImportRejection.Kind.FIELD_SKIPPED,
        gettext_lazy("Values left out"),
        gettext_lazy(
            "These contacts were imported without the value shown, which could not be read. "
            "Correct it in the file and import it again to complete them, or edit the contact."
        ),
    ),
    (
        ImportRejection.Kind.POSSIBLE_DUPLICATE,
        gettext_lazy("Possible duplicates to check"),
        gettext_lazy(
            "These contacts were imported, but their phone number already belongs to another "
            "contact, so it was not added to them. Check whether they are the same person."
        ),
    ),
)


def _import_report(contact_import: ContactImport) -> dict:
    """The finished import's report, by kind: rows not imported, values left out, possible
    duplicates (the first lines of each, and how many there are)."""
    return import_report(
        contact_import.is_finished, contact_import.rejections.all(), IMPORT_REPORT_KINDS
    )


@login_required
def import_progress(request: HttpRequest, public_id) -> HttpResponse:
    contact_import = selectors.get_import_for_user(request.user, public_id)
    response = render(
        request,
        "contacts/_import_progress.html",
        {
            "imp": contact_import,
            **_import_report(contact_import),
        },
    )
    if contact_import.is_finished and request.htmx:
        response["HX-Refresh"] = "true"
    return response


@login_required
def import_rejections(request: HttpRequest, public_id) -> StreamingHttpResponse:
    contact_import = selectors.get_import_for_user(request.user, public_id)
    rejections = ImportRejection.objects.filter(contact_import=contact_import)

    def rows():
        with db_scope(access_for(request.user).paths):
            for r in rejections.iterator(chunk_size=2000):
                yield [r.row_number, r.field, r.value, r.reason_text, r.get_kind_display()]

    return csv_download(
        request,
        filename=f"rejected-rows-{contact_import.public_id}.csv",
        header=REJECTION_REPORT_HEADER,
        rows=rows(),
    )


@login_required
def segment_list(request: HttpRequest) -> HttpResponse:
    segments = list(selectors.segments_for_user(request.user))
    sizes = segment_sizes(request.user, segments)
    for segment in segments:
        segment.size = sizes[segment.pk]
    return render(
        request,
        "contacts/segments.html",
        {
            "segments": segments,
            "can_create": access_for(request.user).can_anywhere(Capability.MANAGE_SEGMENTS),
        },
    )


def _owner_choices(user):
    access = access_for(user)
    return [
        (str(n.public_id), n.name)
        for n in network_selectors.nodes_for_user(user)
        if access.can(Capability.MANAGE_SEGMENTS, n)
    ]


@login_required
def segment_edit(request: HttpRequest, public_id=None) -> HttpResponse:
    segment = None
    if public_id is not None:
        segment = selectors.get_segment_for_user(request.user, public_id)
    choices = _owner_choices(request.user)
    can_save = (
        bool(choices)
        if segment is None
        else access_for(request.user).can(Capability.MANAGE_SEGMENTS, segment.owner)
    )
    if segment is None and not can_save:
        raise PermissionDenied
    initial = {"rules": {"match": "all", "rules": []}, "owner": choices[0][0] if choices else ""}
    if segment is not None:
        initial = {
            "name": segment.name,
            "description": segment.description,
            "rules": segment.rules,
            "owner": str(segment.owner.public_id),
        }
    form = SegmentForm(request.POST or None, initial=initial)
    form.fields["owner"].choices = choices or [
        (initial["owner"], segment.owner.name if segment else "")
    ]
    if request.method == "POST":
        if not can_save:
            raise PermissionDenied
        if form.is_valid():
            owner = network_selectors.get_node_for_user(request.user, form.cleaned_data["owner"])
            try:
                saved = services.segment_save(
                    actor=request.user,
                    owner=owner,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    rules=form.cleaned_data["rules"],
                    segment=segment,
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                messages.success(request, _("The segment was saved."))
                return redirect("segment_detail", public_id=saved.public_id)
    rules = form.data.get("rules") if form.is_bound else json.dumps(initial["rules"])
    return render(
        request,
        "contacts/segment_edit.html",
        {
            "form": form,
            "segment": segment,
            "can_save": can_save,
            "rules_json": rules,
            "catalogue": field_catalogue(request.user),
            "builder_labels": {**builder_labels(), "countUrl": reverse("segment_count")},
            "units": [
                (str(u.public_id), u.name) for u in network_selectors.nodes_for_user(request.user)
            ],
        },
    )


@login_required
@require_POST
def segment_delete(request: HttpRequest, public_id) -> HttpResponse:
    segment = selectors.get_segment_for_user(request.user, public_id, Capability.MANAGE_SEGMENTS)
    services.segment_delete(actor=request.user, segment=segment)
    messages.success(request, _("The segment was deleted."))
    return redirect("segment_list")


@login_required
@require_POST
def segment_preview_count(request: HttpRequest) -> HttpResponse:
    """Live count while editing: the builder posts its rule tree here."""
    try:
        rules = json.loads(request.POST.get("rules", ""))
        count = segment_count(request.user, rules)
    except (ValueError, ValidationError) as exc:
        message = (
            " ".join(exc.messages)
            if isinstance(exc, ValidationError)
            else _("The rules are not valid JSON.")
        )
        return render(request, "contacts/_segment_count.html", {"error": message})
    return render(request, "contacts/_segment_count.html", {"count": count})
