"""What an SMTP reply or a delivery report says about a message and its address.

One reading for every door a verdict comes through: the reply to RCPT TO or to the final
dot at hand-off (``channels/smtp``), a delivery report's ``Status`` and ``Diagnostic-Code``
(RFC 3464), a plain-text bounce, the server reply an ESP quotes in its event. Pure
functions over what is known: the basic reply code (RFC 5321), the enhanced status code
(RFC 3463) and the server's words.

**Delivered, temporary or permanent.** The basic code decides when there is one (2xx, 4xx,
5xx), since it is the one RFC 5321 makes a client act on; else the enhanced code's class
(2, 4, 5); else nothing is known. A basic code outside 200–599 is garbage: unknown.

**Suppressing the address** (brand-wide, for good) is kept for a permanent failure that
says the mailbox does not exist. A live address suppressed by mistake is a customer lost
for good; a dead one missed costs one refused message per campaign until a report or a
later reply names it. So, with an enhanced code of class 5, exactly these details:

- X.1.1 bad destination mailbox address (no such user);
- X.1.2 bad destination system address (the domain does not exist or takes no mail);
- X.1.3 bad destination mailbox address syntax;
- X.1.6 destination mailbox has moved, no forwarding address (gone from that address);
- X.1.10 recipient address has a null MX (RFC 7505; Exchange Online also sends it for
  "recipient not found").

Nothing else suppresses, except the provider wordings below: X.1.4 (ambiguous), X.1.7 and
X.1.8 (the *sender's* address), X.2.x (the mailbox exists: disabled, full, message too
large for it), X.3.x (the system: X.3.4 message too big), X.4.x (routing, DNS, which can be
a passing outage), X.5.x and X.6.x (protocol, content), X.7.x (policy, spam, block lists,
authentication: X.7.1 included).
Nor does any 4xx (greylisting, rate limits, a full mailbox for now).

**An enhanced code wins over the words**: ``550 5.7.1 mailbox unavailable`` is a policy
block. Only X.0.0 ("undefined") and X.1.0 ("other address status") say nothing precise, so
for them, and when there is no enhanced code at all, the words decide: a 550, 551 or 553
whose text says plainly that the user, mailbox or recipient does not exist, in the usual
vendor wordings (English, French, German, a little Spanish and Italian). Not RFC 5321's
stock "mailbox unavailable", which servers send for policy refusals too; and never when
the text also speaks of policy, spam, blocking or the sender (``_NOT_ABOUT_THE_MAILBOX``).
552 (storage) and 554 (transaction failed, mostly policy) never suppress on words.

**Three large providers use codes their own way**, and the words they send with them
are read as the provider means them (``_PROVIDER_CODES``): Outlook.com (Hotmail) answers
``550 5.5.0 Requested action not taken: mailbox unavailable`` for an address it does not
have; Exchange Online's directory-based edge blocking answers ``550 5.4.1 Recipient
address rejected: Access denied`` for one a tenant does not have; a ``5.4.4`` whose words
say the host or domain name was not found (Postfix's "Host or domain name not found …
Host not found", an authoritative NXDOMAIN) names a domain that does not exist — a
permanent failure of the address, as X.1.2 is. The same codes with other words (5.5.0
"Invalid EHLO", 5.4.4 "Unrouteable address", a lookup to "try again") still suppress
nothing. And whatever the basic code, a few exact provider wordings say the mailbox does
not exist (``_PROVIDER_NO_SUCH_MAILBOX``): Yahoo and AOL's ``554 delivery error: dd This
user doesn't have a yahoo.com account`` and ``552 … mailbox not found``.

For reports, ``bounce_kind`` turns the verdict into a ``Bounce.Kind``: hard when it
suppresses, soft for any other failure, unknown when nothing could be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# Enough of a reply or report to hold every code and wording; a longer one is cut.
MAX_TEXT = 4000

# 5.1.1 at the start of a reply line (RFC 2034, after the basic code if it is repeated),
# else anywhere in the words, but never inside a dotted run such as an IP address
# (10.5.1.1) or a version (2.11.3.1).
_CODE = r"([245])\.(\d{1,3})\.(\d{1,3})(?!\d|\.\d)"
_LEADING_ENHANCED = re.compile(r"^\s*(?:[1-9]\d\d[ -])?#?" + _CODE, re.MULTILINE)
_ENHANCED = re.compile(r"(?<![\d.])" + _CODE)
_REPLY_CODE = re.compile(r"^\s*([1-9]\d\d)(?![\d.])")

SUPPRESSING_DETAILS = frozenset({(1, 1), (1, 2), (1, 3), (1, 6), (1, 10)})
# (subject, detail) pairs of enhanced codes that tell nothing precise: the words decide.
_SAY_NOTHING = frozenset({(0, 0), (1, 0)})
_WORDS_MAY_SUPPRESS = frozenset({550, 551, 553})

_NO_SUCH_MAILBOX = re.compile(
    "|".join(
        [
            # English
            r"\b(user|recipient|mailbox|address|account|addressee)s? (is |are )?unknown\b",
            r"\bunknown (local[- ]?part|local (user|recipient)|user|recipient|mailbox|"
            r"address|account|addressee)",
            r"\bno such (user|mailbox|recipient|address|account|local user|person)",
            r"\b(does not|doesn't|doesnt|do not|did not) exist",
            r"\b(non-?existent|nonexisting|inexistent) (user|recipient|mailbox|address|account)",
            r"\b(user|recipient|mailbox|address|account)( address)? (was )?not found\b",
            r"\binvalid (recipient|mailbox|user|destination address|e-?mail address)",
            r"\bnot a valid (user|mailbox|recipient)",
            r"\bno mailbox (here )?by that name",
            r"\bdoesn'?t have an? [\w.-]+ account",
            r"\brecipient not found\b",
            # French (Orange, Free, SFR, La Poste write it with or without accents/apostrophes)
            r"\b(utilisateur|destinataire|correspondant)s? (est )?(inconnu|inexistant|invalide)",
            r"\badresse (e-?mail |électronique |electronique )?(de destination )?"
            r"(inconnue|inexistante)",
            r"\b(bo[iî]te|bal) (aux lettres |mail |e-?mail )?(inexistante|inconnue)",
            r"\bcompte (est )?inexistant",
            r"\bn.?existe (pas|plus)\b",
            # German (GMX, Web.de, T-Online)
            r"\b(benutzer|empf(ä|ae|a)nger(adresse)?|postfach|adresse|mailbox|konto)"
            r" (ist )?(unbekannt|ung(ü|ue|u)ltig|existiert nicht|nicht vorhanden)",
            r"\bunbekannte[rs]? (benutzer|empf(ä|ae|a)nger|adresse|postfach)",
            r"\bexistiert nicht\b",
            # Spanish, Italian
            r"\busuario (desconocido|no existe|inexistente)",
            r"\b(utente|destinatario) (sconosciuto|inesistente|non esiste)",
        ]
    ),
    re.IGNORECASE,
)
# Words that make a refusal about something else than the mailbox's existence.
_NOT_ABOUT_THE_MAILBOX = re.compile(
    r"spam|block|blacklist|black list|listed|policy|policies|reputation|\brbl\b|dnsbl|"
    r"spamhaus|barracuda|virus|malware|phish|content|\bsender\b|mail from|\bspf\b|\bdkim\b|"
    r"dmarc|denied|not (authori[sz]ed|permitted|allowed)|rate limit|too many|quota|"
    r"refus|bloqu|ind[ée]sirable|politique|exp[ée]diteur|[ée]metteur|"
    r"absender|gesperrt|richtlinie",
    re.IGNORECASE,
)


# (subject, detail) of an enhanced code → the words that, with it, say the mailbox or its
# domain does not exist. The words matched are taken out before ``_NOT_ABOUT_THE_MAILBOX``
# reads the rest (Microsoft's "Access denied" is its wording for "not in the directory").
_PROVIDER_CODES: dict[tuple[int, int], re.Pattern[str]] = {
    # Outlook.com / Hotmail.
    (5, 0): re.compile(r"requested action not taken:? mailbox unavailable", re.IGNORECASE),
    # Exchange Online, directory-based edge blocking (AS(201806281)).
    (4, 1): re.compile(r"recipient address rejected:? access denied", re.IGNORECASE),
    # The domain does not exist (not "try again": a lookup that failed for now).
    (4, 4): re.compile(
        r"host or domain name not found|\bhost not found\b(?![,.;:]? try again)|nxdomain|"
        r"\b(no such|unknown|non-?existent) (domain|host)\b|"
        r"\bdomain (name )?(not found|does not exist|doesn't exist)",
        re.IGNORECASE,
    ),
}
_LOOKUP_FOR_NOW = re.compile(r"try again|temporar|timed? ?out|servfail|refused", re.IGNORECASE)
# Exact provider wordings that say the mailbox does not exist under any 5xx basic code.
_PROVIDER_NO_SUCH_MAILBOX = re.compile(
    r"\bth(is|e) user doesn[\u2019']?t have an? [\w.-]+ account|"  # Yahoo, AOL
    r"requested mail action aborted,? mailbox not found",  # Yahoo (552)
    re.IGNORECASE,
)


class Status(StrEnum):
    DELIVERED = "delivered"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Verdict:
    status: Status
    suppress: bool = False  # the address does not exist: suppress it brand-wide
    enhanced: str = ""  # the RFC 3463 code the verdict went by ("5.1.1"), if any

    @property
    def delivered(self) -> bool:
        return self.status is Status.DELIVERED

    @property
    def temporary(self) -> bool:
        return self.status is Status.TEMPORARY

    @property
    def permanent(self) -> bool:
        return self.status is Status.PERMANENT

    @property
    def bounce_kind(self) -> str:
        """The ``Bounce.Kind`` of a report saying this."""
        # Imported here: the SMTP channel reads verdicts without loading Django's models.
        from enseigne.delivery.models import Bounce

        if self.suppress:
            return Bounce.Kind.HARD
        if self.status in (Status.TEMPORARY, Status.PERMANENT):
            return Bounce.Kind.SOFT
        return Bounce.Kind.UNKNOWN


def _clean(text: str) -> str:
    return " ".join(text[:MAX_TEXT].replace("\x00", " ").split())


def enhanced_code(text: str) -> str:
    """The first RFC 3463 code in ``text`` ("5.1.1", leading zeros dropped), or ""."""
    text = text[:MAX_TEXT]
    found = _LEADING_ENHANCED.search(text) or _ENHANCED.search(text)
    if found is None:
        return ""
    return ".".join(str(int(part)) for part in found.groups())


def reply_code(text: str) -> int | None:
    """The basic reply code that ``text`` starts with ("550 5.1.1 …" → 550), or None."""
    found = _REPLY_CODE.match(text[:MAX_TEXT])
    return int(found.group(1)) if found else None


def says_no_such_mailbox(text: str) -> bool:
    """The words say the recipient's mailbox does not exist, and speak of nothing else."""
    text = _clean(text)
    return bool(_NO_SUCH_MAILBOX.search(text)) and not _NOT_ABOUT_THE_MAILBOX.search(text)


