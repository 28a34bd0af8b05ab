"""The single customer view: a person links the contact records of several units.

A contact stays its unit's record (its consent, its relationship); a ``Person`` is HQ's
view of the human behind one or more records. Each record has exactly one
``RecordLink`` saying which person it belongs to, how that was decided (a shared e-mail
or phone, a model's score, or a person's hand) and when, with the record's hashed
matching keys, so a new record finds its person in the same transaction that writes it,
whatever unit is writing.

Only hashes, ids and the decision travel here: names, addresses and consent stay on the
records, read through the contacts selectors with the reader's scope.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Contact
from enseigne.lib.ids import time_ordered_uuid
from enseigne.network.models import Network


class IdentityPolicy(models.Model):
    """HQ's identity settings for its network (one row per network, created on first read)."""

    class Mode(models.TextChoices):
        ONE_CONTROLLER = "one_controller", _("One controller (an integrated chain)")
        SEPARATE_CONTROLLERS = "separate_controllers", _("Separate controllers (franchise)")

    class SendingStore(models.TextChoices):
        """Which of a person's records a national campaign sends to (one message a person)."""

        LAST_PURCHASE = (
            "last_purchase",
            _(
                "The store of the last purchase, else of the last interaction, else the oldest record"
            ),
        )
        LAST_INTERACTION = (
            "last_interaction",
            _("The store of the last interaction, else the oldest record"),
        )
        OLDEST_RECORD = "oldest_record", _("The store that registered the person first")

    network = models.OneToOneField(Network, on_delete=models.CASCADE, related_name="identity")
    mode = models.CharField(
        _("data controllers"), max_length=24, choices=Mode.choices, default=Mode.ONE_CONTROLLER
    )
    gmail_rules = models.BooleanField(
        _("treat Gmail addresses with dots or +suffix as one address"), default=False
    )
    sending_store = models.CharField(
        _("a national campaign sends from"),
        max_length=16,
        choices=SendingStore.choices,
        default=SendingStore.LAST_PURCHASE,
    )
    updated_at = models.DateTimeField(auto_now=True)


class Person(models.Model):
    """The human behind one or more records. Holds no personal data of its own.

    The public id is time-ordered (``time_ordered_uuid``): an import writes a person per new
    customer, and random ids would put each one on a random page of the unique index (on a
    million persons, a page read and written per row); time-ordered ones fill its last page.
    """

    public_id = models.UUIDField(default=time_ordered_uuid, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.public_id)


class LinkMethod(models.TextChoices):
    ALONE = "alone", _("No other record matched")
    EMAIL = "email", _("Same e-mail address")
    PHONE = "phone", _("Same phone number")
    MODEL = "model", _("Matched by the model")
    MANUAL = "manual", _("Linked by hand")


class RecordLink(models.Model):
    """Which person a record belongs to, why, and the record's matching keys.

    Unit-owned (row-level security on ``unit_path``). The keys are hashes of the record's
    normalised e-mail and E.164 phone (``identity.keys``), salted with the network's root
    path, 128 bits each in a ``uuid`` column; matching reads them across units as system
    work, no selector shows them. They are on the link (not in a table of their own) so an
    import writes one identity row per record besides its person; what that costs an
    import, and what was tried to bring it down, is in docs/benchmarks.md ("Person
    matching at write time").
    """

    # No database constraints (as Contact.source_import): their per-row checks at commit
    # cost an import more than the link's own insert. Django still cascades a record's
    # deletion to its link, and links are written only by identity.linking and services.
    contact = models.OneToOneField(
        Contact,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="identity_link",
        db_constraint=False,
    )
    # Indexed once, by ``recordlink_person`` below (the field's own index doubled it).
    person = models.ForeignKey(
        Person,
        on_delete=models.PROTECT,
        related_name="links",
        db_constraint=False,
        db_index=False,
    )
    unit_path = models.CharField(max_length=255)
    method = models.CharField(max_length=8, choices=LinkMethod.choices)
    score = models.FloatField(null=True, blank=True)
    linked_at = models.DateTimeField()
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    email_key = models.UUIDField(null=True, blank=True)
    phone_key = models.UUIDField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["person"], name="recordlink_person"),
            models.Index(
                fields=["email_key"],
                name="recordlink_email_key",
                condition=models.Q(email_key__isnull=False),
            ),
            models.Index(
                fields=["phone_key"],
                name="recordlink_phone_key",
                condition=models.Q(phone_key__isnull=False),
            ),
        ]

    @property
    def is_manual(self) -> bool:
        """A decision a person made: no later matching run moves it."""
        return self.method == LinkMethod.MANUAL


class MatchCandidate(models.Model):
    """Two records that may be one person, waiting for HQ's decision (HQ-only rows)."""

    class Reason(models.TextChoices):
        CONFLICT = "conflict", _("Their e-mail and phone point to different people")
        SHARED_KEY = "shared_key", _("Too many records share this e-mail or phone")
        CONTRADICTION = "contradiction", _("Different e-mails and different birthdays")
        LANDLINE = "landline", _("Same landline (a household's phone, not a person's)")
        MODEL = "model", _("The model's score is in the review band")
        SPLIT = "split", _("Kept apart by hand but share a key")

    class Status(models.TextChoices):
        OPEN = "open", _("To review")
        MERGED = "merged", _("Merged")
        REJECTED = "rejected", _("Kept apart")
        REFUSED = "refused", _("Refused without review")

    left = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    # '' : a brand-wide row only a scope holding the network root (HQ) reads or writes.
    unit_path = models.CharField(max_length=255, default="", blank=True)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    score = models.FloatField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["left", "right"], name="matchcandidate_pair"),
            models.CheckConstraint(
                condition=models.Q(left__lt=models.F("right")), name="matchcandidate_ordered"
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="matchcandidate_open")]


class IdentityChange(models.Model):
    """One merge or split, with what it moved, so it can be read and reversed (HQ-only rows)."""

    class Kind(models.TextChoices):
        MERGE = "merge", _("Merge")
        SPLIT = "split", _("Split")

    kind = models.CharField(max_length=5, choices=Kind.choices)
    unit_path = models.CharField(max_length=255, default="", blank=True)
    # Where each moved record was before: [{"contact": id, "from": person id, "method": ...}].
    moves = models.JSONField(default=list)
    into = models.ForeignKey(Person, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=300, blank=True)
    made_at = models.DateTimeField(auto_now_add=True)
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reverses = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reversed_by"
    )

    class Meta:
        indexes = [models.Index(fields=["-made_at"], name="identitychange_recent")]


class KeptApart(models.Model):
    """Two records HQ said are different people: no matching run puts them together again."""

    left = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    right = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+", db_index=False)
    unit_path = models.CharField(max_length=255, default="", blank=True)
    change = models.ForeignKey(
        IdentityChange, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["left", "right"], name="keptapart_pair"),
            models.CheckConstraint(
                condition=models.Q(left__lt=models.F("right")), name="keptapart_ordered"
            ),
        ]
