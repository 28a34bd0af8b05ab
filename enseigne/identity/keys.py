"""The deterministic matching keys of a record: normalised e-mail and E.164 phone.

A key is the SHA-256 of the network's root path and the normalised value's
``identifier_hash`` (so two networks never share a person, and a brand-wide suppression's
hash gives the key); it is kept on the record's link. A placeholder (``test@test.fr``,
``aucun@…``) identifies nobody and gives no key.
"""

from __future__ import annotations

import hashlib
import re

from enseigne.lib.hashing import identifier_hash, normalise_email

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# Local parts people type when they have, or will not give, no address.
PLACEHOLDER_LOCALS = frozenset(
    {
        "test",
        "tests",
        "testtest",
        "aucun",
        "aucune",
        "pas",
        "pasde",
        "pasdemail",
        "pasdadresse",
        "noemail",
        "nomail",
        "noname",
        "no",
        "non",
        "none",
        "null",
        "nil",
        "n.a",
        "x",
        "xx",
        "xxx",
        "a",
        "abc",
        "email",
        "inconnu",
        "inconnue",
        "client",
        "nepas",
        "refus",
        "refuse",
        "sansemail",
        "vide",
        "example",
        "exemple",
        "fake",
        "faux",
        "dummy",
        "nobody",
        "noreply",
        "no-reply",
        "ne-pas-repondre",
        "nepasrepondre",
    }
)
PLACEHOLDER_DOMAINS = frozenset(
    {
        "test.fr",
        "test.com",
        "test.test",
        "example.com",
        "example.org",
        "example.net",
        "exemple.fr",
        "exemple.com",
        "x.x",
        "xx.xx",
        "xxx.xxx",
        "a.a",
        "x.fr",
        "aucun.fr",
        "aucun.com",
        "nomail.com",
        "noemail.com",
        "none.com",
        "mailinator.com",
        "yopmail.com",
        "yopmail.fr",
        "jetable.org",
    }
)
# A domain whose first label says there is no address: aucun.fr, none.net, test.org…
PLACEHOLDER_DOMAIN_NAMES = frozenset({"aucun", "aucune", "none", "noemail", "nomail", "test"})
# Two or more of one character (aa@, 0000@), digits only (123456@), or a placeholder word
# followed by digits (test1@, pasdemail123@).
_REPEATED = re.compile(r"^(.)\1+$")
_DIGITS = re.compile(r"^[0-9]+$")
_NUMBERED = re.compile(r"^([a-z]+)[0-9]+$")


def is_placeholder_email(email: str) -> bool:
    """Whether ``email`` (already normalised) is one people type instead of a real one."""
    local, _, domain = email.rpartition("@")
    plain = local.replace(".", "").replace("-", "").replace("_", "")
    numbered = _NUMBERED.match(plain)
    return (
        local in PLACEHOLDER_LOCALS
        or plain in PLACEHOLDER_LOCALS
        or domain in PLACEHOLDER_DOMAINS
        or bool(_REPEATED.match(plain))
        or bool(_DIGITS.match(plain))
        or (numbered is not None and numbered.group(1) in PLACEHOLDER_LOCALS)
        or domain.split(".")[0] in PLACEHOLDER_DOMAIN_NAMES
    )


def email_key(email: str | None, *, gmail_rules: bool = False) -> str | None:
    """The e-mail's matching value, or None when it identifies nobody."""
    if not email:
        return None
    normalised = normalise_email(email)
    if "@" not in normalised or is_placeholder_email(normalised):
        return None
    if gmail_rules:
        local, _, domain = normalised.rpartition("@")
        if domain in GMAIL_DOMAINS:
            normalised = local.split("+", 1)[0].replace(".", "") + "@gmail.com"
    return normalised


def keys_are_address_hashes(kind: str, *, gmail_rules: bool) -> bool:
    """Whether every ``kind`` key is its address's own ``identifier_hash`` salted (or none,
    for a placeholder), so that a suppression's hash gives the key of every record with
    that address. Not for e-mails under the Gmail rules: their key drops dots and +suffix."""
    return kind == "phone" or not gmail_rules


def phone_key(phone: str | None) -> str | None:
    """An E.164 number (as the contacts store it) is its own key; a repeated digit is not."""
    if not phone or not phone.startswith("+") or _REPEATED.match(phone[-8:]):
        return None
    return phone


def record_keys(
    network: str, email: str | None, phone: str | None, *, gmail_rules: bool
) -> tuple[str | None, str | None]:
    """(e-mail key, phone key) of a record, None where it has none: SHA-256 of the network's
    root path and the normalised value's ``identifier_hash`` (the suppression list's hash),
    so two networks never share a person and a brand-wide suppression finds its keys."""
    email_value = email_key(email, gmail_rules=gmail_rules)
    phone_value = phone_key(phone)
    return (
        None if email_value is None else _salted(network, identifier_hash("email", email_value)),
        None if phone_value is None else _salted(network, identifier_hash("phone", phone_value)),
    )


def _salted(network: str, value_hash: str) -> str:
    return hashlib.sha256(f"{network}|{value_hash}".encode()).hexdigest()
