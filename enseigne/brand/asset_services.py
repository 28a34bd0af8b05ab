"""Writes for the asset library: uploads, text snippets, offers, products.

Who may add what follows the org tree: HQ (``manage_assets`` on a node) shares an asset
with that node's whole subtree; a unit (``add_unit_assets``) adds assets only it sees.
"""

from __future__ import annotations

import datetime as dt
import uuid
from urllib.parse import urlsplit

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from enseigne.brand import images
from enseigne.brand.models import Asset
from enseigne.brand.selectors import usage_counts
from enseigne.brand.services import local_versions_refresh
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.network.services import audit

IMAGE_KINDS = (Asset.Kind.IMAGE, Asset.Kind.LOGO)
CONTENT_FIELDS = {
    Asset.Kind.TEXT: {"text": 5000},
    Asset.Kind.OFFER: {
        "title": 120,
        "text": 1000,
        "price": 40,
        "valid_from": 10,
        "valid_until": 10,
        "legal": 500,
        "url": 500,
        "cta": 40,
    },
    Asset.Kind.PRODUCT: {
        "sku": 64,
        "name": 200,
        "category": 120,
        "price": 40,
        "url": 500,
        "cta": 40,
    },
}
REQUIRED = {
    Asset.Kind.TEXT: ("text",),
    Asset.Kind.OFFER: ("title",),
    Asset.Kind.PRODUCT: ("sku", "name"),
}


def owner_paths(actor: User, node: OrgNode, *, own: bool) -> tuple[str, str]:
    """(unit_path, shared_path) for a new asset, after checking the actor may add it there."""
    access = access_for(actor)
    if own:
        if node.kind != OrgNode.Kind.UNIT or not access.can(Capability.ADD_UNIT_ASSETS, node):
            raise PermissionDenied
        return node.path, node.path
    if not access.can(Capability.MANAGE_ASSETS, node):
        raise PermissionDenied
    return "", node.path


def can_change(actor: User, asset: Asset) -> bool:
    access = access_for(actor)
    node = OrgNode.objects.filter(path=asset.unit_path or asset.shared_path).first()
    if node is None:
        return False
    return access.can(
        Capability.ADD_UNIT_ASSETS if asset.unit_path else Capability.MANAGE_ASSETS, node
    )


def clean_tags(tags) -> list[str]:
    if isinstance(tags, str):
        tags = tags.split(",")
    seen: list[str] = []
    for tag in tags or ():
        tag = str(tag).strip().lower()[:40]
        if tag and tag not in seen:
            seen.append(tag)
    return seen[:20]


