"""Journeys (issue 22): triggered, multi-step campaigns HQ designs and every store runs.

docs/decisions.md, "Journeys: the plan before the code", gives the shape: a template (HQ's,
or a store's own) with immutable published versions of its flow; a store's run of it; one
enrollment per (run, record, occurrence) waiting at a step until its wake-up time; an
append-only history of the steps taken. The flow itself is JSON checked by ``flow``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from enseigne.contacts.models import Contact
from enseigne.network.models import Network, OrgNode


class JourneyTemplate(models.Model):
    """A journey as its author designs it: HQ for the network, or a store for itself."""

    class Reentry(models.TextChoices):
        NEVER = "never", _("never: once per customer")
        AFTER = "after", _("again after a number of days")
        EVERY = "every", _("at every occurrence of the trigger (e.g. a birthday each year)")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    owner_path = models.CharField(max_length=255)
    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("description"), max_length=300, blank=True)
    reentry = models.CharField(
        _("enter again"), max_length=8, choices=Reentry.choices, default=Reentry.NEVER
    )
    reentry_days = models.PositiveIntegerField(_("days before entering again"), null=True)
    # Share of the entrants kept out of every send to measure the journey's lift (0–50 %).
    holdout_percent = models.PositiveSmallIntegerField(_("control group (%)"), default=0)
    live_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="journeys_template_name"),
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=50), name="journeys_template_holdout"
            ),
            models.CheckConstraint(
                condition=~Q(reentry="after") | Q(reentry_days__gte=1),
                name="journeys_template_reentry_days",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """One published flow of a template, never edited: editing publishes the next number."""

    template = models.ForeignKey(JourneyTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # The template's owner (row-level security reads it, as on the template).
    owner_path = models.CharField(max_length=255)
    # The trigger and the steps, as ``flow.Flow`` reads them (checked before it is saved).
    flow = models.JSONField()
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["template", "number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="journeys_version_number")
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"


class JourneyRun(models.Model):
    """A store's run of a journey: the version it follows, from which day, and its state."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Running")
        PAUSED = "paused", _("Paused")
        STOPPED = "stopped", _("Stopped")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    template = models.ForeignKey(JourneyTemplate, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="runs")
    unit = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    unit_path = models.CharField(max_length=255)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    starts_on = models.DateField(_("starts on"))
    # HQ imposed it (on a region or a tag): the store may personalise it, not stop it.
    mandatory = models.BooleanField(default=False)
    # Paused by HQ's network-wide pause: only HQ's resume starts it again (a store's own
    # pause is left alone by HQ's resume).
    paused_by_hq = models.BooleanField(default=False)
    # Why a send step cannot send (its template withdrawn or no longer passing): its people
    # keep waiting at that step, tried again every hour, and the run's pages say why.
    problem = models.CharField(max_length=300, blank=True)
    problem_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The triggers' progress (journeys.triggers): events read up to this moment, and the
    # last of the store's local days whose dates and inactivity were read.
    events_read_at = models.DateTimeField(null=True, blank=True)
    days_read_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "unit"], name="journeys_run_unit")
        ]


