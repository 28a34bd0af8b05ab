"""Building the bytes of one marketing e-mail, fast and to the letter of the RFCs.

Python's ``EmailMessage`` costs about 1.3 ms a message and folds long headers, which
breaks ``List-Unsubscribe`` for some receivers; this writes the MIME structure directly.
Everything that is the same for a whole unit (From, Reply-To, List-Id) is encoded once
per unit (``Envelope``); per recipient only To, Subject, Message-ID, the unsubscribe
URL and the two bodies change. Bodies are quoted-printable, so no line passes 76
characters (RFC 5322 allows 998).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from dataclasses import dataclass
from email.utils import formatdate

from enseigne.lib.signing import hex_tag, unsign_id

_SAFE_PHRASE = re.compile(r"^[A-Za-z0-9 !#$%&'*+\-/=?^_`{|}~.]*$")
_CRLF = re.compile(r"\r\n|\r|\n")


def encode_word(text: str) -> str:
    """An RFC 2047 header value: as is when plain ASCII, else base64 encoded-words."""
    if text.isascii() and "=?" not in text and not any(c in text for c in "\r\n"):
        return text
    words, chunk = [], ""
    for char in text:
        if len((chunk + char).encode()) > 45:  # 45 bytes → 60 base64 chars, within 75 per word
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words if w)


def mailbox(name: str, address: str) -> str:
    name = name.replace("\r", " ").replace("\n", " ").strip()
    if not name:
        return address
    if name.isascii() and _SAFE_PHRASE.match(name):
        phrase = (
            name if "." not in name else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        )
    elif name.isascii():
        phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        phrase = encode_word(name)
    return f"{phrase} <{address}>"


def _qp(text: str) -> bytes:
    if "\r" in text:
        text = _CRLF.sub("\n", text)
    # With bare LF line ends b2a_qp writes LF; CRLF is put back in one pass.
    return binascii.b2a_qp(text.encode(), quotetabs=False, istext=True, header=False).replace(
        b"\n", b"\r\n"
    )


def message_id(campaign_id: int, recipient_id: int, domain: str) -> str:
    """Deterministic per ledger row (so per campaign and contact), unguessable across networks."""
    return f"<c{campaign_id}.r{recipient_id}.{hex_tag(f'mid:{campaign_id}:{recipient_id}', 12)}@{domain}>"


# Our Message-IDs, with the parts to verify; found anywhere in a text (a bounce quoting it).
OUR_MESSAGE_ID = re.compile(r"<c(\d{1,18})\.r(\d{1,18})\.([0-9a-f]{12})@[^>\s]+>")


def recipient_of(message_id: str) -> int | None:
    """The ledger row a Message-ID of ours was made for (None for anyone else's)."""
    found = OUR_MESSAGE_ID.match(message_id)
    return int(found.group(2)) if found else None


def verified_recipient(text: str) -> int | None:
    """The ledger row of the first genuine Message-ID of ours found in ``text`` (the tag is checked)."""
    for campaign, row, tag in OUR_MESSAGE_ID.findall(text or ""):
        if hmac.compare_digest(
            tag.encode(), hex_tag(f"mid:{int(campaign)}:{int(row)}", 12).encode()
        ):
            return int(row)
    return None


def esp_row(metadata: dict | None) -> int | None:
    """The ledger row an ESP echoes back in the metadata the message was sent with."""
    return unsign_id("esp", str((metadata or {}).get("enseigne") or ""))


def bounce_address(recipient_id: int, domain: str) -> str:
    """The envelope sender (VERP): a DSN sent back to it names its ledger row, and cannot be forged."""
    return f"bounces+{recipient_id}.{hex_tag(f'verp:{recipient_id}', 16)}@{domain}"


_BOUNCE_ADDRESS = re.compile(r"bounces\+(\d{1,18})\.([0-9a-f]{16})@", re.IGNORECASE)


def bounce_row(text: str) -> int | None:
    """The ledger row of the first genuine bounce address in ``text`` (a Delivered-To header, say)."""
    for row, tag in _BOUNCE_ADDRESS.findall(text or ""):
        if hmac.compare_digest(tag.lower().encode(), hex_tag(f"verp:{int(row)}", 16).encode()):
            return int(row)
    return None


@dataclass(frozen=True)
class Envelope:
    """The headers one unit's messages share, encoded once."""

    mail_from: str  # the bounce (envelope) address
    from_header: str
    reply_to: str
    list_id: str

    @classmethod
    def build(
        cls,
        *,
        unit_name: str,
        brand_name: str,
        from_address: str,
        reply_to: str,
        list_id: str,
        return_path: str,
    ) -> Envelope:
        name = (
            f"{unit_name} – {brand_name}"
            if brand_name and brand_name not in unit_name
            else unit_name
        )
        return cls(
            mail_from=return_path,
            from_header=mailbox(name, from_address),
            reply_to=reply_to,
            list_id=f"{encode_word(unit_name)} <{list_id}>",
        )


def build_email(
    *,
    envelope: Envelope,
    to: str,
    subject: str,
    html: str,
    text: str,
    message_id: str,
    unsubscribe_url: str,
    now: float | None = None,
) -> bytes:
    boundary = "=_" + message_id.strip("<>").split("@")[0].replace(".", "_")
    if "\r" in unsubscribe_url or "\n" in unsubscribe_url or ">" in unsubscribe_url:
        raise ValueError("An unsubscribe URL cannot contain line breaks or '>'.")
    headers = [
        f"From: {envelope.from_header}",
        f"To: {to}",
        f"Subject: {encode_word(subject)}",
        f"Date: {formatdate(now if now is not None else time.time(), localtime=False, usegmt=True)}",
        f"Message-ID: {message_id}",
        f"Reply-To: {envelope.reply_to}" if envelope.reply_to else "",
        f"List-Id: {envelope.list_id}",
        # One line each, never folded (RFC 8058 receivers read these bytes as they are).
        f"List-Unsubscribe: <{unsubscribe_url}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    head = "\r\n".join(h for h in headers if h).encode()
    part = f"\r\n--{boundary}\r\nContent-Type: text/{{}}; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    return b"".join(
        (
            head,
            b"\r\n\r\nThis is a multi-part message in MIME format.\r\n",
            part.format("plain").encode(),
            _qp(text),
            part.format("html").encode(),
            _qp(html),
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
