"""Brand-kit pages: the asset library, HQ's template editor, units' zone forms, previews.

Previews are whole e-mails written partly by units, so they are never part of an
Enseigne page: they load in a sandboxed iframe from an endpoint whose response carries
a CSP that forbids every script, plugin, form and frame (and is itself ``sandbox``).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.static import serve

from enseigne.brand import asset_services, selectors, services
from enseigne.brand import variants as zone_variants
from enseigne.brand.forms import (
    ContentForm,
    GuardrailsForm,
    TemplateForm,
    UploadForm,
    content_items,
    owner_choices,
)
from enseigne.brand.library import ZONE_KINDS
from enseigne.brand.models import Asset, Guardrails, LocalVersion, Template
from enseigne.brand.previews import email_preview, sms_preview
from enseigne.brand.sms import measure
from enseigne.contacts.models import Channel
from enseigne.network import selectors as network_selectors
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode
from enseigne.network.views import form_errors

PREVIEW_CSP = (
    "default-src 'none'; img-src 'self' http: https:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox"
)
PAGE_SIZE = 48


def message_preview(
    version, values: dict, unit: OrgNode, channel: str, persona: str | None = None
) -> HttpResponse:
    """A unit's message, with a sample contact (of ``persona``: head office's variants for it),
    for a sandboxed preview frame (SMS as plain text)."""
    try:
        if channel == Channel.SMS:
            return sandboxed(
                "<pre style='white-space:pre-wrap;font:16px sans-serif'>"
                f"{escape(sms_preview(version, values, unit, persona=persona))}</pre>"
            )
        html, _text = email_preview(version, values, unit, persona=persona)
    except ValidationError as exc:
        return _preview_error(exc.messages)
    return sandboxed(html)


def sandboxed(html: str, status: int = 200, *, links_open_tabs: bool = False) -> HttpResponse:
    """``links_open_tabs``: the message's links open in a new, unsandboxed tab, as in a mail client
    (its own content still runs no script, submits no form and embeds no frame)."""
    response = HttpResponse(html, status=status)
    response["Content-Security-Policy"] = (
        PREVIEW_CSP + " allow-popups allow-popups-to-escape-sandbox"
        if links_open_tabs
        else PREVIEW_CSP
    )
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _preview_error(errors: list[str]) -> HttpResponse:
    return sandboxed(render_to_string("brand/preview_error.html", {"errors": errors}))


# ---------------------------------------------------------------- asset library


def _owners(user) -> list[tuple[str, str]]:
    hq_nodes = [
        n
        for n in network_selectors.nodes_with(user, Capability.MANAGE_ASSETS)
        if n.kind != OrgNode.Kind.UNIT
    ]
    return owner_choices(hq_nodes, network_selectors.units_with(user, Capability.ADD_UNIT_ASSETS))


def _owner_node(user, value: str) -> tuple[OrgNode, bool]:
    scope, _sep, public_id = value.partition(":")
    if scope == "own":
        return network_selectors.get_unit_for_user(user, public_id), True
    return network_selectors.get_node_for_user(user, public_id), False


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@login_required
def asset_library(request: HttpRequest) -> HttpResponse:
    owners = _owners(request.user)
    form = UploadForm(owners=owners)
    if request.method == "POST":
        if not owners:
            raise PermissionDenied
        form = UploadForm(request.POST, request.FILES, owners=owners)
        if form.is_valid():
            data = form.cleaned_data
            node, own = _owner_node(request.user, data["owner"])
            upload = data["file"]
            try:
                asset = asset_services.asset_upload(
                    actor=request.user,
                    node=node,
                    own=own,
                    kind=data["kind"],
                    name=data["name"],
                    file_name=upload.name,
                    data=upload.read(),
                    folder=data["folder"],
                    tags=data["tags"],
                    variant=data["variant"],
                )
            except ValidationError as exc:
                form_errors(form, exc)
            else:
                if _wants_json(request):
                    return JsonResponse(
                        {"ok": True, "url": reverse("asset_detail", args=[asset.public_id])},
                        status=201,
                    )
                messages.success(
                    request, _("“%(name)s” was added to the library.") % {"name": asset.name}
                )
                return redirect("asset_library")
        if _wants_json(request):
            errors = [str(e) for field in form.errors.values() for e in field]
            return JsonResponse({"ok": False, "errors": errors}, status=422)
    visible = selectors.assets_for_user(request.user)
    filters = {key: request.GET.get(key, "").strip() for key in ("q", "kind", "folder", "tag")}
    found = selectors.asset_search(visible, **filters)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    usage = selectors.usage_counts([a.pk for a in page])
    for asset in page:
        asset.usage = usage.get(asset.pk, 0)
    return render(
        request,
        "brand/assets.html",
        {
            "page": page,
            "filters": filters,
            "folders": selectors.asset_folders(visible),
            "kinds": Asset.Kind.choices,
            "form": form if owners else None,
            "max_mb": settings.ASSET_MAX_UPLOAD_BYTES // 1048576,
        },
    )


@login_required
def asset_new(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in (Asset.Kind.TEXT, Asset.Kind.OFFER, Asset.Kind.PRODUCT):
        raise Http404("No such kind.")
    owners = _owners(request.user)
    if not owners:
        raise PermissionDenied
    form = ContentForm(request.POST or None, request.FILES or None, kind=kind, owners=owners)
    if request.method == "POST" and form.is_valid():
        node, own = _owner_node(request.user, form.cleaned_data["owner"])
        picture = form.cleaned_data.get("image")
        try:
            asset = asset_services.asset_create(
                actor=request.user,
                node=node,
                own=own,
                kind=kind,
                name=form.cleaned_data["name"],
                data=form.content(),
                folder=form.cleaned_data["folder"],
                tags=form.cleaned_data["tags"],
                image=(picture.name, picture.read()) if picture else None,
            )
        except ValidationError as exc:
            _content_errors(form, exc)
        else:
            messages.success(
                request, _("“%(name)s” was added to the library.") % {"name": asset.name}
            )
            return redirect("asset_detail", asset.public_id)
    return render(
        request, "brand/asset_form.html", {"form": form, "kind_label": Asset.Kind(kind).label}
    )


def _content_errors(form, exc: ValidationError) -> None:
    """The service names an item's fields as stored (``price``); the form calls them ``data_price``."""
    if hasattr(exc, "error_dict"):
        exc = ValidationError(
            {k if k in form.fields else f"data_{k}": v for k, v in exc.message_dict.items()}
        )
    form_errors(form, exc)


