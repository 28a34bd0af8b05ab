"""The org tree (network → regions → units), people, roles and the permission tree."""

from __future__ import annotations

import uuid

from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from treebeard.mp_tree import MP_Node

from enseigne.network.capabilities import Capability


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra):
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person who logs in with an email address. Rights come only from memberships."""

    username = None
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(_("email"), unique=True)
    language = models.CharField(_("language"), max_length=8, default="fr")

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    def __str__(self) -> str:
        return self.get_full_name() or self.email


class OrgNode(MP_Node):
    """One node of the org tree. The root is the network (the brand)."""

    class Kind(models.TextChoices):
        NETWORK = "network", _("Network")
        REGION = "region", _("Region")
        UNIT = "unit", _("Unit")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=200)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    tags = models.ManyToManyField("UnitTag", blank=True, related_name="nodes")

    # Paths are denormalised into unit-owned rows (unit_path), so they must never shift:
    # no node_order_by (which re-numbers siblings on insert) and no moves without a rewrite.
    steplen = 4

    class Meta:
        indexes = [models.Index(fields=["kind", "path"])]

    def __str__(self) -> str:
        return self.name


class UnitTag(models.Model):
    """A label HQ puts on units (e.g. ``pilot``) to target a subset."""

    name = models.SlugField(max_length=40, unique=True)

    def __str__(self) -> str:
        return self.name


class Network(models.Model):
    """The brand: its sender identity and defaults. One per root of the tree."""

    node = models.OneToOneField(OrgNode, on_delete=models.CASCADE, related_name="network")
    legal_name = models.CharField(_("legal sender identity"), max_length=200)
    sending_domain = models.CharField(_("sending domain"), max_length=200)
    default_country = models.CharField(_("default country"), max_length=2, default="FR")
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")

    def __str__(self) -> str:
        return self.legal_name


class UnitVariable(models.Model):
    """A variable HQ declares (e.g. ``parking``); each unit fills its own value."""

    key = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=120)
    help_text = models.CharField(max_length=250, blank=True)

    def __str__(self) -> str:
        return self.label


class UnitProfile(models.Model):
    """What templates fill automatically for a unit."""

    node = models.OneToOneField(OrgNode, on_delete=models.CASCADE, related_name="profile")
    address_line = models.CharField(_("address"), max_length=250, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=16, blank=True)
    city = models.CharField(_("city"), max_length=120, blank=True)
    country = models.CharField(_("country"), max_length=2, default="FR")
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    email = models.EmailField(_("email"), blank=True)
    website = models.URLField(_("website"), blank=True)
    manager_name = models.CharField(_("manager's name"), max_length=120, blank=True)
    opening_hours = models.TextField(_("opening hours"), blank=True)
    # Empty: the network's (``selectors.unit_time_zone``), so a network abroad needs no
    # setting on each of its units.
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        help_text=_("Leave empty to use the network's time zone."),
    )
    variables = models.JSONField(_("custom variables"), default=dict, blank=True)

    def __str__(self) -> str:
        return f"Profile of {self.node}"


class Role(models.Model):
    class Level(models.TextChoices):
        HQ = "hq", _("Head office")
        REGION = "region", _("Region")
        UNIT = "unit", _("Unit")

    key = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=120)
    level = models.CharField(max_length=10, choices=Level.choices)
    is_builtin = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """The name people read: a built-in role's in their language, HQ's own as written."""
        return gettext(self.name) if self.is_builtin else self.name


class RoleGrant(models.Model):
    """A capability a role has wherever its holder has a membership."""

    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="grants")
    capability = models.CharField(max_length=40, choices=Capability.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["role", "capability"], name="rolegrant_unique")
        ]


class CapabilityRule(models.Model):
    """HQ narrows or widens a capability for a subtree, optionally only for tagged units.

    The most specific rule wins: deeper node first; at the same node a tag rule beats an
    untagged one, a role-specific rule beats an all-roles one, and deny beats allow.
    """

    class Effect(models.TextChoices):
        ALLOW = "allow", _("Allow")
        DENY = "deny", _("Deny")

    node = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="capability_rules")
    capability = models.CharField(max_length=40, choices=Capability.choices)
    effect = models.CharField(max_length=5, choices=Effect.choices)
    role = models.ForeignKey(Role, null=True, blank=True, on_delete=models.CASCADE)
    unit_tag = models.ForeignKey(UnitTag, null=True, blank=True, on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)


class Membership(models.Model):
    """A user holds a role at one node; it applies to that node's whole subtree."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    node = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "node", "role"], name="membership_unique")
        ]


class AuditEvent(models.Model):
    """Who changed what, when. Written by services, never edited."""

    actor = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    node_path = models.CharField(max_length=255, blank=True, db_index=True)
    changes = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]


class TokenScope(models.TextChoices):
    """What an API token may do, within its user's rights (it never adds to them).

    Each write scope opens the writes and reads of its part of the API; ``read_only`` opens
    every read and no write, and is never combined with a write scope."""

    READ_ONLY = "read_only", _("Read only (every read, no write)")
    CONTACTS = "contacts", _("Contacts, consent, imports and segments")
    CONVERSIONS = "conversions", _("Conversions (orders from a till or an e-shop)")
    CAMPAIGNS = "campaigns", _("Campaigns, templates and the library")


class ApiToken(models.Model):
    """A bearer token; only its hash is stored. It carries at most its user's scope,
    narrowed by ``scopes``, until ``expires_at`` or until revoked."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=120, blank=True)
    prefix = models.CharField(max_length=12)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
