"""The brand kit over the JSON API: assets, templates, local versions; same rules as the UI."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, File, Form, Query, Router, Schema
from ninja.files import UploadedFile
from ninja.responses import Status

from enseigne.api.bounds import fits, max_length_of
from enseigne.api.paging import PageParams, page_of, paginate
from enseigne.brand import asset_services, selectors, services
from enseigne.brand.asset_services import CONTENT_FIELDS
from enseigne.brand.library import public_url
from enseigne.brand.models import Asset, LocalVersion, Template, TemplateVersion
from enseigne.brand.rendering import html_to_text
from enseigne.brand.sms import measure
from enseigne.contacts.models import Channel
from enseigne.network import selectors as network_selectors

router = Router(tags=["brand"])


class AssetOut(Schema):
    id: uuid.UUID
    kind: str
    name: str
    folder: str
    tags: list[str]
    variant: str
    own_unit: bool
    width: int | None
    height: int | None
    size_bytes: int
    thumbnail_url: str
    email_url: str
    data: dict
    created_at: dt.datetime

    @staticmethod
    def from_asset(asset: Asset) -> AssetOut:
        return AssetOut(
            id=asset.public_id,
            kind=asset.kind,
            name=asset.name,
            folder=asset.folder,
            tags=asset.tags,
            variant=asset.variant,
            own_unit=bool(asset.unit_path),
            width=asset.width,
            height=asset.height,
            size_bytes=asset.size_bytes,
            thumbnail_url=public_url(asset.thumbnail),
            email_url=public_url(asset.email_rendition),
            data=asset.data,
            created_at=asset.created_at,
        )


class ZoneOut(Schema):
    name: str
    kind: str
    label: str
    default: str
    max_length: int | None
    required: bool
    options: list[dict]


class VariantItem(Schema):
    persona: uuid.UUID
    value: str = Field(max_length=20_000)


class TemplateOut(Schema):
    id: uuid.UUID
    channel: str
    name: str
    description: str
    version: int
    subject: str
    zones: list[ZoneOut]
    sms_stop: str
    max_segments: int
    # Head office's variants per persona: zone name → [{persona, value}] in its order.
    variants: dict[str, list[VariantItem]]

    @staticmethod
    def from_template(template: Template) -> TemplateOut:
        current = template.current
        return TemplateOut(
            id=template.public_id,
            channel=template.channel,
            name=template.name,
            description=template.description,
            version=current.number,
            subject=current.subject,
            zones=[
                {**z, "options": [{"value": o["value"], "label": o["label"]} for o in z["options"]]}
                for z in current.zones
            ],
            sms_stop=current.sms_stop,
            max_segments=current.max_segments,
            variants=current.variants,
        )


class TemplateDetailOut(TemplateOut):
    source: str | None = None  # only for those who may edit it


class VersionIn(Schema):
    source: str = Field(max_length=200_000)
    subject: str | None = fits(TemplateVersion, "subject", None)
    sms_stop: str | None = fits(TemplateVersion, "sms_stop", None)
    max_segments: int | None = Field(None, ge=1, le=32767)  # the column's range
    # Left out: the current version's variants are kept (those that still fit).
    variants: dict[str, list[VariantItem]] | None = None


class LocalOut(Schema):
    id: uuid.UUID
    unit: uuid.UUID
    template: uuid.UUID
    version: int
    previous_version: int | None
    name: str
    values: dict
    usable: bool
    problems: list[str]
    locked_diff: str
    updated_at: dt.datetime

    @staticmethod
    def from_local(local: LocalVersion) -> LocalOut:
        previous = local.previous_version
        return LocalOut(
            id=local.public_id,
            unit=local.unit.public_id,
            template=local.template.public_id,
            version=local.version.number,
            previous_version=previous.number if previous else None,
            name=local.name,
            values=local.values,
            usable=local.is_usable,
            problems=local.problems,
            locked_diff=services.locked_diff(previous, local.version) if previous else "",
            updated_at=local.updated_at,
        )


class LocalIn(Schema):
    template: uuid.UUID
    unit: uuid.UUID
    name: str = fits(LocalVersion, "name", "")
    values: dict = {}


class LocalUpdate(Schema):
    name: str = fits(LocalVersion, "name", "")
    values: dict = {}


class PreviewIn(Schema):
    unit: uuid.UUID
    values: dict = {}
    # As a customer of this persona sees it (head office's variants); none: everyone else.
    persona: uuid.UUID | None = None


class PreviewOut(Schema):
    html: str
    text: str
    sms_segments: int | None
    sms_encoding: str | None


@router.get("/assets", response=page_of(AssetOut))
def list_assets(
    request: HttpRequest,
    page: Query[PageParams],
    q: str = "",
    kind: str = "",
    folder: str = "",
    tag: str = "",
):
    assets = selectors.asset_search(
        selectors.assets_for_user(request.user), q=q, kind=kind, folder=folder, tag=tag
    )
    return paginate(assets, page, AssetOut.from_asset)


@router.post("/assets", response={201: AssetOut})
def create_asset(
    request: HttpRequest,
    kind: str = Form(..., max_length=max_length_of(Asset, "kind")),
    node: uuid.UUID = Form(...),
    own_unit: Form[bool] = False,
    name: str = Form("", max_length=max_length_of(Asset, "name")),
    folder: str = Form("", max_length=max_length_of(Asset, "folder")),
    tags: str = Form("", max_length=2_000),
    variant: str = Form("", max_length=max_length_of(Asset, "variant")),
    data: str = Form("", max_length=200_000),
    file: File[UploadedFile] | None = None,
):
    """An image or logo (``file``), or a text snippet, offer or product (``data``: JSON fields).
    ``own_unit`` true adds it to that unit only; otherwise HQ shares it with ``node``'s subtree."""
    target = (
        network_selectors.get_unit_for_user(request.user, node)
        if own_unit
        else network_selectors.get_node_for_user(request.user, node)
    )
    if kind in CONTENT_FIELDS:
        try:
            fields = json.loads(data or "{}")
        except ValueError:
            fields = None
        if not isinstance(fields, dict):
            raise ValidationError({"data": _("data must be a JSON object of the item’s fields.")})
        asset = asset_services.asset_create(
            actor=request.user,
            node=target,
            own=own_unit,
            kind=kind,
            name=name,
            data=fields,
            folder=folder,
            tags=tags,
            image=(file.name or "image", file.read()) if file else None,
        )
    else:
        if file is None:
            raise ValidationError({"file": _("Images and logos need a file.")})
        asset = asset_services.asset_upload(
            actor=request.user,
            node=target,
            own=own_unit,
            kind=kind,
            name=name,
            file_name=file.name or "image",
            data=file.read(),
            folder=folder,
            tags=tags,
            variant=variant,
        )
    return Status(201, AssetOut.from_asset(asset))


