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

Reports are read as RFC 3464 (DSN) and RFC 5965 (ARF) write them; their codes are
classified by ``codes``, the same reading as the hand-off's: only a mailbox that does not
exist is hard (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10, or plain words saying so); a full
mailbox, a policy block, a delay are soft and suppress nothing. ``Auto-Submitted:
auto-replied`` and out-of-office subjects are automatic replies, not bounces.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import logging
import mailbox
import re
from dataclasses import dataclass
from email.utils import collapse_rfc2231_value

from django.db import IntegrityError, transaction
from django.utils import timezone

from enseigne.campaigns.models import Recipient
from enseigne.campaigns.services import complaints_check
from enseigne.contacts.models import Channel, Suppression
from enseigne.contacts.services import suppress_brand_wide
from enseigne.delivery import codes, events
from enseigne.delivery.messages import bounce_row, verified_recipient
from enseigne.delivery.models import Bounce, Event
from enseigne.lib.rowsecurity import ALL, db_scope

logger = logging.getLogger(__name__)
K = Bounce.Kind

_SMTP_CODE = re.compile(r"\b([45]\d\d)[ -]")
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|failure notice|returned mail|"
    r"mail delivery (failed|system)|non remis|non distribu|échec de (la )?(remise|distribution)",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response)|out of (the )?office|absence|r[ée]ponse automatique|autoreply|"
    r"auto:|i am away|je suis absent)",
    re.IGNORECASE,
)
# On a ledger row, a complaint outranks a hard bounce, which outranks a soft one.
_FEEDBACK_RANK = {"": 0, K.SOFT: 1, K.HARD: 2, K.COMPLAINT: 3}
# Headers that carry the address a report was delivered to (the VERP bounce address).
_DELIVERY_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass(frozen=True)
class Report:
    kind: str
    recipient_id: int | None = None
    status: str = ""  # RFC 3463 enhanced status code (5.1.1) or an SMTP reply code
    diagnostic: str = ""
    address: str = ""  # the address the report is about, as the reporter wrote it
    reference: str = ""  # the report's own id, so that the same report counts once


def classify(status: str, diagnostic: str = "", *, delayed: bool = False) -> str:
    """Hard, soft or unknown, from an enhanced status code (or an SMTP code) and the server's
    words; a delay is soft whatever its code says."""
    if delayed:
        return K.SOFT
    code = codes.reply_code(status)
    return codes.classify(code=code, enhanced="" if code else status, text=diagnostic).bounce_kind


def esp_kind(kind: str, response: str) -> str:
    """An ESP's final bounce, unless the server reply it quotes says otherwise: an ESP that
    calls a policy block (550 5.7.1) a bounce suppresses nothing, as the hand-off does not."""
    verdict = codes.classify(text=response)
    return verdict.bounce_kind if verdict.temporary or verdict.permanent else kind


def _text(part: email.message.Message) -> str:
    """A part's content as text, whatever its transfer encoding."""
    if part.is_multipart():  # message/rfc822: the returned message, headers included
        return "\n".join(str(item) for item in part.get_payload())
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return str(part.get_payload() or "")


def _field_blocks(part: email.message.Message) -> list[email.message.Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [item for item in payload if isinstance(item, email.message.Message)]
        if blocks:
            return blocks
    text = _text(part).replace("\r\n", "\n")
    return [
        email.message_from_string(block.strip() + "\n")
        for block in re.split(r"\n\s*\n", text)
        if block.strip()
    ]


def _address(value: str | None) -> str:
    """``rfc822; someone@example.com`` → ``someone@example.com``."""
    value = (value or "").strip()
    return value.split(";", 1)[1].strip().strip("<>") if ";" in value else value.strip("<>")


def _row(message: email.message.Message, envelope_to: str) -> int | None:
    addressed = " ".join(
        [envelope_to, *(str(v) for h in _DELIVERY_HEADERS for v in message.get_all(h) or [])]
    )
    row = bounce_row(addressed)
    if row is not None:
        return row
    # Else a Message-ID of ours quoted in it: the returned message or its headers, a reply.
    texts = [str(message.get("In-Reply-To") or ""), str(message.get("References") or "")]
    texts += [
        _text(part)
        for part in message.walk()
        if part.get_content_type() == "message/rfc822" or not part.is_multipart()
    ]
    return verified_recipient("\n".join(texts))


def _delivery_status(message: email.message.Message) -> tuple[str, str, str, bool] | None:
    """(status, diagnostic, address, delayed) of the first failed or delayed recipient."""
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = _field_blocks(part)
        for block in blocks[1:] or blocks:  # per-message fields first, then one block per recipient
            action = str(block.get("Action") or "").strip().lower()
            if action not in ("failed", "delayed"):
                continue
            diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split())
            diagnostic = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
            status = str(block.get("Status") or "").strip()
            return (
                status,
                diagnostic,
                _address(block.get("Final-Recipient") or block.get("Original-Recipient")),
                action == "delayed",
            )
        return None  # delivered, relayed, expanded: a success notice, not a bounce
    return None