def _http_url(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(
            {
                field: _("Enter a web address starting with https:// (got “%(value)s”).")
                % {"value": value[:80]}
            }
        )
    return value


def clean_content(kind: str, data: dict) -> dict:
    """A text snippet's, offer's or product's fields: known keys, lengths, dates, links."""
    limits = CONTENT_FIELDS[kind]
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, limit in limits.items():
        value = str((data or {}).get(key) or "").strip()
        if len(value) > limit:
            errors[key] = _("At most %(max)s characters (this has %(length)s).") % {
                "max": limit,
                "length": len(value),
            }
        cleaned[key] = value
    for key in REQUIRED[kind]:
        if not cleaned.get(key):
            errors[key] = _("This field is required.")
    for key in ("valid_from", "valid_until"):
        if cleaned.get(key):
            try:
                dt.date.fromisoformat(cleaned[key])
            except ValueError:
                errors[key] = _("Enter a date as YYYY-MM-DD (got “%(value)s”).") % {
                    "value": cleaned[key]
                }
    if (
        kind == Asset.Kind.OFFER
        and cleaned.get("valid_from")
        and cleaned.get("valid_until")
        and "valid_from" not in errors
        and "valid_until" not in errors
        and cleaned["valid_until"] < cleaned["valid_from"]
    ):
        errors["valid_until"] = _("The offer ends before it starts.")
    if "url" in limits and "url" not in errors:
        try:
            cleaned["url"] = _http_url(cleaned["url"], "url")
        except ValidationError as exc:
            errors.update({k: v[0] for k, v in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    return cleaned


def _store_image(asset: Asset, upload_name: str, data: bytes) -> None:
    processed = images.process(data, upload_name)
    stem = uuid.uuid4().hex
    ext = images.EXTENSIONS[processed.format]
    asset.file.save(f"{stem}.{ext}", ContentFile(processed.original), save=False)
    asset.thumbnail.save(
        f"{stem}-thumb.{processed.thumbnail_ext}", ContentFile(processed.thumbnail), save=False
    )
    asset.email_rendition.save(
        f"{stem}-600.{processed.email_ext}", ContentFile(processed.email), save=False
    )
    asset.width, asset.height, asset.size_bytes = (
        processed.width,
        processed.height,
        len(processed.email),
    )


def asset_upload(
    *,
    actor: User,
    node: OrgNode,
    own: bool,
    kind: str,
    name: str,
    file_name: str,
    data: bytes,
    folder: str = "",
    tags=(),
    variant: str = "",
) -> Asset:
    """An image or logo: checked by content, re-encoded, with thumbnail and e-mail renditions."""
    if kind not in IMAGE_KINDS:
        raise ValidationError(
            {"kind": _("Upload images and logos; offers, products and texts are typed in.")}
        )
    unit_path, shared_path = owner_paths(actor, node, own=own)
    if variant and (kind != Asset.Kind.LOGO or variant not in Asset.Variant.values):
        raise ValidationError({"variant": _("Only logos have variants (colour, white, square).")})
    asset = Asset(
        kind=kind,
        name=(name or file_name or _("Image")).strip()[:200],
        folder=folder.strip()[:120],
        tags=clean_tags(tags),
        variant=variant,
        unit_path=unit_path,
        shared_path=shared_path,
        created_by=actor,
    )
    try:
        _store_image(asset, file_name, data)
    except ValidationError as exc:
        raise ValidationError({"file": exc.messages}) from None
    with transaction.atomic():  # the asset and its audit line, or neither
        asset.save()
        audit(
            actor=actor,
            action="asset.upload",
            target=asset,
            node_path=shared_path,
            changes={"name": asset.name, "kind": kind, "bytes": len(data)},
        )
    return asset


def asset_create(
    *,
    actor: User,
    node: OrgNode,
    own: bool,
    kind: str,
    name: str,
    data: dict,
    folder: str = "",
    tags=(),
    image: tuple[str, bytes] | None = None,
) -> Asset:
    """A text snippet, offer or product (a product may come with its picture)."""
    if kind not in CONTENT_FIELDS:
        raise ValidationError(
            {"kind": _("Unknown kind of library item: %(kind)s.") % {"kind": kind}}
        )
    unit_path, shared_path = owner_paths(actor, node, own=own)
    content = clean_content(kind, data)
    label = (
        name.strip() or content.get("title") or content.get("name") or content.get("text", "")[:60]
    )
    asset = Asset(
        kind=kind,
        name=label[:200],
        folder=folder.strip()[:120],
        tags=clean_tags(tags),
        unit_path=unit_path,
        shared_path=shared_path,
        data=content,
        created_by=actor,
    )
    if image is not None:
        try:
            _store_image(asset, *image)
        except ValidationError as exc:
            raise ValidationError({"file": exc.messages}) from None
    with transaction.atomic():  # the asset and its audit line, or neither
        asset.save()
        audit(
            actor=actor,
            action="asset.create",
            target=asset,
            node_path=shared_path,
            changes={"name": asset.name, "kind": kind},
        )
    return asset


def asset_update(
    *,
    actor: User,
    asset: Asset,
    name: str | None = None,
    folder: str | None = None,
    tags=None,
    data: dict | None = None,
) -> Asset:
    if not can_change(actor, asset):
        raise PermissionDenied
    changes = {}
    if name is not None and name.strip():
        asset.name = changes["name"] = name.strip()[:200]
    if folder is not None:
        asset.folder = changes["folder"] = folder.strip()[:120]
    if tags is not None:
        asset.tags = changes["tags"] = clean_tags(tags)
    if data is not None and asset.kind in CONTENT_FIELDS:
        asset.data = changes["data"] = clean_content(asset.kind, data)
    with transaction.atomic():
        asset.save()
        audit(
            actor=actor,
            action="asset.update",
            target=asset,
            node_path=asset.shared_path,
            changes=changes,
        )
    if data is not None:
        local_versions_refresh(asset)
    return asset


def asset_delete(*, actor: User, asset: Asset) -> None:
    """Refused while a template or local version uses it: the reason says how many."""
    if not can_change(actor, asset):
        raise PermissionDenied
    used = usage_counts([asset.pk]).get(asset.pk, 0)
    if used:
        raise ValidationError(
            ngettext(
                "“%(name)s” is used in %(count)s template; remove it from it first.",
                "“%(name)s” is used in %(count)s templates; remove it from them first.",
                used,
            )
            % {"name": asset.name, "count": used}
        )
    files = asset.stored_files()
    with transaction.atomic():  # the audit line and the deletion, or neither
        audit(
            actor=actor,
            action="asset.delete",
            target=asset,
            node_path=asset.shared_path,
            changes={"name": asset.name},
        )
        asset.delete()
        # The files go once the row is gone for good (a rollback keeps both).
        transaction.on_commit(lambda: [stored.storage.delete(stored.name) for stored in files])
