"""Who may see and do what, resolved once per request from memberships and HQ rules."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q
from django.http import HttpRequest

from enseigne.network.capabilities import Capability
from enseigne.network.models import CapabilityRule, Membership, OrgNode, User


class AuthenticatedRequest(HttpRequest):
    """A request whose user passed ``login_required`` or the API's token check: never anonymous."""

    user: User


@dataclass(frozen=True)
class Grant:
    path: str
    role_id: int
    role_key: str
    role_level: str
    capabilities: frozenset[str]


@dataclass
class Access:
    user_id: int | None
    grants: list[Grant]
    rules: list[CapabilityRule] = field(default_factory=list)

    @property
    def paths(self) -> tuple[str, ...]:
        """The smallest set of org paths covering every node the user may see."""
        return _minimal_cover(g.path for g in self.grants)

    def paths_with(self, capability: str) -> tuple[str, ...]:
        return _minimal_cover(g.path for g in self.grants if capability in g.capabilities)

    def sees(self, path: str) -> bool:
        return any(path.startswith(p) for p in self.paths)

    @property
    def is_hq(self) -> bool:
        return any(g.role_level == "hq" and len(g.path) == OrgNode.steplen for g in self.grants)

    @property
    def is_hq_admin(self) -> bool:
        """Only HQ admins manage users and roles: manage_users held at the network root."""
        return any(
            len(g.path) == OrgNode.steplen and Capability.MANAGE_USERS in g.capabilities
            for g in self.grants
        )

    def can(self, capability: str, node: OrgNode) -> bool:
        for grant in self.grants:
            if not node.path.startswith(grant.path):
                continue
            rule = self._winning_rule(capability, node, grant)
            if rule is None:
                if capability in grant.capabilities:
                    return True
            elif rule.effect == CapabilityRule.Effect.ALLOW:
                return True
        return False

    def can_anywhere(self, capability: str) -> bool:
        return any(capability in g.capabilities for g in self.grants) or any(
            r.capability == capability and r.effect == CapabilityRule.Effect.ALLOW
            for r in self.rules
        )

    def _winning_rule(self, capability: str, node: OrgNode, grant: Grant) -> CapabilityRule | None:
        candidates = [
            r
            for r in self.rules
            if r.capability == capability
            and node.path.startswith(r.node.path)
            and (r.role_id is None or r.role_id == grant.role_id)
        ]
        if not candidates:
            return None
        if any(r.unit_tag_id for r in candidates):
            tag_ids = {t.pk for t in node.tags.all()}
            candidates = [
                r for r in candidates if r.unit_tag_id is None or r.unit_tag_id in tag_ids
            ]
        if not candidates:
            return None
        return max(
            candidates,
            key=lambda r: (
                len(r.node.path),
                r.unit_tag_id is not None,
                r.role_id is not None,
                r.effect == CapabilityRule.Effect.DENY,
            ),
        )


def _minimal_cover(paths) -> tuple[str, ...]:
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path.startswith(k) for k in kept):
            kept.append(path)
    return tuple(sorted(kept))


NO_ACCESS = Access(user_id=None, grants=[])


def access_for(user: User | None) -> Access:
    """The user's access, cached on the user object for the rest of the request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_ACCESS
    cached = getattr(user, "_enseigne_access", None)
    if cached is not None:
        return cached
    memberships = (
        Membership.objects.filter(user=user)
        .select_related("node", "role")
        .prefetch_related("role__grants")
    )
    grants = [
        Grant(
            path=m.node.path,
            role_id=m.role_id,
            role_key=m.role.key,
            role_level=m.role.level,
            capabilities=frozenset(g.capability for g in m.role.grants.all()),
        )
        for m in memberships
    ]
    rules: list[CapabilityRule] = []
    if grants:
        rules = list(CapabilityRule.objects.select_related("node"))
    access = Access(user_id=user.pk, grants=grants, rules=rules)
    user._enseigne_access = access  # type: ignore[attr-defined]
    return access


def forget_access(user: User) -> None:
    if hasattr(user, "_enseigne_access"):
        del user._enseigne_access


def path_filter(paths, field_name: str = "unit_path") -> Q:
    """A Q matching rows under any of ``paths``; matches nothing for no paths."""
    query = Q(pk__in=[])
    for path in paths:
        query |= Q(**{f"{field_name}__startswith": path})
    return query
