"""What the pipeline keeps beside the ledger: the embedded outbox and bounce reports."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Channel


class OutboxMessage(models.Model):
    """A message captured by the embedded demo's sinks (SMTP sink, SMS outbox)."""

    channel = models.CharField(max_length=8, choices=Channel.choices)
    # The sending unit, found from the ledger by Message-ID; '' when unknown.
    unit_path = models.CharField(max_length=255, blank=True)
    message_id = models.CharField(max_length=200, blank=True)
    sender = models.CharField(_("from"), max_length=300)
    recipient = models.CharField(_("to"), max_length=300)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    raw = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["message_id"], name="outbox_message_id")]


class Bounce(models.Model):
    """A delivery report (DSN), a complaint (ARF) or an ESP event, once classified."""

    class Kind(models.TextChoices):
        HARD = "hard", _("Hard bounce")
        SOFT = "soft", _("Soft bounce")
        COMPLAINT = "complaint", _("Complaint")
        AUTO_REPLY = "auto_reply", _("Automatic reply")
        UNKNOWN = "unknown", _("Not understood")

    kind = models.CharField(max_length=12, choices=Kind.choices)
    recipient = models.ForeignKey(
        Recipient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unit_path = models.CharField(max_length=255, blank=True)
    status_code = models.CharField(max_length=16, blank=True)
    diagnostic = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=20)
    # The report's own id (its Message-ID, the ESP's event id): the same report counts once.
    reference = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "reference"],
                condition=~models.Q(reference=""),
                name="bounce_reference_unique",
            )
        ]


class Link(models.Model):
    """A URL found in a unit's message of a campaign; click tokens name it by id.

    A click redirects only to the URL of the link its signed token names, and a token is
    made only for a link of that recipient's own message: a forged or altered token
    redirects nowhere.
    """

    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    unit = models.ForeignKey(
        "network.OrgNode", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    unit_path = models.CharField(max_length=255)
    url = models.TextField()
    url_hash = models.CharField(max_length=32)
    # Where it first appeared in the message (1 = first link), for the report.
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "unit", "url_hash"], name="link_unique")
        ]


class Event(models.Model):
    """The append-only log of what each message did: sent, opened, clicked, unsubscribed…

    No foreign keys and no personal data: the log grows by millions of rows, is written in
    batches and, on PostgreSQL, partitioned by month on ``occurred_at`` (the primary key is
    ``(id, occurred_at)`` there, see migration 0004). ``recipient_id`` names the ledger
    row; an open carries it only where the contact accepted per-person open tracking.
    ``machine`` marks what a program did (mail scanners, privacy proxies, prefetch): kept
    for the record, never counted.
    """

    class Kind(models.IntegerChoices):
        SENT = 1, _("Sent")
        DELIVERED = 2, _("Delivered")
        OPENED = 3, _("Opened")
        CLICKED = 4, _("Clicked")
        UNSUBSCRIBED = 5, _("Unsubscribed")
        BOUNCED = 6, _("Bounced")
        COMPLAINED = 7, _("Complained")
        CONVERTED = 8, _("Converted")

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField()
    kind = models.PositiveSmallIntegerField(choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices, blank=True)
    campaign_id = models.BigIntegerField(null=True, blank=True)
    unit_id = models.BigIntegerField(null=True, blank=True)
    unit_path = models.CharField(max_length=255)
    recipient_id = models.BigIntegerField(null=True, blank=True)
    link_id = models.BigIntegerField(null=True, blank=True)
    machine = models.BooleanField(default=False)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        indexes = [
            # A campaign's report: counts by kind, unique clicks by recipient (index-only).
            models.Index(
                fields=["campaign_id", "kind", "recipient_id"], name="event_campaign_kind"
            ),
            # Rollups read what arrived since their last pass.
            models.Index(fields=["occurred_at"], name="event_occurred"),
        ]