class Enrollment(models.Model):
    """A record's way through one run, for one occurrence of the trigger.

    ``occurrence`` is the trigger's natural key (the birthday's year, the order's id, the
    consent event's id): a trigger seen twice enrolls once. The row waits at ``step``
    until ``wake_at``; the engine claims due rows and moves them.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", _("In progress")
        DONE = "done", _("Finished")
        EXITED = "exited", _("Left the journey")
        GOAL = "goal", _("Goal reached")
        STOPPED = "stopped", _("Stopped (journey stopped or step broken)")

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="+")
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    unit_path = models.CharField(max_length=255)
    occurrence = models.CharField(max_length=64, default="")
    step = models.CharField(max_length=40)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.WAITING)
    # In the control group: walks the flow, is never sent anything (the lift's reference).
    held_out = models.BooleanField(default=False)
    wake_at = models.DateTimeField(null=True)
    entered_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "contact", "occurrence"], name="journeys_enrollment_once"
            ),
            models.CheckConstraint(
                condition=~Q(status="waiting") | Q(wake_at__isnull=False),
                name="journeys_enrollment_waiting_wakes",
            ),
        ]
        indexes = [
            # The engine's next-due query: waiting rows in wake-up order, then id (the claim's
            # tie-break, read from the index without a sort).
            models.Index(
                fields=["wake_at", "id"],
                condition=Q(status="waiting"),
                name="journeys_enrollment_due_id",
            ),
            models.Index(fields=["contact"], name="journeys_enrollment_contact"),
        ]


class EntryPurchases(models.Model):
    """An entry's purchases in its 30-day window once the window is over (the report's lift,
    ``report.close_windows``): what the report sums instead of joining every entry to the
    orders again. Written by the nightly pass only; the last days' closed windows are
    written again each night, so an order recorded a few days late still counts."""

    enrollment = models.OneToOneField(
        Enrollment, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    unit_path = models.CharField(max_length=255)
    held_out = models.BooleanField()
    # Orders with a positive total in the window (a buyer has one or more).
    purchases = models.PositiveIntegerField()
    # The net total of the window's orders (returns subtracted).
    revenue = models.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["run", "held_out"], name="journeys_entrypurchases_run")]


class EnrollmentStep(models.Model):
    """What happened at a step (append-only): the journey's per-step figures count these."""

    class Outcome(models.TextChoices):
        ENTERED = "entered", _("Entered")
        WAITED = "waited", _("Waited")
        SENT = "sent", _("Message queued")
        HELD_OUT = "held_out", _("Not sent (control group)")
        YES = "yes", _("Condition met")
        NO = "no", _("Condition not met")
        BRANCH = "branch", _("Random branch")
        GOAL = "goal", _("Goal reached")
        EXITED = "exited", _("Left")
        DONE = "done", _("Finished")
        STOPPED = "stopped", _("Stopped")

    id = models.BigAutoField(primary_key=True)
    enrollment = models.ForeignKey(
        Enrollment, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    unit_path = models.CharField(max_length=255)
    step = models.CharField(max_length=40)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    detail = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["enrollment", "id"], name="journeys_step_enrollment")]


class JourneySend(models.Model):
    """The ledger campaign of one send step of a run's version (``campaigns`` kind
    ``journey``): its rows are the messages of that step, sent by the campaign runners
    through every gate."""

    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="+")
    step = models.CharField(max_length=40)
    campaign = models.OneToOneField(
        "campaigns.Campaign", on_delete=models.PROTECT, related_name="journey_send"
    )
    unit_path = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "version", "step"], name="journeys_send_step")
        ]


class StepTexts(models.Model):
    """A store's own texts for one send step of its run: a local version of the step's brand
    template (``brand.LocalVersion``, written in the brand editor like any other), and the
    snapshot of it that was approved, which is what the step's ledger campaign sends
    (``campaigns.content``). Kept per (run, step), so it survives HQ's new journey
    versions and a stop and restart; ``local_version`` None = head office's texts."""

    class Status(models.TextChoices):
        APPROVED = "approved", _("Approved")
        PENDING = "pending", _("Waiting for approval")
        REJECTED = "rejected", _("Rejected")

    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="+")
    step = models.CharField(max_length=40)
    unit_path = models.CharField(max_length=255)
    # The step's brand template when the texts were chosen: texts of another template
    # (HQ changed the step's template) are not used.
    template = models.ForeignKey("brand.Template", on_delete=models.PROTECT, related_name="+")
    # What the store chose last (approved, waiting for approval, or rejected).
    local_version = models.ForeignKey(
        "brand.LocalVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.APPROVED)
    # What the step sends until another choice is approved: the approved local version's
    # template version and values at approval (None and {} = head office's texts).
    approved_local = models.ForeignKey(
        "brand.LocalVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_version = models.ForeignKey(
        "brand.TemplateVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_values = models.JSONField(default=dict, blank=True)
    chosen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chosen_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="journeys_step_texts_once")
        ]


class SegmentMember(models.Model):
    """A record in a segment trigger's segment at the run's last segment pass
    (``journeys.triggers``): the next pass enters the records that are members now and were
    not then. A record that leaves loses its row, so entering again later enters again."""

    id = models.BigAutoField(primary_key=True)
    run = models.ForeignKey(JourneyRun, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    unit_path = models.CharField(max_length=255)
    since = models.DateTimeField()
    # The trigger the snapshot was taken for (a digest of its JSON): a version whose trigger
    # follows another segment takes a new snapshot rather than entering the difference.
    trigger_key = models.CharField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "contact"], name="journeys_member_once")
        ]
        indexes = [models.Index(fields=["contact"], name="journeys_member_contact")]