def parse(raw: bytes, *, envelope_to: str = "") -> Report | None:
    """Read one report; None for what is not one (a success notice, an ARF 'not-spam')."""
    message = email.message_from_bytes(raw)
    reference = str(message.get("Message-ID") or "").strip()[:200]
    row = _row(message, envelope_to)
    subject = " ".join(str(message.get("Subject") or "").split())
    if message.get_content_type() == "multipart/report":
        # An RFC 2231 parameter comes back as a (charset, language, value) tuple.
        report_type = collapse_rfc2231_value(message.get_param("report-type") or "").lower()
        if report_type == "delivery-status":
            dsn = _delivery_status(message)
            if dsn is None:
                return None
            status, diagnostic, address, delayed = dsn
            return Report(
                classify(status, diagnostic, delayed=delayed),
                row,
                status,
                diagnostic[:300],
                address,
                reference,
            )
        if report_type == "feedback-report":
            for part in message.walk():
                if part.get_content_type() == "message/feedback-report":
                    fields = _field_blocks(part)[0]
                    feedback = str(fields.get("Feedback-Type") or "").strip().lower()
                    if feedback == "not-spam":
                        return None
                    kind: str = K.UNKNOWN if feedback == "auth-failure" else K.COMPLAINT
                    return Report(
                        kind,
                        row,
                        "",
                        f"ARF {feedback}"[:300],
                        _address(fields.get("Original-Rcpt-To")),
                        reference,
                    )
    auto = str(message.get("Auto-Submitted") or "").strip().lower()
    if (
        auto.startswith("auto-replied")
        or message.get("X-Autoreply")
        or message.get("X-Autorespond")
        or str(message.get("Precedence") or "").lower() == "auto_reply"
        or _AUTO_REPLY_SUBJECT.search(subject)
    ):
        return Report(K.AUTO_REPLY, row, "", subject[:300], "", reference)
    if _BOUNCE_SENDER.search(str(message.get("From") or "")) or _BOUNCE_SUBJECT.search(subject):
        # A bounce that is not a DSN (qmail, old Exchange): the codes in its words.
        body = " ".join(
            _text(part) for part in message.walk() if part.get_content_maintype() == "text"
        )
        code = _SMTP_CODE.search(body)
        found = codes.enhanced_code(body) or (code.group(1) if code else "")
        line = next((ln.strip() for ln in body.splitlines() if found and found in ln), "")
        kind = classify(found, line) if found else K.UNKNOWN
        return Report(kind, row, found, (line or subject)[:300], "", reference)
    return Report(K.UNKNOWN, row, "", subject[:300], "", reference)


def record(report: Report, *, source: str, trusted_address: bool = False) -> Bounce | None:
    """Keep the report and act on it. None when the same report was already recorded.

    ``trusted_address``: the report comes from an authenticated ESP webhook, so its address
    may be suppressed even when no ledger row is named.
    """
    now = timezone.now()
    try:
        with transaction.atomic(), db_scope(ALL):
            row = (
                Recipient.objects.filter(pk=report.recipient_id).select_related("contact").first()
                if report.recipient_id is not None
                else None
            )
            bounce = Bounce.objects.create(
                kind=report.kind,
                recipient=row,
                unit_path=row.unit_path if row else "",
                status_code=report.status[:16],
                diagnostic=report.diagnostic[:300],
                source=source[:20],
                reference=report.reference[:200],
            )
            if (
                row is not None
                and report.kind in _FEEDBACK_RANK
                and _FEEDBACK_RANK[report.kind] >= _FEEDBACK_RANK.get(row.feedback, 0)
            ):
                Recipient.objects.filter(pk=row.pk).update(feedback=report.kind, feedback_at=now)
            if row is not None and report.kind in (K.HARD, K.SOFT, K.COMPLAINT):
                kind = Event.Kind.COMPLAINED if report.kind == K.COMPLAINT else Event.Kind.BOUNCED
                events.write([events.of_recipient(row, kind, now)])
            if report.kind in (K.HARD, K.COMPLAINT):
                address = row.contact.email if row is not None and row.contact is not None else ""
                if not address and trusted_address:
                    address = report.address
                if address:
                    reason = (
                        Suppression.Reason.COMPLAINT
                        if report.kind == K.COMPLAINT
                        else Suppression.Reason.HARD_BOUNCE
                    )
                    suppress_brand_wide(channel=Channel.EMAIL, address=address, reason=reason)
    except IntegrityError:
        return None  # the same report (source, reference) came twice
    if report.kind == K.COMPLAINT and row is not None:
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
