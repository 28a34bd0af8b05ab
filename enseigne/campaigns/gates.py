"""The send gates, declared once: why a ledger row is not sent, and where each rule lives.

Every message passes the same gates, whichever path asks (the audience preview, the
freeze at launch, every hand-off, and journeys later):

============  =========================================  ==================================
gate          declared in                                 evaluated
============  =========================================  ==================================
content       ``campaigns.content.content_problems``      launch, every scheduler wake,
                                                          the worker's preparation (just
                                                          before the freeze), every batch
address       ``audience.gate_cases``                     preview, freeze, hand-off (SQL)
number        ``audience.gate_cases``                     preview, freeze, hand-off (SQL)
consent       ``audience.gate_cases``                     preview, freeze, hand-off (SQL)
suppression   ``audience.gate_cases``                     preview, freeze, hand-off (SQL)
pressure      ``audience.classified`` (the ledger's       preview and freeze (with the
              loads, per person, against                  planned competitors), hand-off
              ``PressureRule``)                           (messages really sent)
one a person  ``audience._one_per_person`` (national      preview, freeze, hand-off (SQL)
              campaigns; the sending record chosen by
              ``identity.sending.ranking``)
SMS window    ``lib.sendwindow.SendWindow``               preview, freeze, hand-off
budget        ``audience._budget``                        preview, freeze
============  =========================================  ==================================

The hand-off runs the very SQL the preview runs (``audience.classified`` with
``at_handoff=True``) on the rows it is about to send, after locking their contacts, so
what a person saw in the preview and what the worker checks cannot drift apart.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Reason(models.TextChoices):
    """Why a ledger row ended without being sent (``Recipient.reason``)."""

    # Gates: the audience preview counts these, the freeze and the hand-off record them.
    NO_ADDRESS = "no_address", _("no address for the channel")
    INVALID_NUMBER = "invalid_number", _("not a mobile number")
    NO_CONSENT = "no_consent", _("no consent for the channel")
    SUPPRESSED = "suppressed", _("unsubscribed, bounced or complained")
    PRESSURE = "pressure", _("marketing pressure cap reached")
    # A national campaign sends one message a person: another record of the same person
    # (in another unit) receives it. No unit's name here: the label is read by every viewer.
    OTHER_UNIT = "other_unit", _("already receives it from another unit of the network")
    OVER_BUDGET = "over_budget", _("over the unit's budget")
    OPTED_OUT = "opted_out", _("the unit opted out")
    # Only at hand-off, or as the outcome of one.
    CONTACT_ERASED = "contact_erased", _("contact erased")
    HARD_BOUNCE = "hard_bounce", _("address rejected")
    REFUSED = "refused", _("refused by the receiving server")
    GAVE_UP = "gave_up", _("still refused after every retry")
    CONNECTION_LOST = "connection_lost", _("connection lost after sending (it may have arrived)")
    CANCELLED = "cancelled", _("campaign cancelled")
    RENDER_ERROR = "render_error", _("the message could not be personalised for this contact")


# The reasons the audience preview shows, in its order.
PREVIEW_REASONS = (
    Reason.NO_ADDRESS,
    Reason.INVALID_NUMBER,
    Reason.NO_CONSENT,
    Reason.SUPPRESSED,
    Reason.PRESSURE,
    Reason.OTHER_UNIT,
    Reason.OVER_BUDGET,
    Reason.OPTED_OUT,
)


def reason_label(code: str) -> str:
    """The people's words for a reason code (the code itself for one no longer known)."""
    try:
        return str(Reason(code).label)
    except ValueError:
        return code
