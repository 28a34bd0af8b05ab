"""Scoped reads of the brand kit: what each user and unit may see."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.http import Http404

from enseigne.brand.models import Asset, LocalVersion, Template
from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.models import OrgNode, User


def _ancestor_paths(path: str) -> list[str]:
    """The path itself and every ancestor's (materialised paths: one step per level)."""
    step = OrgNode.steplen
    return [path[:i] for i in range(step, len(path) + 1, step)]


def assets_visible_to_unit(unit: OrgNode) -> QuerySet[Asset]:
    """HQ assets shared with the unit or one of its ancestors, and the unit's own."""
    return Asset.objects.filter(Q(unit_path="", shared_path__in=_ancestor_paths(unit.path)) | Q(unit_path=unit.path))


def templates_for_user(user: User) -> QuerySet[Template]:
    """HQ sees every template; others those shared with a node above or below their scope."""
    access = access_for(user)
    if access.is_hq:
        return Template.objects.all()
    shared = set()
    for path in access.paths:
        shared.update(_ancestor_paths(path))
    visible = Q(shared_path__in=shared)
    for path in access.paths:
        visible |= Q(shared_path__startswith=path)
    return Template.objects.filter(visible, archived=False)


def get_template_for_user(user: User, public_id) -> Template:
    parsed = parse_uuid(public_id)
    template = templates_for_user(user).select_related("current").filter(public_id=parsed).first() if parsed else None
    if template is None:
        raise Http404("No such template.")
    return template


def local_versions_for_user(user: User) -> QuerySet[LocalVersion]:
    return LocalVersion.objects.filter(path_filter(access_for(user).paths, "unit_path"))


def get_local_version_for_user(user: User, public_id) -> LocalVersion:
    parsed = parse_uuid(public_id)
    local = (
        local_versions_for_user(user).select_related("unit__profile", "template", "version", "previous_version")
        .filter(public_id=parsed).first() if parsed else None
    )
    if local is None:
        raise Http404("No such local version.")
    return local