@login_required
def asset_detail(request: HttpRequest, public_id) -> HttpResponse:
    asset = selectors.get_asset_for_user(request.user, public_id)
    can_change = asset_services.can_change(request.user, asset)
    form = None
    if asset.kind in asset_services.CONTENT_FIELDS:
        initial = {
            "name": asset.name,
            "folder": asset.folder,
            "tags": ", ".join(asset.tags),
            **{f"data_{k}": v for k, v in (asset.data or {}).items()},
        }
        form = ContentForm(
            request.POST or None, kind=asset.kind, owners=[], with_owner=False, initial=initial
        )
    if request.method == "POST":
        if not can_change:
            raise PermissionDenied
        if form is None:  # images: name, folder and tags only
            data = {k: request.POST.get(k, "") for k in ("name", "folder", "tags")}
            asset_services.asset_update(actor=request.user, asset=asset, **data)
            messages.success(request, _("Saved."))
            return redirect("asset_detail", asset.public_id)
        if form.is_valid():
            try:
                asset_services.asset_update(
                    actor=request.user,
                    asset=asset,
                    name=form.cleaned_data["name"],
                    folder=form.cleaned_data["folder"],
                    tags=form.cleaned_data["tags"],
                    data=form.content(),
                )
            except ValidationError as exc:
                _content_errors(form, exc)
            else:
                messages.success(request, _("Saved. Local versions that use it show the change."))
                return redirect("asset_detail", asset.public_id)
    return render(
        request,
        "brand/asset_detail.html",
        {
            "asset": asset,
            "content": content_items(asset.data),
            "form": form,
            "can_change": can_change,
            "usage": selectors.usage_counts([asset.pk]).get(asset.pk, 0),
            "email_url": asset.email_rendition.url if asset.email_rendition else "",
        },
    )


