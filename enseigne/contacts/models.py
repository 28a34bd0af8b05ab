"""Contacts owned by one unit, their consent ledger, suppressions, imports and segments.

Every unit-owned table carries ``unit_path`` (the owning unit's org path): the scoped
selectors filter on it and PostgreSQL row-level security checks it.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from enseigne.lib.imports import ImportProgress, reason_shown
from enseigne.network.models import OrgNode, User


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")


class ConsentStatus(models.TextChoices):
    NONE = "none", _("No consent")
    GRANTED = "granted", _("Opted in")
    SOFT_OPT_IN = "soft_opt_in", _("Existing customer (soft opt-in)")
    WITHDRAWN = "withdrawn", _("Withdrawn")


VALID_CONSENT = (ConsentStatus.GRANTED, ConsentStatus.SOFT_OPT_IN)


class Tag(models.Model):
    """A contact label (e.g. ``vip``); names are shared network-wide, taggings are per unit."""

    name = models.SlugField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class CustomAttribute(models.Model):
    """An attribute HQ declares for every contact (e.g. ``loyalty_tier``)."""

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        BOOLEAN = "boolean", _("Yes/No")
        CHOICE = "choice", _("Choice")

    key = models.SlugField(max_length=40, unique=True)
    label = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.TEXT)
    choices = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return self.label


def hashed_identifier(kind: str) -> models.Func:
    """SQL for ``identifier_hash(kind, <column kind>)`` of a stored, already normalised address
    (``enseigne_sha256``: a SQL function on PostgreSQL, a Python one on SQLite); NULL stays NULL."""
    return models.Func(
        models.F(kind),
        function="enseigne_sha256",
        template=f"%(function)s('{kind}:' || %(expressions)s)",
        output_field=models.CharField(max_length=64),
    )


class Contact(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # No index of its own: every index below starts with the unit.
    unit = models.ForeignKey(
        OrgNode, on_delete=models.PROTECT, related_name="contacts", db_index=False
    )
    # Read by the row-level security policy, never filtered on by queries: they scope by
    # unit id (leakproof, so usable by an index under RLS), hence no index to maintain.
    unit_path = models.CharField(max_length=255)
    email = models.CharField(_("email"), max_length=254, null=True, blank=True)
    phone = models.CharField(_("phone"), max_length=20, null=True, blank=True)
    # identifier_hash() of each address, kept by the database: a campaign audience matches
    # a million contacts against the (hashed) suppression list by equality on these,
    # where hashing every address in the query cost about a second.
    email_hash = models.GeneratedField(
        expression=hashed_identifier("email"),
        output_field=models.CharField(max_length=64),
        db_persist=True,
        editable=False,
    )
    phone_hash = models.GeneratedField(
        expression=hashed_identifier("phone"),
        output_field=models.CharField(max_length=64),
        db_persist=True,
        editable=False,
    )
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    is_customer = models.BooleanField(_("existing customer"), default=False)
    attributes = models.JSONField(default=dict, blank=True)
    # Current consent per channel, kept in step with the ledger by the consent service in
    # the same transaction: the ledger is the proof, these columns make segments fast.
    email_consent = models.CharField(
        max_length=12, choices=ConsentStatus.choices, default=ConsentStatus.NONE
    )
    sms_consent = models.CharField(
        max_length=12, choices=ConsentStatus.choices, default=ConsentStatus.NONE
    )
    # Whether the person accepted that their own opens are recorded (the ledger's purpose
    # "open_tracking"); without it the open pixel counts for the campaign only.
    open_tracking = models.BooleanField(
        _("opens recorded per person"), default=False, db_default=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Which import created the contact: written once, never joined on. No database
    # constraint and no index (their per-row check and upkeep were 15 % of a million-row
    # import); Django still clears it when an import is deleted (docs/decisions.md).
    source_import = models.ForeignKey(
        "ContactImport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    tags = models.ManyToManyField(Tag, through="ContactTagging", related_name="contacts")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit", "email"],
                condition=Q(email__isnull=False),
                name="contact_unit_email",
            ),
            models.UniqueConstraint(
                fields=["unit", "phone"],
                condition=Q(phone__isnull=False),
                name="contact_unit_phone",
            ),
            models.CheckConstraint(
                condition=Q(email__isnull=False) | Q(phone__isnull=False), name="contact_reachable"
            ),
        ]
        indexes = [
            models.Index(fields=["unit", "-created_at", "-id"], name="contact_unit_recent"),
            # The list across many units (HQ, a region): newest first, read until 50 match.
            models.Index(fields=["-created_at", "-id"], name="contact_recent"),
            models.Index(fields=["unit", "last_name", "first_name"], name="contact_unit_name"),
            models.Index(fields=["unit", "email_consent"], name="contact_unit_email_consent"),
            models.Index(fields=["unit", "sms_consent"], name="contact_unit_sms_consent"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or self.phone or str(self.public_id)

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def consent_for(self, channel: str) -> str:
        return self.email_consent if channel == Channel.EMAIL else self.sms_consent

    def addresses(self) -> list[tuple[str, str]]:
        """(channel, address) for each address the contact has."""
        return [
            (channel, address)
            for channel, address in ((Channel.EMAIL, self.email), (Channel.SMS, self.phone))
            if address
        ]


class ContactTagging(models.Model):
    # Both lookups are served by the two indexes below; no separate FK indexes.
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, db_index=False)
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, db_index=False)
    unit_path = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "tag"], name="contact_tagging_unique")
        ]
        indexes = [models.Index(fields=["tag", "contact"], name="tagging_tag_contact")]


class ConsentEvent(models.Model):
    """Append-only proof of consent: a withdrawal is a new row, never an edit."""

    class Source(models.TextChoices):
        FORM = "form", _("Web form")
        IMPORT = "import", _("File import")
        API = "api", _("API")
        IN_STORE = "in_store", _("In store")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribe link")
        STAFF = "staff", _("Entered by staff")
        SMS_STOP = "sms_stop", _("SMS STOP reply")

    # Indexed by consent_contact_channel, which starts with the contact. Never cascaded: the
    # app role may not DELETE the ledger (PostgreSQL grants); erasure removes a contact's events
    # first through services.contact_erase (docs/decisions.md, "Append-only ledgers").
    contact = models.ForeignKey(
        Contact, on_delete=models.DO_NOTHING, related_name="consent_events", db_index=False
    )
    unit_path = models.CharField(max_length=255)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    purpose = models.CharField(max_length=40, default="marketing")
    status = models.CharField(max_length=12, choices=ConsentStatus.choices)
    occurred_at = models.DateTimeField()
    source = models.CharField(max_length=12, choices=Source.choices)
    source_ref = models.CharField(max_length=128, blank=True)
    wording_version = models.CharField(max_length=40, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    recorded_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(
                fields=["contact", "channel", "-occurred_at"], name="consent_contact_channel"
            ),
            # What a store recorded lately (the journeys' consent trigger reads it every minute).
            models.Index(fields=["unit_path", "recorded_at"], name="consent_unit_recorded"),
        ]

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Consent events are append-only; record a new event instead.")
        super().save(*args, **kwargs)


class Suppression(models.Model):
    """Never send to this identifier. Stores only a hash; unit_path '' means brand-wide."""

    class Reason(models.TextChoices):
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        COMPLAINT = "complaint", _("Spam complaint")
        ERASURE = "erasure", _("Erased at the person's request (GDPR)")

    unit = models.ForeignKey(
        OrgNode, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    unit_path = models.CharField(max_length=255, blank=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    value_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["unit_path", "channel", "value_hash"], name="suppression_unique"
            )
        ]
        indexes = [models.Index(fields=["value_hash"], name="suppression_hash")]


class ContactImport(ImportProgress):
    unit = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    consent_channels = models.JSONField(default=list, blank=True)
    consent_wording = models.CharField(max_length=40, blank=True)
    tag_names = models.JSONField(default=list, blank=True)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)


class ImportRejection(models.Model):
    """One line of an import's report: why a row was not imported (``refused``), or, for a
    row that was, a value left out or a possible duplicate to check."""

    class Kind(models.TextChoices):
        REFUSED = "refused", _("Row not imported")
        FIELD_SKIPPED = "skipped", _("Value left out")
        POSSIBLE_DUPLICATE = "duplicate", _("Possible duplicate")

    contact_import = models.ForeignKey(
        ContactImport, on_delete=models.CASCADE, related_name="rejections"
    )
    unit_path = models.CharField(max_length=255)
    row_number = models.PositiveIntegerField()
    field = models.CharField(max_length=60)
    value = models.CharField(max_length=200, blank=True)
    # Stored by ``lib.imports.reason_stored`` (source text and parameters), shown in the
    # reader's language by ``reason_text``; a line written before as text shows as it was.
    reason = models.CharField(max_length=500)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.REFUSED)

    class Meta:
        ordering = ["row_number", "id"]

    @property
    def reason_text(self) -> str:
        """The reason in the reader's language (``lib.imports.reason_shown``)."""
        return reason_shown(self.reason)


class Segment(models.Model):
    """A saved rule tree; owned by a node (a unit, a region or the whole network)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="segments")
    unit_path = models.CharField(max_length=255)
    name = models.CharField(_("name"), max_length=150)
    description = models.CharField(_("description"), max_length=300, blank=True)
    rules = models.JSONField()
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
