"""Scoped reads of the brand kit: what each user and unit may see."""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet
from django.http import Http404

from enseigne.brand.models import Asset, LocalVersion, Template, TemplateVersion
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.models import OrgNode, User
from enseigne.network.selectors import units_for_user


def _ancestor_paths(path: str) -> list[str]:
    """The path itself and every ancestor's (materialised paths: one step per level)."""
    step = OrgNode.steplen
    return [path[:i] for i in range(step, len(path) + 1, step)]


def assets_visible_to_unit(unit: OrgNode) -> QuerySet[Asset]:
    """HQ assets shared with the unit or one of its ancestors, and the unit's own."""
    return Asset.objects.filter(
        Q(unit_path="", shared_path__in=_ancestor_paths(unit.path)) | Q(unit_path=unit.path)
    )


def _visible_to_paths(paths) -> Q:
    """HQ items shared with an ancestor of (or a node inside) any of the paths, and the units' own."""
    above: set[str] = set()
    for path in paths:
        above.update(_ancestor_paths(path))
    visible = Q(unit_path="", shared_path__in=above) | path_filter(paths, "unit_path")
    for path in paths:
        visible |= Q(unit_path="", shared_path__startswith=path)
    return visible


def assets_for_user(user: User) -> QuerySet[Asset]:
    access = access_for(user)
    if access.is_hq:
        return Asset.objects.all()
    return Asset.objects.filter(_visible_to_paths(access.paths))


def asset_search(
    assets: QuerySet[Asset], *, q: str = "", kind: str = "", folder: str = "", tag: str = ""
) -> QuerySet[Asset]:
    if q.strip():
        words = Q()
        for word in q.split()[:5]:
            words &= Q(name__icontains=word) | Q(folder__icontains=word) | Q(tags__icontains=word)
        assets = assets.filter(words)
    if kind:
        assets = assets.filter(kind=kind)
    if folder:
        assets = assets.filter(folder=folder)
    if tag:
        assets = assets.filter(tags__icontains=f'"{tag.strip().lower()}"')
    return assets


def get_asset_for_user(user: User, public_id) -> Asset:
    parsed = parse_uuid(public_id)
    asset = assets_for_user(user).filter(public_id=parsed).first() if parsed else None
    if asset is None:
        raise Http404("No such asset.")
    return asset


def usage_counts(asset_ids) -> dict[int, int]:
    """Asset pk → how many templates use it (in HQ's current version or a unit's local version)."""
    asset_ids = list(asset_ids)
    if not asset_ids:
        return {}
    used: dict[int, set[int]] = {}
    hq = TemplateVersion.assets.through.objects.filter(
        asset_id__in=asset_ids,
        templateversion__template__current=F("templateversion_id"),
    ).values_list("asset_id", "templateversion__template_id")
    local = LocalVersion.assets.through.objects.filter(asset_id__in=asset_ids).values_list(
        "asset_id", "localversion__template_id"
    )
    for asset_id, template_id in [*hq, *local]:
        used.setdefault(asset_id, set()).add(template_id)
    return {asset_id: len(templates) for asset_id, templates in used.items()}


def asset_folders(assets: QuerySet[Asset]) -> list[str]:
    return list(
        assets.exclude(folder="").order_by("folder").values_list("folder", flat=True).distinct()
    )


def asset_kind_counts(assets: QuerySet[Asset]) -> dict[str, int]:
    return dict(assets.order_by().values_list("kind").annotate(n=Count("id")))


def templates_for_user(user: User, *, free: bool = False) -> QuerySet[Template]:
    """HQ sees every template; others those shared with a node above or below their scope.
    Units' free frames (brand/free.py) only with ``free``: the template library leaves them out."""
    access = access_for(user)
    templates = Template.objects.all() if free else Template.objects.filter(is_free=False)
    if access.is_hq:
        return templates
    shared = set()
    for path in access.paths:
        shared.update(_ancestor_paths(path))
    visible = Q(shared_path__in=shared)
    for path in access.paths:
        visible |= Q(shared_path__startswith=path)
    return templates.filter(visible, archived=False)


def get_template_for_user(user: User, public_id) -> Template:
    parsed = parse_uuid(public_id)
    template = (
        templates_for_user(user, free=True)
        .select_related("current")
        .filter(public_id=parsed)
        .first()
        if parsed
        else None
    )
    if template is None:
        raise Http404("No such template.")
    return template


def unit_for_template(user: User, template: Template, public_id=None) -> OrgNode:
    """A unit the user sees that may use the template: the one named, or else the first; 404 otherwise."""
    units = units_for_user(user).filter(path__startswith=template.shared_path)
    if public_id:
        parsed = parse_uuid(public_id)
        units = units.filter(public_id=parsed) if parsed else units.none()
    unit = units.first()
    if unit is None:
        raise Http404("No such unit.")
    return unit


def local_versions_for_user(user: User) -> QuerySet[LocalVersion]:
    return LocalVersion.objects.filter(path_filter(access_for(user).paths, "unit_path"))


def get_local_version_for_user(user: User, public_id) -> LocalVersion:
    parsed = parse_uuid(public_id)
    local = (
        local_versions_for_user(user)
        .select_related("unit__profile", "template", "version", "previous_version")
        .filter(public_id=parsed)
        .first()
        if parsed
        else None
    )
    if local is None:
        raise Http404("No such local version.")
    return local