@login_required
@require_POST
def asset_delete(request: HttpRequest, public_id) -> HttpResponse:
    asset = selectors.get_asset_for_user(request.user, public_id)
    try:
        asset_services.asset_delete(actor=request.user, asset=asset)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("asset_detail", asset.public_id)
    messages.success(request, _("“%(name)s” was removed from the library.") % {"name": asset.name})
    return redirect("asset_library")


@require_GET
def asset_file(request: HttpRequest, path: str) -> HttpResponse:
    """Library files for e-mails (public by nature: recipients load them). Local storage only."""
    if not isinstance(default_storage, FileSystemStorage) or ".." in Path(path).parts:
        raise Http404
    response = serve(request, f"assets/{path}", document_root=settings.MEDIA_ROOT)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


# ---------------------------------------------------------------- templates


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    access = access_for(request.user)
    # The list shows names and version numbers: the versions' sources and compiled HTML
    # (tens of kB each, twice per local version) stay in the database.
    templates = (
        selectors.templates_for_user(request.user)
        .select_related("current")
        .only("public_id", "channel", "name", "description", "current__number")
    )
    locals_ = (
        selectors.local_versions_for_user(request.user)
        .select_related("template", "unit", "version", "previous_version")
        .only(
            "public_id",
            "name",
            "status",
            "problems",
            "unit__name",
            "template__name",
            "version__number",
            "previous_version__number",
        )
    )
    return render(
        request,
        "brand/templates.html",
        {
            "templates": templates,
            "local_versions": locals_[:200],
            "can_manage": access.can_anywhere(Capability.MANAGE_TEMPLATES),
            "can_personalise": access.can_anywhere(Capability.PERSONALISE_TEMPLATES),
            "can_guardrails": _guardrails_node(request.user) is not None,
        },
    )


