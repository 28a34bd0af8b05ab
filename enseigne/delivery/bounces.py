"""What comes back after a message left: delivery reports, complaints, automatic replies.

A report is read (``parse``), tied to its ledger row, classified, and acted on
(``record``): a hard bounce or a complaint suppresses the address brand-wide (hashed), as
a 550 at hand-off does; the row keeps the last feedback for the campaign's counts; a
complaint may pause its campaign (``complaints_check``).

Reports arrive through three doors, all ending here: a Maildir the MTA delivers the
bounce address to (read every minute), ``enseigne process_bounces`` reading one message
on stdin (a Postfix ``pipe``), and the secret inbound URL. ESP webhooks (anymail) are
turned into the same ``Report`` in ``tracking``.

Anyone can send mail to the bounce address, so a report is acted on only when it names
its row in a way nobody else can: the signed VERP address it was sent to, or a genuine
Message-ID of ours quoted in it. Anything else is kept as "not understood", harmlessly.

Reports are read by ``report_reading`` (DSNs, ARF, plain-text bounces, ESP notifications
by e-mail, challenges, automatic replies); their codes are classified by ``codes``, the
same reading as the hand-off's: only a mailbox (or a domain) that does not exist is hard;
a full mailbox, a policy block, a delay are soft and suppress nothing.

A report acts on the address of the row it names, and only when it is about that address:
a report that names another address (a forwarding target, a stranger, another unit's
contact) is kept as "not understood", changes nothing and suppresses nobody.
"""

from __future__ import annotations

import logging
import mailbox

from django.db import IntegrityError, transaction
from django.utils import timezone

from enseigne.campaigns.models import Recipient
from enseigne.campaigns.services import complaints_check
from enseigne.contacts.models import Channel, Suppression
from enseigne.contacts.services import suppress_brand_wide
from enseigne.delivery import events
from enseigne.delivery.models import Bounce, Event
from enseigne.delivery.report_reading import (
    CHALLENGE,
    DELAY,
    Report,
    classify,
    clean,
    esp_kind,
)
from enseigne.delivery.report_reading import read as _read
from enseigne.lib.rowsecurity import ALL, db_scope

__all__ = ["CHALLENGE", "DELAY", "Report", "classify", "esp_kind", "parse", "process", "record"]

logger = logging.getLogger(__name__)
K = Bounce.Kind

# On a ledger row, a complaint outranks a hard bounce, which outranks a soft one.
_FEEDBACK_RANK = {"": 0, K.SOFT: 1, K.HARD: 2, K.COMPLAINT: 3}


def parse(raw: bytes, *, envelope_to: str = "") -> Report | None:
    """Read one report; None for what is not one (a success notice, an ARF 'not-spam')."""
    try:
        return _read(raw, envelope_to=envelope_to)
    except Exception:  # a reading bug must not block the mailbox: kept as not understood
        logger.exception("bounce report: unreadable")
        return Report(K.UNKNOWN, diagnostic="unreadable report")


def _same_address(a: str, b: str) -> bool:
    return a.strip().strip("<>").casefold() == b.strip().strip("<>").casefold()


def record(report: Report, *, source: str, trusted_address: bool = False) -> Bounce | None:
    """Keep the report and act on it. None when the same report was already recorded.

    ``trusted_address``: the report comes from an authenticated ESP webhook, so its address
    may be suppressed even when no ledger row is named.
    """
    now = timezone.now()
    kind = report.stored_kind
    diagnostic = clean(report.diagnostic)
    try:
        with transaction.atomic(), db_scope(ALL):
            row = (
                Recipient.objects.filter(pk=report.recipient_id).select_related("contact").first()
                if report.recipient_id is not None
                else None
            )
            address = (row.contact.email or "") if row is not None and row.contact else ""
            if (
                row is not None
                and report.addresses
                and not any(_same_address(a, address) for a in report.addresses)
            ):
                # About another address than the one this row went to: act on nothing.
                kind, diagnostic = K.UNKNOWN, clean(f"other address: {diagnostic}")
            bounce = Bounce.objects.create(
                kind=kind,
                recipient=row,
                unit_path=row.unit_path if row else "",
                status_code=clean(report.status, 16),
                diagnostic=diagnostic,
                source=clean(source, 20),
                reference=clean(report.reference, 200),
            )
            if (
                row is not None
                and kind in _FEEDBACK_RANK
                and _FEEDBACK_RANK[kind] >= _FEEDBACK_RANK.get(row.feedback, 0)
            ):
                Recipient.objects.filter(pk=row.pk).update(feedback=kind, feedback_at=now)
            if row is not None and kind in (K.HARD, K.SOFT, K.COMPLAINT):
                event = Event.Kind.COMPLAINED if kind == K.COMPLAINT else Event.Kind.BOUNCED
                events.write([events.of_recipient(row, event, now)])
            if kind in (K.HARD, K.COMPLAINT):
                if not address and row is None and trusted_address:
                    address = report.address
                if address:
                    reason = (
                        Suppression.Reason.COMPLAINT
                        if kind == K.COMPLAINT
                        else Suppression.Reason.HARD_BOUNCE
                    )
                    suppress_brand_wide(channel=Channel.EMAIL, address=address, reason=reason)
    except IntegrityError:
        return None  # the same report (source, reference) came twice
    if kind == K.COMPLAINT and row is not None:
        with db_scope(ALL):
            complaints_check(row.campaign_id)
    return bounce


def process(raw: bytes, *, source: str, envelope_to: str = "") -> Bounce | None:
    report = parse(raw, envelope_to=envelope_to)
    if report is None:
        return None
    bounce = record(report, source=source)
    if bounce is not None:
        logger.info(
            "bounce report: %s row=%s status=%s", report.kind, report.recipient_id, report.status
        )
    return bounce


def process_maildir(path: str) -> int:
    """Read every new message of a Maildir, act on it, remove it. Returns how many were read."""
    box = mailbox.Maildir(path, factory=None, create=False)
    count = 0
    for key in list(box.iterkeys()):
        try:
            raw = box.get_bytes(key)
        except KeyError:
            continue  # another reader took it
        process(raw, source="mailbox")
        box.discard(key)
        count += 1
    return count
