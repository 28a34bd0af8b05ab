"""The brand kit: asset library, HQ templates (versioned), units' local versions, guardrails."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models.fields.json import KT
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Channel
from enseigne.network.models import OrgNode, User

# The statuses (``campaigns.Campaign.Status`` values) of a campaign whose content was sent
# for approval or approved: a local version it uses can no longer be edited, so what was
# approved is what the unit sees. Declared here because ``brand`` may not import
# ``campaigns``; ``Campaign.CONTENT_FROZEN`` is this tuple.
CONTENT_FROZEN_STATUSES = (
    "submitted",
    "approved",
    "scheduled",
    "preparing",
    "sending",
    "paused",
)


class Asset(models.Model):
    """An image, logo, text snippet, offer or product. HQ assets have ``unit_path`` ''."""

    class Kind(models.TextChoices):
        IMAGE = "image", _("Image")
        LOGO = "logo", _("Logo")
        TEXT = "text", _("Text snippet")
        OFFER = "offer", _("Offer")
        PRODUCT = "product", _("Product")

    class Variant(models.TextChoices):
        NONE = "", "—"
        COLOUR = "colour", _("Colour")
        WHITE = "white", _("White")
        SQUARE = "square", _("Square")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=200)
    folder = models.CharField(_("folder"), max_length=120, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    variant = models.CharField(
        _("logo variant"), max_length=10, choices=Variant.choices, blank=True
    )
    # Owner: '' for HQ; a unit's path for the unit's own assets (row-level security).
    unit_path = models.CharField(max_length=255, blank=True)
    # Who sees it: every unit whose path starts with this (HQ chooses; a unit's own = its path).
    shared_path = models.CharField(max_length=255)
    file = models.FileField(upload_to="assets/%Y/%m/", blank=True)
    thumbnail = models.FileField(upload_to="assets/%Y/%m/", blank=True)
    email_rendition = models.FileField(upload_to="assets/%Y/%m/", blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # The weight of the e-mail rendition: what a recipient downloads (guardrail "max image weight").
    size_bytes = models.PositiveIntegerField(default=0)
    # Text snippet: {"text"}; offer: {"title","text","price","valid_from","valid_until","legal","url","cta"};
    # product: {"sku","name","category","price","url","cta"} (orders' lines find it by SKU).
    data = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["folder", "name"]
        indexes = [
            models.Index(fields=["shared_path", "kind"], name="asset_shared_kind"),
            # Order lines find their product by SKU (commerce.services.products_for).
            models.Index(
                KT("data__sku"), condition=models.Q(kind="product"), name="asset_product_sku"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_hq(self) -> bool:
        return self.unit_path == ""

    def stored_files(self) -> list:
        """The original and its renditions that exist (to delete them with the asset)."""
        return [f for f in (self.file, self.thumbnail, self.email_rendition) if f]


class Template(models.Model):
    """An HQ template (or a unit's free frame); its content lives in versions, the newest
    published one is current."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    name = models.CharField(_("name"), max_length=200)
    description = models.CharField(_("description"), max_length=300, blank=True)
    # Which units may use it: those whose path starts with this.
    shared_path = models.CharField(max_length=255)
    current = models.ForeignKey(
        "TemplateVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archived = models.BooleanField(default=False)
    # A unit's free message: Enseigne's own frame (brand header, the unit's footer, the
    # unsubscribe link), every word inside it the unit's (see brand/free.py).
    is_free = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """One HQ edit, immutable once saved: source, zones and the compiled output."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField()
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    zones = models.JSONField(default=list)
    # HQ's variants of zones per persona (``brand.variants``): {zone: [{"persona": public id,
    # "value": …}, …]} in HQ's order. Part of the version, so an approved send keeps them.
    variants = models.JSONField(default=dict, blank=True)
    compiled_html = models.TextField(blank=True)
    compiled_text = models.TextField(blank=True)
    # SMS: the locked parts, never cut by the segment limit.
    sms_stop = models.CharField(_("STOP mention"), max_length=40, blank=True)
    max_segments = models.PositiveSmallIntegerField(default=2)
    # Library items whose address HQ wrote into the source (for "used in N templates").
    assets = models.ManyToManyField(Asset, blank=True, related_name="template_versions")
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="template_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.number}"


class LocalVersion(models.Model):
    """A unit's filling of an HQ template's zones; follows the template's current version."""

    class Status(models.TextChoices):
        OK = "ok", _("Ready")
        FLAGGED = "flagged", _("Needs attention")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    unit = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    unit_path = models.CharField(max_length=255)
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="local_versions")
    version = models.ForeignKey(TemplateVersion, on_delete=models.PROTECT, related_name="+")
    # The version it was on before the last HQ change: the unit's diff compares the two.
    previous_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    name = models.CharField(_("name"), max_length=200)
    values = models.JSONField(default=dict, blank=True)
    # Library items picked in its zones (for usage counts and to refresh them when they change).
    assets = models.ManyToManyField(Asset, blank=True, related_name="local_versions")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OK)
    problems = models.JSONField(default=list, blank=True)
    updated_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["unit", "template"], name="local_version_unit_template")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.OK and not self.problems


class Guardrails(models.Model):
    """HQ's rules for every local version of the network."""

    node = models.OneToOneField(OrgNode, on_delete=models.CASCADE, related_name="guardrails")
    restricted_patterns = models.JSONField(
        _("restricted words"),
        default=list,
        blank=True,
        help_text=_("One per line: a word or phrase, or re:<regular expression>."),
    )
    allowed_link_domains = models.JSONField(
        _("allowed link domains"),
        default=list,
        blank=True,
        help_text=_(
            "Links in editable zones must go to one of these domains (or their subdomains)."
        ),
    )
    max_image_kb = models.PositiveIntegerField(_("maximum image weight (KB)"), default=500)
    require_logo = models.BooleanField(_("a logo is required"), default=True)
    require_legal_footer = models.BooleanField(_("the legal footer is required"), default=True)
    updated_at = models.DateTimeField(auto_now=True)
