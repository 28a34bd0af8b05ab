"""Reading what comes back to the bounce address: which report it is, about whom, saying what.

Pure functions over the bytes (no database): ``read`` answers a ``Report`` or None for
what is no report at all (a success notice, an ARF "not-spam"). ``bounces`` ties it to its
ledger row and acts on it.

The order of the questions matters, because real reports carry several markers:

1. a ``message/delivery-status`` part (RFC 3464: Postfix, Sendmail, Exchange, Gmail, Exim
   since 4.8x) or a ``message/feedback-report`` one (RFC 5965 ARF);
2. an ESP notification delivered by e-mail (an Amazon SES notification through an SNS
   e-mail or e-mail-json subscription): its JSON is read;
3. the bounce markers — ``X-Failed-Recipients``, a mailer-daemon or postmaster sender, a
   delivery-failure subject: a plain-text bounce (Exim, qmail, old Exchange) or a delay
   warning (Exim, Sendmail), read from its words. Exim bounces carry ``Auto-Submitted:
   auto-replied`` too, so these markers come *before* the automatic-reply headers;
4. a challenge (Mailinblack, Boxbe, SpamArrest, TMDA: "confirm you are human"), then an
   automatic reply (``Auto-Submitted``, ``X-Autoreply``, out-of-office subjects);
5. anything else is not understood.

Hostile input is read within bounds: at most ``MAX_REPORT_BYTES`` and
``MAX_BOUNDARY_LINES`` MIME boundaries (the report part comes before the returned message,
so a cut keeps it), at most ``MAX_PARTS`` parts and ``MAX_DEPTH`` levels of nested
messages read, deeper nesting read as text; unknown charsets, NUL bytes and undecodable
headers are read as replacement characters. Nothing here raises on any bytes.
"""

from __future__ import annotations

import codecs
import email
import email.header
import email.message
import email.parser
import email.utils
import json
import re
from dataclasses import dataclass, field
from email.utils import collapse_rfc2231_value
from html import unescape

from enseigne.delivery import codes
from enseigne.delivery.messages import bounce_row, esp_row, verified_recipient
from enseigne.delivery.models import Bounce

K = Bounce.Kind
# Two readings finer than what is stored: a delay is stored as a soft bounce, a challenge
# (a "confirm you are human" robot) as an automatic reply. Neither suppresses anything.
DELAY = "delay"
CHALLENGE = "challenge"
STORED_KIND = {DELAY: K.SOFT, CHALLENGE: K.AUTO_REPLY}

MAX_REPORT_BYTES = 1_000_000
MAX_PARTS = 200
# The parser spends ~50 µs a MIME part: past this many boundary lines the rest is cut.
MAX_BOUNDARY_LINES = 1000
MAX_DEPTH = 8
_MAX_BODY = 20_000  # characters of explanation read for words and addresses

_ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_SMTP_CODE = re.compile(r"(?<![\d.])([45]\d\d)[ -]")
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery (system|subsystem)", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed|failed)|failure notice|"
    r"returned mail|mail delivery (failed|system)|could not be delivered|non remis|"
    r"non distribu|échec de (la )?(remise|distribution)|unzustellbar|delivery incomplete|"
    r"warning: could not send|delayed mail|message .{0,40}delayed|delivery delayed",
    re.IGNORECASE,
)
_DELAY_WORDS = re.compile(
    r"\(delay\)|\bdelayed\b|warning: could not send|this is a warning message only|"
    r"will (continue to )?(retry|try)|delivery attempts will continue|still (being )?retr|"
    r"no action is required|have not yet been delivered|has not yet been delivered|"
    r"not been delivered yet|temporary problem|retard|remise différée|distribution différée|"
    r"nouvelle tentative|verzögert",
    re.IGNORECASE,
)
_PERMANENT_WORDS = re.compile(
    r"permanent (error|failure|fatal)|could not be delivered|couldn't be delivered|"
    r"wasn't delivered|was not delivered|failed permanently|delivery has failed|"
    r"giving up|i'm afraid i wasn't able|n'a pas pu être (remis|distribué)|"
    r"following address(\(es\)|es)? failed|retry time(out)? (not reached|exceeded)",
    re.IGNORECASE,
)
# Where a plain-text bounce starts quoting the returned message: not read for codes.
_RETURNED_MESSAGE = re.compile(
    r"^-* ?(this is a copy of the message|below this line is a copy|original message|"
    r"message header follows|returned message|undelivered message headers)|"
    r"^-+ ?(original|returned) message",
    re.IGNORECASE | re.MULTILINE,
)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office|absence|absent|abwesen|"
    r"r[ée]ponse automatique|r[ée]ponse auto|autoreply|autorespon|auto:|i am away|"
    r"je suis absent|cong[ée]s|vacances|risposta automatica|respuesta autom[áa]tica|autosvar)",
    re.IGNORECASE,
)
# Only with an automatic marker: a person may well write "please confirm".
_CHALLENGE_WORDS = re.compile(
    r"(please|kindly) (confirm|verify)|confirm (that )?you are|verify (that )?you are|"
    r"whitelist|approved senders|liste blanche|en attente de (validation|confirmation)|"
    r"confirm(ez|er) (votre|l.envoi|que vous)|authentifi(ez|er|cation)|bestätigen sie",
    re.IGNORECASE,
)
# Enough on their own: the vendors and the wording of challenge-response systems.
_CHALLENGE_STRONG = re.compile(
    r"mailinblack|boxbe|spamarrest|spam arrest|\btmda\b|sender verification|"
    r"challenge[- ]response|confirm (that )?you are (a )?(human|real person)|"
    r"prouver que vous (n'êtes pas un robot|êtes (un humain|une personne))|"
    r"protected by .{0,30}anti-?spam|protégée? par .{0,30}anti-?spam",
    re.IGNORECASE,
)
# Headers that carry the address a report was delivered to (the VERP bounce address).
DELIVERY_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_CHALLENGE_HEADERS = ("X-Boxbe-Challenge", "X-Mailinblack", "X-SpamArrest", "X-TMDA-Challenge")


@dataclass(frozen=True)
class Report:
    """What one report says. ``kind`` is a ``Bounce.Kind`` or one of the finer readings
    ``DELAY`` and ``CHALLENGE`` (see ``STORED_KIND``)."""

    kind: str
    recipient_id: int | None = None
    status: str = ""  # RFC 3463 enhanced status code (5.1.1) or an SMTP reply code
    diagnostic: str = ""
    address: str = ""  # the address the report is about, as the reporter wrote it
    reference: str = ""  # the report's own id, so that the same report counts once
    # Other addresses the report gives for the same recipient (Original-Recipient, an
    # X-Failed-Recipients header): a report is about a row only if one of them is its.
    aliases: tuple[str, ...] = field(default=())

    @property
    def stored_kind(self) -> str:
        return STORED_KIND.get(self.kind, self.kind)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(a for a in (self.address, *self.aliases) if a)


def clean(value: object, limit: int = 300) -> str:
    """Text that any database stores: no NUL, no lone surrogate, one line, cut to ``limit``."""
    text = str(value or "")[: limit * 4]
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return " ".join(text.replace("\x00", " ").split())[:limit]


def classify(status: str, diagnostic: str = "", *, delayed: bool = False) -> str:
    """Hard, soft or unknown, from an enhanced status code (or an SMTP code) and the server's
    words; a delay is soft whatever its code says."""
    if delayed:
        return K.SOFT
    code = codes.reply_code(status)
    enhanced = "" if code else status
    # A Status that says nothing precise (Exim writes 5.0.0) gives way to the precise code
    # the remote server quoted in the diagnostic, when it is of the same class.
    quoted = codes.enhanced_code(diagnostic)
    if enhanced.endswith(".0.0") and quoted and quoted[0] == enhanced.strip()[:1]:
        enhanced = quoted
    return codes.classify(code=code, enhanced=enhanced, text=diagnostic).bounce_kind


def esp_kind(kind: str, response: str) -> str:
    """An ESP's final bounce, unless the server reply it quotes says otherwise: an ESP that
    calls a policy block (550 5.7.1) a bounce suppresses nothing, as the hand-off does not."""
    verdict = codes.classify(text=response)
    return verdict.bounce_kind if verdict.temporary or verdict.permanent else kind


