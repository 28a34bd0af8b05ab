"""Campaigns (national and local), relays, the rules that frame them, and the send ledger.

The ledger (``Recipient``) lives here rather than in ``delivery``: the audience preview,
marketing pressure and budgets all read it, and ``campaigns`` may not import a later
app. ``delivery`` owns the pipeline that claims and marks its rows (docs/decisions.md).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from enseigne.brand.models import CONTENT_FROZEN_STATUSES, LocalVersion, Template, TemplateVersion
from enseigne.contacts.models import Channel, Contact, Segment
from enseigne.lib.sendwindow import DEFAULT_DAYS
from enseigne.network.models import OrgNode, UnitTag, User


def default_sms_days() -> list[int]:
    return list(DEFAULT_DAYS)


class AttributionModel(models.TextChoices):
    LAST_CLICK = "last_click", _("Last click")
    FIRST_CLICK = "first_click", _("First click")
    LINEAR = "linear", _("Linear (shared equally)")
    TIME_DECAY = "time_decay", _("Time decay (recent clicks weigh more)")


class StopScope(models.TextChoices):
    UNIT = "unit", _("the unit that sent the message")
    BRAND = "brand", _("the whole brand")


class SendingPolicy(models.Model):
    """HQ's sending rules for the network: SMS window, pressure priority, costs."""

    class Priority(models.TextChoices):
        NATIONAL_FIRST = "national_first", _("National campaigns first")
        FIRST_SCHEDULED = "first_scheduled", _("First scheduled, first served")

    node = models.OneToOneField(OrgNode, on_delete=models.CASCADE, related_name="sending_policy")
    sms_days = models.JSONField(
        _("SMS days"), default=default_sms_days, help_text=_("0 = Monday … 6 = Sunday")
    )
    sms_start = models.TimeField(_("SMS window opens"), default=dt.time(8, 0))
    sms_end = models.TimeField(_("SMS window closes"), default=dt.time(20, 0))
    sms_holiday_country = models.CharField(
        _("no SMS on public holidays of"), max_length=2, default="FR", blank=True
    )
    pressure_priority = models.CharField(
        _("pressure priority"),
        max_length=16,
        choices=Priority.choices,
        default=Priority.NATIONAL_FIRST,
    )
    sms_segment_cost = models.DecimalField(
        _("cost per SMS segment"), max_digits=8, decimal_places=4, default=Decimal("0.0450")
    )
    email_thousand_cost = models.DecimalField(
        _("cost per thousand e-mails"), max_digits=8, decimal_places=4, default=Decimal("0.8000")
    )
    national_cofunding_percent = models.PositiveSmallIntegerField(
        _("HQ share of national relays (%)"), default=50
    )
    # A scheduled campaign that wakes later than this waits for someone to confirm it.
    late_start_minutes = models.PositiveIntegerField(
        _("late start tolerance (minutes)"), default=60
    )
    # What an SMS STOP reply withdraws: the SMS of the unit that sent the last one, or of the
    # whole brand. Stated in the confirmation SMS.
    sms_stop_scope = models.CharField(
        _("an SMS STOP applies to"),
        max_length=8,
        choices=StopScope.choices,
        default=StopScope.BRAND,
    )
    # Which campaign a sale is credited to: clicks by the buyer within the window before it.
    attribution_model = models.CharField(
        _("attribution model"),
        max_length=12,
        choices=AttributionModel.choices,
        default=AttributionModel.LAST_CLICK,
    )
    attribution_window_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"),
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
    )
    updated_at = models.DateTimeField(auto_now=True)


class PressureRule(models.Model):
    """At most ``max_messages`` marketing messages per contact on ``channel`` in any ``window_days``."""

    node = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="pressure_rules")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    max_messages = models.PositiveSmallIntegerField(_("at most"))
    window_days = models.PositiveSmallIntegerField(_("in (days)"))

    class Meta:
        ordering = ["channel", "window_days"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "channel", "window_days"], name="pressure_unique"
            )
        ]