@login_required
def template_new(request: HttpRequest) -> HttpResponse:
    channel = request.GET.get("channel", Channel.EMAIL)
    if channel not in Channel.values:
        raise Http404
    nodes = network_selectors.nodes_with(request.user, Capability.MANAGE_TEMPLATES)
    if not nodes:
        raise PermissionDenied
    form = TemplateForm(
        request.POST or None,
        channel=channel,
        nodes=nodes,
        initial={"source": _starter(channel), "sms_stop": "STOP au 36111"},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        node = next(n for n in nodes if str(n.public_id) == data["shared_with"])
        try:
            template = services.template_create(
                actor=request.user,
                shared_with=node,
                channel=channel,
                name=data["name"],
                source=data["source"],
                subject=data.get("subject", ""),
                description=data["description"],
                sms_stop=data.get("sms_stop", ""),
                max_segments=data.get("max_segments") or 2,
            )
        except ValidationError as exc:
            form.add_error("source", exc.messages)
        else:
            messages.success(
                request, _("Template “%(name)s” created (version 1).") % {"name": template.name}
            )
            return redirect("template_edit", template.public_id)
    return render(
        request, "brand/template_edit.html", {"form": form, "channel": channel, "template": None}
    )


def _starter(channel: str) -> str:
    if channel == Channel.SMS:
        return '{{ unit.name }} : <ens-zone name="message" kind="text" max="120" label="Message">…</ens-zone>'
    return render_to_string("brand/starter.mjml").strip()


VARIANT_FIELD = "variant__"


def _posted_variants(post, personas: dict[str, str]) -> dict | None:
    """HQ's variants from the editor's fields ``variant__<zone>__<persona>``, each zone's in
    the personas' order; None when the form had no such field (nothing to change)."""
    found: dict[str, dict[str, str]] = {}
    for key, value in post.items():
        zone, _sep, persona = key.removeprefix(VARIANT_FIELD).rpartition("__")
        if key.startswith(VARIANT_FIELD) and zone:
            found.setdefault(zone, {})[persona] = value
    if not found:
        return None
    order = {persona: place for place, persona in enumerate(personas)}
    return {
        zone: [
            {"persona": persona, "value": value}
            for persona, value in sorted(by.items(), key=lambda kv: order.get(kv[0], len(order)))
            if value.strip()
        ]
        for zone, by in found.items()
    }


def _variant_rows(zones, variants: dict, personas: dict[str, str]) -> list[dict]:
    """The editor's grid: for each zone that takes variants, a field per persona."""
    rows = []
    for zone in zone_variants.varied_zones(zones):
        written = {e["persona"]: e["value"] for e in variants.get(zone.name, [])}
        rows.append(
            {
                "zone": zone,
                "fields": [
                    {
                        "key": f"{VARIANT_FIELD}{zone.name}__{persona}",
                        "persona": name,
                        "value": written.get(persona, ""),
                    }
                    for persona, name in personas.items()
                ],
            }
        )
    return rows


@login_required
def template_edit(request: HttpRequest, public_id) -> HttpResponse:
    template = selectors.get_template_for_user(request.user, public_id)
    if not services.can_manage_template(request.user, template):
        raise PermissionDenied
    current = template.current
    personas = zone_variants.network_personas(template.shared_path)
    variants, posted = current.variants, None
    initial = {
        "name": template.name,
        "description": template.description,
        "subject": current.subject,
        "source": current.source,
        "sms_stop": current.sms_stop,
        "max_segments": current.max_segments,
    }
    form = TemplateForm(request.POST or None, channel=template.channel, initial=initial)
    if request.method == "POST":
        posted = _posted_variants(request.POST, personas)
        variants = current.variants if posted is None else posted
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.template_edit(
                actor=request.user,
                template=template,
                name=data["name"],
                description=data["description"],
                source=data["source"],
                subject=data.get("subject"),
                sms_stop=data.get("sms_stop"),
                max_segments=data.get("max_segments"),
                variants=posted,
            )
        except ValidationError as exc:
            form.add_error("source", exc.messages)
        else:
            if version.pk != current.pk:
                messages.success(
                    request,
                    _("Version %(number)s published; local versions follow it.")
                    % {"number": version.number},
                )
            else:
                messages.info(
                    request, _("Saved. The content did not change, so no new version was made.")
                )
            return redirect("template_edit", template.public_id)
    return render(
        request,
        "brand/template_edit.html",
        {
            "form": form,
            "channel": template.channel,
            "template": template,
            "versions": template.versions.select_related("created_by")[:20],
            "local_count": LocalVersion.objects.filter(template=template).count(),
            "personas": personas,
            "variant_rows": _variant_rows(services.zones_of(current), variants, personas),
        },
    )


@login_required
@require_POST
def template_preview(request: HttpRequest) -> HttpResponse:
    """HQ's unsaved source, rendered with a sample unit and the zones' defaults."""
    if not access_for(request.user).can_anywhere(Capability.MANAGE_TEMPLATES):
        raise PermissionDenied
    channel = request.POST.get("channel", Channel.EMAIL)
    unit = network_selectors.units_for_user(request.user).first()
    if unit is None:
        return _preview_error([_("Add a unit to the network to preview templates.")])
    personas = zone_variants.network_personas(unit.path)
    try:
        rendered = services.source_preview(
            channel=channel,
            source=request.POST.get("source", ""),
            unit=unit,
            sms_stop=request.POST.get("sms_stop", ""),
            as_persona=(
                _preview_persona(request, personas),
                _posted_variants(request.POST, personas),
            ),
        )
    except ValidationError as exc:
        return _preview_error(exc.messages)
    return _preview_page(channel, rendered)


def _preview_persona(request: HttpRequest, personas: dict[str, str]) -> str | None:
    """The persona the preview is shown as (one of the network's), or None: everyone else."""
    wanted = request.POST.get("preview_persona", "")
    return wanted if wanted in personas else None


def _preview_page(channel: str, rendered: str) -> HttpResponse:
    if channel == Channel.SMS:
        return sandboxed(
            render_to_string(
                "brand/preview_sms.html", {"text": rendered, "length": measure(rendered)}
            )
        )
    return sandboxed(rendered)


# ---------------------------------------------------------------- the unit's side


def _posted_values(zones, post) -> dict:
    values = {}
    for zone in zones:
        key = f"zone_{zone.name}"
        if zone.kind in ZONE_KINDS:
            picked = post.get(key, "")
            values[zone.name] = (
                {"asset": picked, "alt": post.get(f"{key}_alt", "")} if picked else {}
            )
        elif key in post:
            values[zone.name] = post.get(key, "")
    return values


def _zone_fields(unit: OrgNode, zones, values: dict) -> list[dict]:
    visible = list(selectors.assets_visible_to_unit(unit).exclude(kind=Asset.Kind.TEXT))
    fields = []
    for zone in zones:
        value = values.get(zone.name, "" if zone.kind not in ZONE_KINDS else {})
        field = {"zone": zone, "value": value, "key": f"zone_{zone.name}"}
        if zone.kind in ZONE_KINDS:
            field["assets"] = [a for a in visible if a.kind in ZONE_KINDS[zone.kind]]
            field["picked"] = value.get("asset", "") if isinstance(value, dict) else ""
        elif zone.kind == "text" and not value and zone.default:
            field["placeholder"] = zone.default
        fields.append(field)
    return fields


def _upload_into_zones(request, unit, zones, values) -> None:
    """Images uploaded right from the zone form become the unit's own assets, then the pick."""
    for zone in zones:
        upload = request.FILES.get(f"zone_{zone.name}_file")
        if zone.kind != "image" or not zone.allow_upload or upload is None:
            continue
        asset = asset_services.asset_upload(
            actor=request.user,
            node=unit,
            own=True,
            kind=Asset.Kind.IMAGE,
            name=upload.name,
            file_name=upload.name,
            data=upload.read(),
            folder=_("Uploads"),
        )
        values[zone.name] = {
            "asset": str(asset.public_id),
            "alt": values.get(zone.name, {}).get("alt", ""),
        }


def _personalise(
    request, template: Template, unit: OrgNode, local: LocalVersion | None, units
) -> HttpResponse:
    version = local.version if local else template.current
    zones = services.zones_of(version)
    values = dict(local.values) if local else {}
    errors: list[str] = []
    if request.method == "POST":
        posted = _posted_values(zones, request.POST)
        try:
            _upload_into_zones(request, unit, zones, posted)
            saved = services.local_version_save(
                actor=request.user,
                unit=unit,
                template=template,
                values=posted,
                name=request.POST.get("name", ""),
                local=local,
            )
        except ValidationError as exc:
            errors = exc.messages
            values = {**values, **posted}
        else:
            if saved.problems:
                messages.warning(
                    request,
                    _("Saved, but this version cannot be used for sending yet: %(problems)s")
                    % {"problems": " ".join(saved.problems)},
                )
            else:
                messages.success(request, _("Saved. This version is ready to use."))
            return redirect("local_version", saved.public_id)
    diff = (
        services.locked_diff(local.previous_version, local.version)
        if local and local.previous_version
        else ""
    )
    personas = zone_variants.network_personas(unit.path)
    fields = _zone_fields(unit, zones, values)
    varied = zone_variants.described(zones, version.variants, personas)
    for field in fields:
        field["variants"] = varied.get(field["zone"].name, [])
    return render(
        request,
        "brand/personalise.html",
        {
            "template": template,
            "version": version,
            "unit": unit,
            "local": local,
            "units": units,
            "fields": fields,
            "errors": errors,
            "preview_personas": zone_variants.varied_personas(version.variants, unit.path),
            "diff": diff,
            "can_upload": access_for(request.user).can(Capability.ADD_UNIT_ASSETS, unit),
            "can_campaign": access_for(request.user).can(Capability.CREATE_LOCAL_CAMPAIGNS, unit),
            "sms_initial": _sms_length(version, values, unit)
            if template.channel == Channel.SMS
            else None,
        },
    )


@login_required
def template_personalise(request: HttpRequest, public_id) -> HttpResponse:
    template = selectors.get_template_for_user(request.user, public_id)
    units = [
        u
        for u in network_selectors.units_with(request.user, Capability.PERSONALISE_TEMPLATES)
        if u.path.startswith(template.shared_path)
    ]
    if not units:
        raise PermissionDenied
    wanted = request.POST.get("unit") or request.GET.get("unit")
    unit = next((u for u in units if str(u.public_id) == wanted), units[0])
    return _personalise(request, template, unit, None, units)


@login_required
def local_version(request: HttpRequest, public_id) -> HttpResponse:
    local = selectors.get_local_version_for_user(request.user, public_id)
    if request.method == "POST" and not access_for(request.user).can(
        Capability.PERSONALISE_TEMPLATES, local.unit
    ):
        raise PermissionDenied
    return _personalise(request, local.template, local.unit, local, [local.unit])


@login_required
@require_POST
def local_preview(request: HttpRequest, public_id) -> HttpResponse:
    """What the zone form would save, rendered with the unit's profile and a sample contact."""
    template = selectors.get_template_for_user(request.user, public_id)
    unit = selectors.unit_for_template(request.user, template, request.POST.get("unit"))
    version = template.current
    local_id = request.POST.get("local", "")
    if local_id:
        version = selectors.get_local_version_for_user(request.user, local_id).version
    values = _posted_values(services.zones_of(version), request.POST)
    persona = _preview_persona(request, zone_variants.network_personas(unit.path))
    try:
        rendered = services.values_preview(
            version=version, unit=unit, values=values, persona=persona
        )
    except ValidationError as exc:
        return _preview_error(exc.messages)
    return _preview_page(template.channel, rendered)


def _sms_length(version, values: dict, unit: OrgNode) -> dict:
    cleaned = services.preview_values(version, values, unit)
    text = sms_preview(version, cleaned, unit)
    length = measure(text)
    return {
        "length": length,
        "over": length.segments > version.max_segments,
        "max": version.max_segments,
    }


@login_required
@require_POST
def sms_length(request: HttpRequest, public_id) -> HttpResponse:
    template = selectors.get_template_for_user(request.user, public_id)
    if template.channel != Channel.SMS:
        raise Http404
    unit = selectors.unit_for_template(request.user, template, request.POST.get("unit"))
    version = template.current
    values = _posted_values(services.zones_of(version), request.POST)
    return render(request, "brand/_sms_length.html", {"sms": _sms_length(version, values, unit)})


# ---------------------------------------------------------------- guardrails


def _guardrails_node(user) -> OrgNode | None:
    root = network_selectors.network_root()
    if root is None or not access_for(user).can(Capability.MANAGE_TEMPLATES, root):
        return None
    return root


@login_required
def guardrails(request: HttpRequest) -> HttpResponse:
    root = _guardrails_node(request.user)
    if root is None:
        raise PermissionDenied
    instance = Guardrails.objects.filter(node=root).first() or Guardrails(node=root)
    form = GuardrailsForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        services.guardrails_update(
            actor=request.user,
            node=root,
            **{name: form.cleaned_data[name] for name in form.Meta.fields},
        )
        messages.success(request, _("Guardrails saved; every local version was checked again."))
        return redirect("guardrails")
    return render(request, "brand/guardrails.html", {"form": form})