def classify(*, code: int | None = None, enhanced: str = "", text: str = "") -> Verdict:
    """Read a reply or a report: ``code`` the basic reply code, ``enhanced`` the RFC 3463
    code, ``text`` the server's words. The enhanced code is read from the words when not
    given; so is the basic code when neither is (a report's ``Status`` field is given as
    ``enhanced`` alone: it outranks the codes the remote server quoted)."""
    text = text or ""
    if code is None and not enhanced:
        code = reply_code(text)
    enhanced = enhanced_code(enhanced or "") or enhanced_code(text)
    if code is not None and enhanced and enhanced[0] != str(code)[0]:
        enhanced = ""  # RFC 3463: the class matches the basic code; this one is no status code
    parts = tuple(int(p) for p in enhanced.split(".")) if enhanced else ()
    if code is not None:
        if not 200 <= code < 600:
            return Verdict(Status.UNKNOWN, enhanced=enhanced)
        klass = code // 100
    elif parts:
        klass = parts[0]
    else:
        return Verdict(Status.UNKNOWN)
    status = {2: Status.DELIVERED, 4: Status.TEMPORARY, 5: Status.PERMANENT}.get(
        klass, Status.UNKNOWN
    )
    if status is not Status.PERMANENT:
        return Verdict(status, enhanced=enhanced)
    if parts and parts[1:] in _PROVIDER_CODES:
        return Verdict(status, _provider_says_no_such_mailbox(parts[1:], text), enhanced)
    if parts and parts[1:] not in _SAY_NOTHING:
        return Verdict(status, parts[1:] in SUPPRESSING_DETAILS, enhanced)
    by_words = (code is None or code in _WORDS_MAY_SUPPRESS) and says_no_such_mailbox(text)
    by_provider = bool(_PROVIDER_NO_SUCH_MAILBOX.search(_clean(text))) and not (
        _NOT_ABOUT_THE_MAILBOX.search(_PROVIDER_NO_SUCH_MAILBOX.sub(" ", _clean(text)))
    )
    return Verdict(status, by_words or by_provider, enhanced)


def _provider_says_no_such_mailbox(detail: tuple[int, ...], text: str) -> bool:
    words = _PROVIDER_CODES[(detail[0], detail[1])]
    text = _clean(text)
    if not words.search(text):
        return False
    rest = words.sub(" ", text)
    if detail == (4, 4) and _LOOKUP_FOR_NOW.search(rest):
        return False
    return not _NOT_ABOUT_THE_MAILBOX.search(rest)