class Budget(models.Model):
    """What a unit may spend on sending over a period (HQ's share of national relays excluded)."""

    unit = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="budgets")
    unit_path = models.CharField(max_length=255)
    starts_on = models.DateField(_("from"))
    ends_on = models.DateField(_("to"))
    amount = models.DecimalField(_("amount (€)"), max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(starts_on__lte=models.F("ends_on")), name="budget_period_order"
            )
        ]


class PauseReason(models.TextChoices):
    """Why the system (not a person) paused a campaign."""

    COMPLAINT_RATE = "complaint_rate", _("spam complaints reached the limit")
    CONTENT = "content", _("its approved content no longer passes head office's rules")
    PREPARATION = "preparation", _("preparing its audience failed")


class Campaign(models.Model):
    # A local version used by a campaign in one of these is frozen (brand cannot import us).
    CONTENT_FROZEN = CONTENT_FROZEN_STATUSES

    class Kind(models.TextChoices):
        NATIONAL = "national", _("National")
        LOCAL = "local", _("Local")
        # One send step of a store's journey (journeys.sends): its ledger rows are added as
        # people reach the step, and it is never finished while the journey runs.
        JOURNEY = "journey", _("Journey step")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SUBMITTED = "submitted", _("Waiting for approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        SCHEDULED = "scheduled", _("Scheduled")
        # Launched: the worker freezes its audience into the ledger, then it is sending.
        PREPARING = "preparing", _("Preparing")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        FINISHED = "finished", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    name = models.CharField(_("name"), max_length=200)
    # The node that owns it: the network root (national) or one unit (local).
    owner = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+")
    owner_path = models.CharField(max_length=255)
    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="campaigns")
    # Local campaigns: the unit's local version (None = HQ's defaults) and one of its segments.
    local_version = models.ForeignKey(
        LocalVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # National campaigns: which units (a subtree, optionally only tagged ones) and which of
    # their contacts (segment rules applied inside each unit).
    target_node = models.ForeignKey(
        OrgNode, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_tag = models.ForeignKey(
        UnitTag, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    audience_rules = models.JSONField(default=dict, blank=True)
    allow_opt_out = models.BooleanField(_("units may opt out"), default=True)
    relay_deadline = models.DateTimeField(_("units decide before"), null=True, blank=True)
    is_transactional = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)  # when the date was set (priority)
    needs_confirmation = models.BooleanField(default=False)
    # Approved over budget by someone allowed to exceed budgets: nobody is cut for cost.
    budget_override = models.BooleanField(default=False)
    decision_comment = models.TextField(blank=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    submitted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # When it was launched (the date its audience is frozen for), and when the worker froze
    # it into the ledger: a launched campaign with no ``frozen_at`` is still preparing.
    launched_at = models.DateTimeField(null=True, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The queue's runner for this campaign holds this lease (one runner per campaign; a
    # crashed runner's lease simply expires). Extra workers started by hand share the rows.
    runner_owner = models.CharField(max_length=64, blank=True)
    runner_until = models.DateTimeField(null=True, blank=True)
    # Frozen at launch: how many rows the ledger got, for the progress bar's total.
    recipient_total = models.PositiveIntegerField(default=0)
    # Why sending stopped when the system paused it (e.g. the complaint rate); '' otherwise.
    pause_reason = models.CharField(max_length=40, blank=True)
    # What was approved, frozen at approval (see campaigns/content.py): HQ's version and the
    # zone values (a copy of the local version's; {} = HQ's defaults). None until approved.
    approved_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_values = models.JSONField(default=dict, blank=True)
    # Why the content gate stopped it ({"unit_path", "subject", "message"} each), when it did.
    content_problems = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "send_at"], name="campaign_status_send_at"),
            models.Index(fields=["owner_path"], name="campaign_owner_path"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_national(self) -> bool:
        return self.kind == self.Kind.NATIONAL

    @property
    def is_editable(self) -> bool:
        return self.status in (self.Status.DRAFT, self.Status.REJECTED)

    @property
    def is_stopped_for_content(self) -> bool:
        return self.status == self.Status.PAUSED and self.pause_reason == PauseReason.CONTENT


class Relay(models.Model):
    """A unit's answer to a national campaign: relay it (maybe personalised) or opt out."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Not decided yet")
        RELAYED = "relayed", _("Relayed")
        OPTED_OUT = "opted_out", _("Opted out")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="relays", db_index=False
    )
    unit = models.ForeignKey(OrgNode, on_delete=models.CASCADE, related_name="+")
    unit_path = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    local_version = models.ForeignKey(
        LocalVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="relays"
    )
    # The local version as it was relayed (its version and values): what this unit sends.
    # None = HQ's defaults (relayed unchanged, or not decided).
    approved_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_values = models.JSONField(default=dict, blank=True)
    decided_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "unit"], name="relay_unique")]


class Recipient(models.Model):
    """The send ledger: one row per (campaign, contact, channel, occurrence), frozen at launch.

    ``occurrence`` is 0 for a campaign; for a journey's step, the enrollment's id (a
    birthday each year is a new enrollment, so a new row; docs/decisions.md, "Journeys").

    ``attempted_at`` is committed before a row is handed to a transport and cleared when
    the outcome is known, so a row found leased-out and attempted after a crash is known
    to be ``ambiguous`` (it may or may not have left).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not sent")
        AMBIGUOUS = "ambiguous", _("Unknown (connection lost)")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", db_index=False
    )
    contact = models.ForeignKey(
        Contact, null=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    unit = models.ForeignKey(OrgNode, on_delete=models.PROTECT, related_name="+", db_index=False)
    unit_path = models.CharField(max_length=255)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=40, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempted_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    ambiguous_count = models.PositiveSmallIntegerField(default=0)
    segments = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    # What came back after a sent message: a bounce report, a complaint (the ledger keeps
    # the last one, so counts and the complaint rate need no other table).
    feedback = models.CharField(max_length=12, blank=True)
    feedback_at = models.DateTimeField(null=True, blank=True)
    occurrence = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "contact", "channel", "occurrence"], name="recipient_unique"
            ),
            # Every way out of "pending" gives the lease back, so "leased by me" implies
            # pending: the hand-off finds its rows by id and lease alone (see delivery/ledger.py).
            models.CheckConstraint(
                condition=Q(lease_owner="") | Q(status="pending"),
                name="recipient_lease_only_pending",
            ),
        ]
        indexes = [
            # The claim query: pending rows of one campaign in id order.
            models.Index(
                fields=["campaign", "id"], condition=Q(status="pending"), name="recipient_pending"
            ),
            # Marketing pressure: what a contact received lately on a channel.
            models.Index(
                fields=["contact", "channel", "sent_at"],
                condition=Q(status="sent"),
                name="recipient_contact_sent",
            ),
            models.Index(fields=["campaign", "status"], name="recipient_campaign_status"),
            # What a unit spent in a budget's period (the rules page, the audience's budgets).
            models.Index(
                fields=["unit", "sent_at"], condition=Q(status="sent"), name="recipient_unit_sent"
            ),
            # A campaign's complaint rate, checked on every complaint.
            models.Index(
                fields=["campaign"], condition=Q(feedback="complaint"), name="recipient_complaints"
            ),
        ]


class AudienceFigures(models.Model):
    """A campaign's audience figures (recipients, exclusions and why, cost, per unit), computed
    by the worker and kept here so that no page counts a network's contacts in a request.

    ``inputs`` is a fingerprint of what the figures depend on (the campaign, its segment, the
    network's rules and budgets, its relays, its competitors); a page that finds another one
    shows the figures as stale and asks the worker for new ones (see campaigns/figures.py).
    """

    campaign = models.OneToOneField(
        Campaign, on_delete=models.CASCADE, primary_key=True, related_name="audience_figures"
    )
    figures = models.JSONField(default=dict, blank=True)
    inputs = models.CharField(max_length=64, blank=True)
    # The send date the figures are for (the campaign's date, or the time they were computed).
    for_date = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    # The last time new figures were asked for (a count that started before it is not enough).
    requested_at = models.DateTimeField(null=True, blank=True)
    # When a count was queued for the worker; None once it is done (the loss detector's clock).
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