# -- the message and its parts, within bounds ------------------------------------------


def _parts(message: email.message.Message) -> list[tuple[email.message.Message, int]]:
    """Every part with its depth in nested messages, breadth first, at most MAX_PARTS and
    MAX_DEPTH levels (a message/rfc822 inside a message/rfc822 inside …)."""
    found: list[tuple[email.message.Message, int]] = []
    queue: list[tuple[email.message.Message, int]] = [(message, 0)]
    while queue and len(found) < MAX_PARTS:
        part, depth = queue.pop(0)
        found.append((part, depth))
        payload = _payload(part)
        if not isinstance(payload, list):
            continue
        nested = depth + (1 if part.get_content_type() == "message/rfc822" else 0)
        if nested > MAX_DEPTH:
            continue
        queue.extend((item, nested) for item in payload if isinstance(item, email.message.Message))
    return found


def _payload(part: email.message.Message) -> object:
    """``get_payload()``, which raises on some broken parts (a NUL in the charset name)."""
    try:
        return part.get_payload()
    except Exception:
        return ""


def _decoded(part: email.message.Message) -> str:
    """A leaf part's content as text, whatever its transfer encoding and declared charset."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: read what is there
        payload = None
    if not isinstance(payload, bytes):
        raw = _payload(part)
        return raw if isinstance(raw, str) else ""
    charset = "utf-8"
    try:
        declared = part.get_content_charset() or "utf-8"
        codecs.lookup(declared)
        charset = declared
    except (LookupError, ValueError, TypeError):
        pass
    try:
        return payload.decode(charset, errors="replace")
    except Exception:  # a codec that refuses "replace" (some are not text codecs)
        return payload.decode("utf-8", errors="replace")


def _header(message: email.message.Message, name: str) -> str:
    """A header decoded from RFC 2047 words, as clean text ("" when absent or broken)."""
    try:
        value = message.get(name)
    except Exception:
        return ""
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:
        text = str(value)
    return clean(text, 1000)


def _headers_text(message: email.message.Message) -> str:
    """A returned message's headers as text (where its Message-ID is)."""
    try:
        return "\n".join(f"{k}: {v}" for k, v in message.items())[:_MAX_BODY]
    except Exception:
        return ""


