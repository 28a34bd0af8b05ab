"""Writes to the org tree, people and the permission tree. Each one is audited."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from enseigne.network.access import access_for, forget_access
from enseigne.network.capabilities import BUILTIN_ROLES, Capability
from enseigne.network.models import (
    AuditEvent,
    CapabilityRule,
    Membership,
    Network,
    OrgNode,
    Role,
    RoleGrant,
    UnitProfile,
    UnitTag,
    UnitVariable,
    User,
)

PROFILE_FIELDS = (
    "address_line",
    "postal_code",
    "city",
    "country",
    "phone",
    "email",
    "website",
    "manager_name",
    "opening_hours",
    "time_zone",
)


def audit(
    *,
    actor: User | None,
    action: str,
    target=None,
    target_type: str = "",
    target_id: str = "",
    node_path: str = "",
    changes=None,
) -> None:
    AuditEvent.objects.create(
        actor=actor,
        action=action,
        target_type=target_type or target.__class__.__name__.lower(),
        target_id=target_id or str(getattr(target, "public_id", None) or target.pk),
        node_path=node_path,
        changes=changes or {},
    )


def _require_hq_admin(actor: User | None) -> None:
    if actor is not None and not access_for(actor).is_hq_admin:
        raise PermissionDenied(_("Only HQ admins manage users, roles and the network."))


def builtin_roles_ensure() -> dict[str, Role]:
    """Create the built-in roles and their grants; idempotent."""
    roles = {}
    for key, (label, level, capabilities) in BUILTIN_ROLES.items():
        role, _created = Role.objects.get_or_create(
            key=key, defaults={"name": label, "level": level, "is_builtin": True}
        )
        existing = set(role.grants.values_list("capability", flat=True))
        RoleGrant.objects.bulk_create(
            [RoleGrant(role=role, capability=c) for c in sorted(capabilities - existing)]
        )
        roles[key] = role
    return roles


@transaction.atomic
def network_create(
    *,
    actor: User | None,
    name: str,
    code: str,
    legal_name: str,
    sending_domain: str,
    default_country: str = "FR",
    time_zone: str = "Europe/Paris",
) -> OrgNode:
    _require_hq_admin(actor)
    root = OrgNode.objects.add_root({"kind": OrgNode.Kind.NETWORK, "name": name, "code": code})
    Network.objects.create(
        node=root,
        legal_name=legal_name,
        sending_domain=sending_domain,
        default_country=default_country,
        time_zone=time_zone,
    )
    audit(actor=actor, action="network.create", target=root, node_path=root.path)
    return root


@transaction.atomic
def node_create(
    *,
    actor: User | None,
    parent: OrgNode,
    kind: str,
    name: str,
    code: str,
    profile: dict | None = None,
    tags: list[str] | None = None,
) -> OrgNode:
    """Add a region (under the network or a region) or a unit (under either)."""
    _require_hq_admin(actor)
    if parent.kind == OrgNode.Kind.UNIT:
        raise ValidationError({"parent": _("A unit cannot contain other units or regions.")})
    if kind not in {OrgNode.Kind.REGION, OrgNode.Kind.UNIT}:
        raise ValidationError({"kind": _("Choose a region or a unit.")})
    if OrgNode.objects.filter(code=code).exists():
        raise ValidationError({"code": _("The code “%(code)s” is already used.") % {"code": code}})
    parent.refresh_from_db()
    node = OrgNode.objects.add_child(parent, {"kind": kind, "name": name, "code": code})
    if kind == OrgNode.Kind.UNIT:
        UnitProfile.objects.create(node=node, **_clean_profile(profile or {}))
        if tags:
            node.tags.set(_tags(tags))
    audit(
        actor=actor,
        action=f"{kind}.create",
        target=node,
        node_path=node.path,
        changes={"name": name, "code": code, "parent": str(parent.public_id)},
    )
    return node


def _clean_profile(data: dict) -> dict:
    unknown = set(data) - set(PROFILE_FIELDS) - {"variables"}
    if unknown:
        raise ValidationError(
            {
                "profile": _("Unknown profile fields: %(fields)s.")
                % {"fields": ", ".join(sorted(unknown))}
            }
        )
    if "variables" in data:
        declared = set(UnitVariable.objects.values_list("key", flat=True))
        undeclared = set(data["variables"]) - declared
        if undeclared:
            raise ValidationError(
                {
                    "variables": _("HQ has not declared: %(keys)s.")
                    % {"keys": ", ".join(sorted(undeclared))}
                }
            )
    return data


def _tags(names: list[str]) -> list[UnitTag]:
    return [UnitTag.objects.get_or_create(name=n.strip().lower())[0] for n in names if n.strip()]


@transaction.atomic
def unit_profile_update(
    *, actor: User, unit: OrgNode, data: dict, tags: list[str] | None = None
) -> UnitProfile:
    if not access_for(actor).can(Capability.MANAGE_NETWORK, unit):
        raise PermissionDenied
    profile = unit.profile
    data = _clean_profile(data)
    changes = {}
    for field, value in data.items():
        old = getattr(profile, field)
        if old != value:
            changes[field] = {"from": old, "to": value}
            setattr(profile, field, value)
    if changes:
        profile.full_clean()
        profile.save(update_fields=list(changes))
    if tags is not None:
        before = sorted(t.name for t in unit.tags.all())
        unit.tags.set(_tags(tags))
        after = sorted(t.name for t in unit.tags.all())
        if before != after:
            changes["tags"] = {"from": before, "to": after}
    if changes:
        audit(actor=actor, action="unit.update", target=unit, node_path=unit.path, changes=changes)
    return profile


@transaction.atomic
def unit_variable_declare(
    *, actor: User | None, key: str, label: str, help_text: str = ""
) -> UnitVariable:
    _require_hq_admin(actor)
    variable, _created = UnitVariable.objects.update_or_create(
        key=key, defaults={"label": label, "help_text": help_text}
    )
    audit(actor=actor, action="unit_variable.declare", target=variable, changes={"key": key})
    return variable


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    email: str,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    language: str = "fr",
) -> User:
    _require_hq_admin(actor)
    email = email.strip().lower()
    if User.objects.filter(email=email).exists():
        raise ValidationError(
            {"email": _("A user with the email %(email)s already exists.") % {"email": email}}
        )
    user = User.objects.create_user(
        email, password, first_name=first_name, last_name=last_name, language=language
    )
    audit(actor=actor, action="user.create", target=user, changes={"email": email})
    return user


@transaction.atomic
def user_create_with_membership(
    *,
    actor: User | None,
    email: str,
    node: OrgNode,
    role: Role,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    language: str = "fr",
) -> User:
    """A new user and their first role, in one transaction: a role that does not fit the node
    refuses both, never a user left with no role."""
    user = user_create(
        actor=actor,
        email=email,
        first_name=first_name,
        last_name=last_name,
        password=password,
        language=language,
    )
    membership_grant(actor=actor, user=user, node=node, role=role)
    return user


@transaction.atomic
def user_set_active(*, actor: User, user: User, active: bool) -> None:
    _require_hq_admin(actor)
    if user == actor and not active:
        raise ValidationError(_("You cannot deactivate your own account."))
    User.objects.filter(pk=user.pk).update(is_active=active)
    audit(actor=actor, action="user.activate" if active else "user.deactivate", target=user)


@transaction.atomic
def membership_grant(*, actor: User | None, user: User, node: OrgNode, role: Role) -> Membership:
    _require_hq_admin(actor)
    expected_kind = {
        "hq": OrgNode.Kind.NETWORK,
        "region": OrgNode.Kind.REGION,
        "unit": OrgNode.Kind.UNIT,
    }
    if node.kind != expected_kind[role.level]:
        held_at = {
            "hq": _("The role “%(role)s” is held at the head office, not at %(node)s."),
            "region": _("The role “%(role)s” is held at a region, not at %(node)s."),
            "unit": _("The role “%(role)s” is held at a unit, not at %(node)s."),
        }[role.level]
        raise ValidationError({"role": held_at % {"role": role.label, "node": node.name}})
    membership, created = Membership.objects.get_or_create(user=user, node=node, role=role)
    if created:
        audit(
            actor=actor,
            action="membership.grant",
            target=user,
            node_path=node.path,
            changes={"role": role.key, "node": str(node.public_id)},
        )
    forget_access(user)
    return membership


@transaction.atomic
def membership_revoke(*, actor: User, membership: Membership) -> None:
    _require_hq_admin(actor)
    audit(
        actor=actor,
        action="membership.revoke",
        target=membership.user,
        node_path=membership.node.path,
        changes={"role": membership.role.key, "node": str(membership.node.public_id)},
    )
    membership.delete()


@transaction.atomic
def role_create(*, actor: User, key: str, name: str, level: str, capabilities: list[str]) -> Role:
    _require_hq_admin(actor)
    if Role.objects.filter(key=key).exists():
        raise ValidationError({"key": _("The role key “%(key)s” is already used.") % {"key": key}})
    role = Role.objects.create(key=key, name=name, level=level)
    _set_grants(role, capabilities)
    audit(
        actor=actor,
        action="role.create",
        target=role,
        changes={"capabilities": sorted(capabilities)},
    )
    return role


@transaction.atomic
def role_set_capabilities(*, actor: User, role: Role, capabilities: list[str]) -> None:
    _require_hq_admin(actor)
    if role.key == "hq_admin" and Capability.MANAGE_USERS not in capabilities:
        raise ValidationError(
            _("HQ admins must keep “%(capability)s”, or nobody could manage roles.")
            % {"capability": Capability.MANAGE_USERS.label}
        )
    before = sorted(role.grants.values_list("capability", flat=True))
    _set_grants(role, capabilities)
    audit(
        actor=actor,
        action="role.update",
        target=role,
        changes={"capabilities": {"from": before, "to": sorted(capabilities)}},
    )


def _set_grants(role: Role, capabilities: list[str]) -> None:
    valid = {c.value for c in Capability}
    unknown = set(capabilities) - valid
    if unknown:
        raise ValidationError(
            {
                "capabilities": _("Unknown capabilities: %(keys)s.")
                % {"keys": ", ".join(sorted(unknown))}
            }
        )
    role.grants.exclude(capability__in=capabilities).delete()
    existing = set(role.grants.values_list("capability", flat=True))
    RoleGrant.objects.bulk_create(
        [RoleGrant(role=role, capability=c) for c in sorted(set(capabilities) - existing)]
    )


@transaction.atomic
def capability_rule_add(
    *,
    actor: User,
    node: OrgNode,
    capability: str,
    effect: str,
    role: Role | None = None,
    unit_tag: str | None = None,
) -> CapabilityRule:
    """E.g. allow send_sms for units tagged ``pilot`` under the south-east region."""
    _require_hq_admin(actor)
    if capability == Capability.MANAGE_USERS:
        raise ValidationError(
            _("“%(capability)s” belongs to HQ admins and cannot be narrowed or widened.")
            % {"capability": Capability.MANAGE_USERS.label}
        )
    tag = _tags([unit_tag])[0] if unit_tag else None
    rule = CapabilityRule.objects.create(
        node=node, capability=capability, effect=effect, role=role, unit_tag=tag
    )
    audit(
        actor=actor,
        action="capability_rule.add",
        target=rule,
        node_path=node.path,
        changes={
            "capability": capability,
            "effect": effect,
            "role": role.key if role else None,
            "tag": unit_tag,
        },
    )
    return rule


@transaction.atomic
def capability_rule_remove(*, actor: User, rule: CapabilityRule) -> None:
    _require_hq_admin(actor)
    audit(
        actor=actor,
        action="capability_rule.remove",
        target=rule,
        node_path=rule.node.path,
        changes={"capability": rule.capability, "effect": rule.effect},
    )
    rule.delete()
