"""Scoped reads of the org tree and people."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from enseigne.lib.ids import parse_uuid
from enseigne.network.access import access_for, path_filter
from enseigne.network.models import (
    AuditEvent,
    Membership,
    Network,
    OrgNode,
    Role,
    UnitVariable,
    User,
)


def nodes_for_user(user: User) -> QuerySet[OrgNode]:
    """Nodes the user may see: their subtrees, plus the ancestors needed to draw the tree."""
    return OrgNode.objects.filter(path_filter(access_for(user).paths, "path")).order_by("path")


def units_for_user(user: User) -> QuerySet[OrgNode]:
    return nodes_for_user(user).filter(kind=OrgNode.Kind.UNIT).select_related("profile")


def units_under(user: User, node: OrgNode | None = None) -> list[OrgNode]:
    """The units ``user`` sees (under ``node``, one the user sees), in tree order."""
    units = units_for_user(user)
    if node is not None:
        units = units.filter(path__startswith=node.path)
    return list(units)


def nodes_with(user: User, capability: str) -> list[OrgNode]:
    """The nodes the user sees where their roles (and HQ's rules) grant ``capability``."""
    access = access_for(user)
    return [n for n in nodes_for_user(user) if access.can(capability, n)]


def units_with(user: User, capability: str) -> list[OrgNode]:
    access = access_for(user)
    return [u for u in units_for_user(user) if access.can(capability, u)]


def get_unit_for_user(user: User, public_id, capability: str | None = None) -> OrgNode:
    """The unit, or 404 when it is missing or outside the user's scope; 403 for a role
    that may see it but lacks ``capability``."""
    unit = (
        units_for_user(user).prefetch_related("tags").filter(public_id=public_id).first()
        if parse_uuid(public_id)
        else None
    )
    if unit is None:
        raise Http404("No such unit.")
    if capability and not access_for(user).can(capability, unit):
        raise PermissionDenied
    return unit


def get_node_for_user(user: User, public_id) -> OrgNode:
    node = (
        nodes_for_user(user).filter(public_id=public_id).first() if parse_uuid(public_id) else None
    )
    if node is None:
        raise Http404("No such node.")
    return node


def network_root() -> OrgNode | None:
    return OrgNode.objects.get_root_nodes().select_related("network").first()


def root_of(node: OrgNode) -> OrgNode:
    """The network (root node) a node belongs to, with its brand settings."""
    return OrgNode.objects.select_related("network").get(path=node.path[: OrgNode.steplen])


def unit_time_zone(unit: OrgNode, *, network: Network | None = None) -> str:
    """The time zone a unit's customers live in: its profile's, else its network's.

    ``network`` (the unit's, when the caller has it) spares a read for each unit that
    has no zone of its own; Django's ``TIME_ZONE`` is the last resort of a tree without one.
    """
    profile = getattr(unit, "profile", None)
    if profile is not None and profile.time_zone:
        return profile.time_zone
    if network is None:
        network = Network.objects.filter(node__path=unit.path[: OrgNode.steplen]).first()
    return network.time_zone if network is not None and network.time_zone else settings.TIME_ZONE


def users_for_admin(user: User) -> QuerySet[User]:
    if not access_for(user).is_hq_admin:
        raise PermissionDenied
    return User.objects.order_by("email").prefetch_related("memberships__node", "memberships__role")


def get_user_for_admin(user: User, public_id) -> User:
    users = users_for_admin(user)
    found = users.filter(public_id=public_id).first() if parse_uuid(public_id) else None
    if found is None:
        raise Http404("No such user.")
    return found


def roles_for_admin(user: User) -> QuerySet[Role]:
    if not access_for(user).is_hq_admin:
        raise PermissionDenied
    return Role.objects.order_by("level", "name").prefetch_related("grants")


def memberships_of(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(user=user).select_related("node", "role").order_by("node__path")
    )


def audit_events_for_admin(user: User) -> QuerySet[AuditEvent]:
    if not access_for(user).is_hq_admin:
        raise PermissionDenied
    return AuditEvent.objects.select_related("actor")


def home_unit_for(user: User) -> OrgNode | None:
    """The single unit a unit-level user works in, for their home page."""
    access = access_for(user)
    unit_paths = [g.path for g in access.grants if g.role_level == "unit"]
    if len(unit_paths) != 1 or access.is_hq:
        return None
    return OrgNode.objects.filter(path=unit_paths[0], kind=OrgNode.Kind.UNIT).first()


def unit_variables():
    return list(UnitVariable.objects.order_by("key"))