def _field_blocks(part: email.message.Message) -> list[email.message.Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = _payload(part)
    if isinstance(payload, list):
        blocks = [item for item in payload if isinstance(item, email.message.Message)]
        if blocks:
            return blocks
    text = _decoded(part)[:_MAX_BODY].replace("\r\n", "\n")
    return [
        email.message_from_string(block.strip() + "\n")
        for block in re.split(r"\n\s*\n", text)
        if block.strip()
    ]


def _address(value: object) -> str:
    """``rfc822; <Someone@Example.com>`` → ``Someone@Example.com`` ("" for no address)."""
    text = clean(value, 500)
    if ";" in text:
        text = text.split(";", 1)[1]
    found = _ADDRESS.search(email.utils.parseaddr(text)[1] or text)
    return found.group(0) if found else ""


def _explanation(parts: list[tuple[email.message.Message, int]]) -> str:
    """The words of the report itself: its text parts outside any returned message, cut
    where a plain-text bounce starts quoting the message."""
    texts = []
    for part, depth in parts:
        if depth or part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_type() == "text/rfc822-headers":
            continue
        text = _decoded(part)[:_MAX_BODY]
        if part.get_content_subtype() == "html":
            if any(p.get_content_type() == "text/plain" for p, d in parts if not d):
                continue
            text = unescape(re.sub(r"<[^>]{0,2000}>", " ", text))
        texts.append(text)
    body = "\n".join(texts).replace("\x00", " ")
    cut = _RETURNED_MESSAGE.search(body)
    return (body[: cut.start()] if cut else body)[:_MAX_BODY]


# -- one reader per kind of report ----------------------------------------------------


def _delivery_status(part: email.message.Message, failed_header: str) -> Report | None:
    blocks = _field_blocks(part)
    for block in blocks[1:] or blocks:  # per-message fields first, then one block per recipient
        action = clean(block.get("Action")).lower()
        if action not in ("failed", "delayed"):
            continue
        diagnostic = clean(block.get("Diagnostic-Code"), 1000)
        diagnostic = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
        status = clean(block.get("Status"), 32)
        final = _address(block.get("Final-Recipient"))
        original = _address(block.get("Original-Recipient"))
        address = final or original or failed_header
        aliases = tuple(a for a in (original, failed_header) if a and a != address)
        if action == "delayed":
            return Report(DELAY, None, status, diagnostic[:300], address, aliases=aliases)
        return Report(
            classify(status, diagnostic), None, status, diagnostic[:300], address, aliases=aliases
        )
    return None  # delivered, relayed, expanded: a success notice, not a bounce


def _feedback(
    part: email.message.Message, parts: list[tuple[email.message.Message, int]]
) -> Report | None:
    blocks = _field_blocks(part)
    fields = blocks[0] if blocks else email.message.Message()
    feedback = clean(fields.get("Feedback-Type"), 40).lower()
    if feedback == "not-spam":
        return None
    kind = K.UNKNOWN if feedback == "auth-failure" else K.COMPLAINT
    address = _address(fields.get("Original-Rcpt-To"))
    if not address:  # Yahoo and others leave it out: the returned message's To says it
        for returned, _depth in parts:
            if returned.get_content_type() == "message/rfc822":
                inner = _payload(returned)
                if (
                    isinstance(inner, list)
                    and inner
                    and isinstance(inner[0], email.message.Message)
                ):
                    address = _address(_header(inner[0], "To"))
            elif returned.get_content_type() == "text/rfc822-headers":
                address = _address(_header(email.message_from_string(_decoded(returned)), "To"))
            if address:
                break
    return Report(kind, None, "", f"ARF {feedback or 'abuse'}"[:300], address)


def _json_notification(body: str) -> dict | None:
    """The JSON object an ESP notification e-mail carries (SNS adds a footer after it)."""
    start = body.find("{")
    if start < 0 or body[:start].strip():
        return None
    try:
        value, _end = json.JSONDecoder().raw_decode(body[start:])
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    if value.get("Type") == "Notification" and isinstance(value.get("Message"), str):
        try:  # an SNS e-mail-json subscription: the SES notification is a string inside
            inner = json.loads(value["Message"])
        except (ValueError, RecursionError):
            return None
        return inner if isinstance(inner, dict) else None
    return value


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _first(items: object) -> dict:
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _esp_json(notice: dict) -> tuple[Report | None, int | None] | None:
    """(report, ledger row named by its signed metadata) of an Amazon SES notification;
    None when the JSON is no notification at all."""
    kind = str(notice.get("notificationType") or notice.get("eventType") or "")
    if not kind and notice.get("Type") == "SubscriptionConfirmation":
        return Report(K.UNKNOWN, diagnostic="SNS subscription confirmation"), None
    if not kind:
        return None
    mail = _dict(notice.get("mail"))
    row = None
    headers = mail.get("headers")
    for header in headers if isinstance(headers, list) else []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "x-metadata":
            try:
                metadata = json.loads(str(header.get("value") or ""))
            except (ValueError, RecursionError):
                continue
            row = esp_row(metadata if isinstance(metadata, dict) else None)
    if kind == "Bounce":
        bounce = _dict(notice.get("bounce"))
        first = _first(bounce.get("bouncedRecipients"))
        address = _address(first.get("emailAddress"))
        status = clean(first.get("status"), 32)
        diagnostic = clean(first.get("diagnosticCode"), 1000)
        words = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
        sort, subtype = str(bounce.get("bounceType")), str(bounce.get("bounceSubType"))
        label = f"SES {sort}/{subtype}"
        if sort == "Permanent" and subtype in ("General", "NoEmail", "Suppressed"):
            read = classify(status, words) if status or words else K.UNKNOWN
            # The ESP's word stands unless the reply it quotes says otherwise.
            verdict = read if read in (K.HARD, K.SOFT) else K.HARD
        elif sort in ("Permanent", "Transient"):
            verdict = K.SOFT
        else:
            verdict = K.UNKNOWN
        return Report(verdict, None, status, (words or label)[:300], address), row
    if kind == "Complaint":
        complaint = _dict(notice.get("complaint"))
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        if feedback == "not-spam":
            return None, row
        first = _first(complaint.get("complainedRecipients"))
        return Report(
            K.COMPLAINT,
            None,
            "",
            f"SES complaint {feedback}"[:300],
            _address(first.get("emailAddress")),
        ), row
    if kind == "DeliveryDelay":
        delay = _dict(notice.get("deliveryDelay"))
        first = _first(delay.get("delayedRecipients"))
        return Report(
            DELAY,
            None,
            clean(first.get("status"), 32),
            clean(first.get("diagnosticCode") or delay.get("delayType")),
            _address(first.get("emailAddress")),
        ), row
    return None, row  # Delivery, Send, Open, Click: no report of a failure


def _plain_bounce(
    message: email.message.Message, explanation: str, subject: str, failed_header: str
) -> Report:
    """A bounce that is not a DSN (Exim, qmail, Sendmail's warnings, old Exchange)."""
    words = f"{subject}\n{explanation}"
    own = {_address(_header(message, h)).lower() for h in ("From", "To", "Delivered-To")}
    candidates = [
        a for a in _ADDRESS.findall(explanation) if a.lower() not in own and not _DAEMON.search(a)
    ]
    address = failed_header or (candidates[0] if candidates else "")
    if _DELAY_WORDS.search(words) and not _PERMANENT_WORDS.search(words):
        return Report(DELAY, None, codes.enhanced_code(explanation), subject[:300], address)
    code = _SMTP_CODE.search(explanation)
    found = codes.enhanced_code(explanation) or (code.group(1) if code else "")
    lines = explanation.splitlines()
    line = ""
    for index, text in enumerate(lines):
        if found and found in text:
            # Exim and Sendmail wrap the server's reply over indented lines.
            following = [ln.strip() for ln in lines[index + 1 : index + 3] if ln[:1].isspace()]
            line = " ".join([text.strip(), *following])
            break
    if found:
        kind = classify(found, line)
    else:
        # No code: a failure notice is permanent, and its words may say no such mailbox.
        # Only what follows the failed address: the template around it is not its reason.
        start = explanation.find(address) if address else -1
        reason = explanation[start:] if start >= 0 else explanation
        kind = (
            classify("5.0.0", reason)
            if failed_header or _PERMANENT_WORDS.search(words)
            else K.UNKNOWN
        )
    return Report(kind, None, found, clean(line or subject), address)


def _automatic(message: email.message.Message, explanation: str, subject: str) -> str:
    """CHALLENGE, AUTO_REPLY or "" for a message a person wrote."""
    auto = _header(message, "Auto-Submitted").lower()
    automatic = bool(
        (auto and not auto.startswith("no"))
        or message.get("X-Autoreply")
        or message.get("X-Autorespond")
        or _header(message, "Precedence").lower() in ("auto_reply", "bulk", "junk")
        or _AUTO_REPLY_SUBJECT.search(subject)
    )
    words = f"{subject}\n{explanation[:4000]}"
    if (
        any(message.get(h) for h in _CHALLENGE_HEADERS)
        or _CHALLENGE_STRONG.search(f"{words}\n{_header(message, 'From')}")
        or (automatic and _CHALLENGE_WORDS.search(words))
    ):
        return CHALLENGE
    return K.AUTO_REPLY if automatic else ""


def _bounded(raw: bytes) -> bytes:
    """``raw`` cut before its MAX_BOUNDARY_LINES-th line that starts with "--"."""
    index = -1
    for _ in range(MAX_BOUNDARY_LINES):
        index = raw.find(b"\n--", index + 1)
        if index < 0:
            return raw
    return raw[:index]


_NESTING = re.compile(rb"(content-type:[ \t]*)(multipart|message)/", re.IGNORECASE)


def _parse(raw: bytes) -> tuple[email.message.Message, list[tuple[email.message.Message, int]]]:
    try:
        message = email.message_from_bytes(raw)
        return message, _parts(message)
    except RecursionError:
        pass
    # Thousands of nested parts: the parser recurses once per level. The outer levels are
    # kept (the report is there); deeper ones are read as plain text.
    seen = 0

    def flatten(found: re.Match[bytes]) -> bytes:
        nonlocal seen
        seen += 1
        return found.group(0) if seen <= 4 * MAX_DEPTH else found.group(1) + b"text/x-nested-"

    try:
        message = email.message_from_bytes(_NESTING.sub(flatten, raw))
        return message, _parts(message)
    except RecursionError:
        message = email.parser.BytesHeaderParser().parsebytes(raw)
        return message, [(message, 0)]


def row_of(
    message: email.message.Message,
    parts: list[tuple[email.message.Message, int]],
    envelope_to: str,
) -> int | None:
    """The ledger row a report names unforgeably: the signed VERP address it was delivered
    to, else a genuine Message-ID of ours quoted in it (the returned message, a reply)."""
    addressed = " ".join([envelope_to, *(_header(message, h) for h in DELIVERY_HEADERS)])
    row = bounce_row(addressed)
    if row is not None:
        return row
    texts = [_header(message, "In-Reply-To"), _header(message, "References")]
    for part, _depth in parts:
        payload = _payload(part)
        if part.get_content_type() == "message/rfc822" and isinstance(payload, list):
            texts += [_headers_text(i) for i in payload if isinstance(i, email.message.Message)]
        elif not part.is_multipart():
            texts.append(_decoded(part)[: _MAX_BODY * 5])
    return verified_recipient("\n".join(texts))


def read(raw: bytes, *, envelope_to: str = "") -> Report | None:
    """Read one report (see the module's docstring for the order of the questions)."""
    message, parts = _parse(_bounded(bytes(raw[:MAX_REPORT_BYTES])))
    subject = _header(message, "Subject")
    failed_header = _address(_header(message, "X-Failed-Recipients"))
    found = _report(message, parts, subject, failed_header)
    if found is None:
        return None
    report, esp_named_row = found
    row = row_of(message, parts, envelope_to)
    return Report(
        report.kind,
        row if row is not None else esp_named_row,
        clean(report.status, 16),
        clean(report.diagnostic),
        clean(report.address, 320),
        clean(message.get("Message-ID"), 200),
        tuple(clean(a, 320) for a in report.aliases),
    )


def _report(
    message: email.message.Message,
    parts: list[tuple[email.message.Message, int]],
    subject: str,
    failed_header: str,
) -> tuple[Report, int | None] | None:
    """(report, a row it names by an ESP's signed metadata); None for a success notice."""
    top_level = [part for part, depth in parts if depth == 0]
    for part in top_level:
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            report = _delivery_status(part, failed_header)
            return None if report is None else (report, None)
        if kind == "message/feedback-report":
            report = _feedback(part, parts)
            return None if report is None else (report, None)
    try:
        report_type = collapse_rfc2231_value(message.get_param("report-type") or "").lower()
    except Exception:  # a malformed parameter is no report type
        report_type = ""
    explanation = _explanation(parts)
    if (
        message.get_content_type() == "multipart/report"
        and report_type == "disposition-notification"
    ):
        return Report(
            K.AUTO_REPLY, None, "", subject[:300], _address(_header(message, "From"))
        ), None
    notice = _json_notification(explanation)
    if notice is not None:
        read_notice = _esp_json(notice)
        if read_notice is not None:
            report, row = read_notice
            return None if report is None else (report, row)
    if (
        failed_header
        or _DAEMON.search(_header(message, "From"))
        or _BOUNCE_SUBJECT.search(subject)
        or message.get_content_type() == "multipart/report"
    ):
        return _plain_bounce(message, explanation, subject, failed_header), None
    automatic = _automatic(message, explanation, subject)
    sender = _address(_header(message, "From"))
    if automatic:
        return Report(automatic, None, "", subject[:300], sender), None
    return Report(K.UNKNOWN, None, "", subject[:300], ""), None
