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

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Contact
from enseigne.network.models import Network

from .public_ids import public_id_of


class KeyIndex(models.Index):
    """A hash index on PostgreSQL, the default elsewhere: for columns only ever compared for
    equality whose values are random (hashed keys).

    A B-tree puts each new random key on a random leaf after a descent; a hash index goes
    straight to the key's bucket and stores a 4-byte hash code. Measured on the link's two
    keys (docs/benchmarks.md, "Person matching at write time"): a link's insert 2.5–3 µs
    cheaper, a key's probe 0.7–1 µs, with 100,000 or 1,000,000 links already there."""

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor == "postgresql":
            using = " USING hash"
        return super().create_sql(model, schema_editor, using=using, **kwargs)


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

    class Schedule(models.TextChoices):
        OFF = "off", _("Only when HQ asks (the button below)")
        NIGHTLY = "nightly", _("Every night")
        WEEKLY = "weekly", _("Once a week")

    class Weekday(models.IntegerChoices):  # datetime.weekday()
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

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
    # The model's thresholds (issue 20): a pair at or above ``match_threshold`` is merged,
    # a pair in [review_threshold, match_threshold) waits in HQ's review queue, a pair below
    # is two people. The rule 0 < review < match <= 1 is ``thresholds_error`` (services
    # check it with a message; the constraint is the database's copy of the same bounds).
    match_threshold = models.FloatField(_("merge automatically from"), default=0.5)
    review_threshold = models.FloatField(_("send to the review queue from"), default=0.05)
    model_schedule = models.CharField(
        _("run the matching"), max_length=8, choices=Schedule.choices, default=Schedule.OFF
    )
    model_weekday = models.PositiveSmallIntegerField(
        _("day of the weekly run"), choices=Weekday.choices, default=Weekday.SUNDAY
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(review_threshold__gt=0)
                & models.Q(review_threshold__lt=models.F("match_threshold"))
                & models.Q(match_threshold__lte=1),
                name="identitypolicy_thresholds",
            ),
        ]


def thresholds_error(match_threshold: float, review_threshold: float) -> dict[str, str] | None:
    """What is wrong with a pair of thresholds, by field (None when they are right).

    One rule for the settings form, the service and the model run: both are probabilities,
    the review band starts above 0 (below it every pair of the network would be queued) and
    ends where automatic merging begins."""
    if not 0 < match_threshold <= 1:
        return {
            "match_threshold": str(
                _("The merge threshold is a number above 0 and at most 1 (for example 0.5).")
            )
        }
    if not 0 < review_threshold < 1:
        return {
            "review_threshold": str(
                _("The review threshold is a number above 0 and below 1 (for example 0.05).")
            )
        }
    if review_threshold >= match_threshold:
        return {
            "review_threshold": str(
                _(
                    "The review threshold must be below the merge threshold "
                    "(%(match)s): pairs between the two go to the review queue."
                )
                % {"match": match_threshold}
            )
        }
    return None


