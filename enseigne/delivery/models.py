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
    recipient = models.ForeignKey(Recipient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    unit_path = models.CharField(max_length=255, blank=True)
    status_code = models.CharField(max_length=16, blank=True)
    diagnostic = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=20)
    # The report's own id (its Message-ID, the ESP's event id): the same report counts once.
    reference = models.CharField(max_length=200, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "reference"], condition=~models.Q(reference=""),
                                               name="bounce_reference_unique")]