@router.get("/assets/{asset_id}", response=AssetOut)
def get_asset(request: HttpRequest, asset_id: uuid.UUID):
    return AssetOut.from_asset(selectors.get_asset_for_user(request.user, asset_id))


@router.delete("/assets/{asset_id}", response={204: None})
def delete_asset(request: HttpRequest, asset_id: uuid.UUID):
    asset_services.asset_delete(
        actor=request.user, asset=selectors.get_asset_for_user(request.user, asset_id)
    )
    return Status(204, None)


@router.get("/templates", response=page_of(TemplateOut))
def list_templates(request: HttpRequest, page: Query[PageParams], channel: str = ""):
    templates = selectors.templates_for_user(request.user).select_related("current")
    if channel:
        templates = templates.filter(channel=channel)
    return paginate(templates, page, TemplateOut.from_template)


@router.get("/templates/{template_id}", response=TemplateDetailOut)
def get_template(request: HttpRequest, template_id: uuid.UUID):
    template = selectors.get_template_for_user(request.user, template_id)
    out = TemplateOut.from_template(template).dict()
    return TemplateDetailOut(
        **out,
        source=template.current.source
        if services.can_manage_template(request.user, template)
        else None,
    )


@router.post("/templates/{template_id}/versions", response={201: TemplateDetailOut})
def publish_version(request: HttpRequest, template_id: uuid.UUID, payload: VersionIn):
    """A new HQ version; every unit's local version follows it (kept values re-checked)."""
    template = selectors.get_template_for_user(request.user, template_id)
    if not services.can_manage_template(request.user, template):
        raise PermissionDenied
    data = payload.dict()
    if data["variants"] is not None:
        data["variants"] = {
            zone: [{"persona": str(v["persona"]), "value": v["value"]} for v in entries]
            for zone, entries in data["variants"].items()
        }
    services.template_publish(actor=request.user, template=template, **data)
    template.refresh_from_db()
    return Status(
        201,
        TemplateDetailOut(
            **TemplateOut.from_template(template).dict(), source=template.current.source
        ),
    )


@router.post("/templates/{template_id}/preview", response=PreviewOut)
def preview(request: HttpRequest, template_id: uuid.UUID, payload: PreviewIn):
    """What these zone values give for this unit, with a sample contact (nothing saved)."""
    template = selectors.get_template_for_user(request.user, template_id)
    unit = selectors.unit_for_template(request.user, template, payload.unit)
    rendered = services.values_preview(
        version=template.current,
        unit=unit,
        values=payload.values,
        persona=str(payload.persona) if payload.persona else None,
    )
    if template.channel == Channel.SMS:
        length = measure(rendered)
        return PreviewOut(
            html="", text=rendered, sms_segments=length.segments, sms_encoding=length.encoding
        )
    return PreviewOut(
        html=rendered, text=html_to_text(rendered), sms_segments=None, sms_encoding=None
    )


@router.get("/local-versions", response=page_of(LocalOut))
def list_local_versions(
    request: HttpRequest, page: Query[PageParams], template: uuid.UUID | None = None
):
    locals_ = selectors.local_versions_for_user(request.user).select_related(
        "unit", "template", "version", "previous_version"
    )
    if template:
        locals_ = locals_.filter(template__public_id=template)
    return paginate(locals_, page, LocalOut.from_local)


@router.post("/local-versions", response={201: LocalOut})
def create_local_version(request: HttpRequest, payload: LocalIn):
    template = selectors.get_template_for_user(request.user, payload.template)
    unit = selectors.unit_for_template(request.user, template, payload.unit)
    local = services.local_version_save(
        actor=request.user, unit=unit, template=template, values=payload.values, name=payload.name
    )
    return Status(201, LocalOut.from_local(local))


@router.get("/local-versions/{local_id}", response=LocalOut)
def get_local_version(request: HttpRequest, local_id: uuid.UUID):
    return LocalOut.from_local(selectors.get_local_version_for_user(request.user, local_id))


@router.put("/local-versions/{local_id}", response=LocalOut)
def update_local_version(request: HttpRequest, local_id: uuid.UUID, payload: LocalUpdate):
    """Replace the zone values (zones left out keep HQ's default); the result is re-checked."""
    local = selectors.get_local_version_for_user(request.user, local_id)
    local = services.local_version_save(
        actor=request.user,
        unit=local.unit,
        template=local.template,
        values=payload.values,
        name=payload.name,
        local=local,
    )
    return LocalOut.from_local(local)