class Person(models.Model):
    """The human behind one or more records. Holds no personal data of its own.

    Its row is as narrow as can be: an import writes one per new customer. Its public id
    (URLs, the API, audit entries) is derived from its row id (``identity.public_ids``)
    rather than stored: a stored random id with its unique index was more than half of
    what a person's row cost an import. Look a person up by public id with
    ``Person.objects.filter(pk=public_ids.pk_of(value))``.
    """

    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.public_id) if self.pk else "Person (not saved)"

    @property
    def public_id(self) -> uuid.UUID:
        """Derived from the row id (``identity.public_ids``): a saved person's only."""
        return public_id_of(self.pk)


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
    # deletion to its link (and nulls ``linked_by`` when a user goes), and links are
    # written only by identity.linking and services.
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
        db_constraint=False,
    )
    email_key = models.UUIDField(null=True, blank=True)
    phone_key = models.UUIDField(null=True, blank=True)
    # A model link's reason: the record it was compared with (``with``), the comparison
    # levels and the match weight of that best pair (``identity.evidence`` reads it).
    evidence = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["person"], name="recordlink_person"),
            # Looked up by equality only (matching, erasure, suppressions by person).
            KeyIndex(
                fields=["email_key"],
                name="recordlink_email_hash",
                condition=models.Q(email_key__isnull=False),
            ),
            KeyIndex(
                fields=["phone_key"],
                name="recordlink_phone_hash",
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

    # The reason the system gives when it splits on its own (``shared_keys.detach_shared``),
    # stored as a code and read in the reader's language.
    SHARED_KEY_REASON = "auto:shared-key"

    class Meta:
        indexes = [models.Index(fields=["-made_at"], name="identitychange_recent")]

    @property
    def reason_display(self) -> str:
        if self.reason == self.SHARED_KEY_REASON:
            return str(
                _(
                    "Automatic: an e-mail or phone typed on too many records (a shop's "
                    "number, a test address) had joined these records."
                )
            )
        return self.reason


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


class ModelRun(models.Model):
    """One pass of the probabilistic model over a network: asked by HQ (the settings page),
    by the schedule or by the command, and what it did.

    At most one run of a network is queued or running (``modelrun_one_active``): a second
    request fails on the constraint, whoever asks at the same moment. Network-level rows
    with ids, counts and a plain-words error: no personal data, no unit's rows (as
    ``IdentityPolicy``, no row-level security policy)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        FAILED = "failed", _("Failed")

    class Trigger(models.TextChoices):
        HAND = "hand", _("Asked from the settings page")
        SCHEDULE = "schedule", _("Scheduled")
        COMMAND = "command", _("Command line")

    class Failure(models.TextChoices):
        """Why a run failed, as HQ reads it (what happened and what to do)."""

        OUT_OF_MEMORY = (
            "memory",
            _(
                "The matching ran out of memory on the server. Ask your technical team to give "
                "the worker more memory, then run it again."
            ),
        )
        DATABASE = (
            "database",
            _(
                "The database stopped the matching before it could save its results; nothing "
                "was changed. Run it again; if it fails again, tell your technical team."
            ),
        )
        LOST = (
            "lost",
            _(
                "The run stopped without finishing (the worker was probably restarted); "
                "nothing was changed. Run it again."
            ),
        )
        UNEXPECTED = (
            "unexpected",
            _(
                "The matching stopped on an unexpected error; nothing was changed. Run it "
                "again; if it fails again, tell your technical team (the details are in the "
                "worker's log)."
            ),
        )

    ACTIVE = (Status.QUEUED, Status.RUNNING)
    # A run queued or running this long was lost (a worker killed, a queue emptied): it no
    # longer blocks the next one. A million records take about two minutes.
    EXPIRES_AFTER = dt.timedelta(hours=6)

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The thresholds the run used, read from the policy when it starts.
    match_threshold = models.FloatField(null=True, blank=True)
    review_threshold = models.FloatField(null=True, blank=True)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    records = models.PositiveIntegerField(default=0)
    merged = models.PositiveIntegerField(default=0)
    to_review = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    alerts = models.PositiveIntegerField(default=0)
    failure = models.CharField(max_length=10, choices=Failure.choices, blank=True)
    # The exception's class for the technical team (its message may hold personal data).
    failure_kind = models.CharField(max_length=80, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["network"],
                condition=models.Q(status__in=["queued", "running"]),
                name="modelrun_one_active",
            ),
        ]
        indexes = [models.Index(fields=["network", "-queued_at"], name="modelrun_recent")]

    @classmethod
    def lost(cls, now: dt.datetime) -> models.Q:
        """The runs still marked queued or running that no worker will finish."""
        since = now - cls.EXPIRES_AFTER
        return models.Q(status=cls.Status.QUEUED, queued_at__lt=since) | models.Q(
            status=cls.Status.RUNNING, started_at__lt=since
        )

    def is_under_way(self, now: dt.datetime) -> bool:
        """Queued or running, and not lost: a new run would be refused."""
        return (
            self.status in self.ACTIVE
            and not ModelRun.objects.filter(self.lost(now), pk=self.pk).exists()
        )
