"""The deterministic matching keys of a record: normalised e-mail and E.164 phone.

A key is the first 128 bits of the SHA-256 of the network's root path and the normalised
value's ``identifier_hash`` (so two networks never share a person, and a brand-wide
suppression's hash gives the key); it is kept on the record's link as a 16-byte ``uuid``
column. 128 bits leave no practical chance of two values sharing a key (a network of a
billion records: about 1 in 10^21), and an index entry a quarter the size of the 64-digit
hex text it replaces, which is what an import's upkeep of the key indexes costs
(docs/benchmarks.md, "Person matching at write time"). A placeholder (``test@test.fr``,
``aucun@…``) identifies nobody and gives no key.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

import phonenumbers

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


_SEPARATORS = str.maketrans("", "", ".-_")


def is_placeholder_email(email: str) -> bool:
    """Whether ``email`` (already normalised) is one people type instead of a real one.

    Called for every record an import writes: the cheap tests come first and the patterns
    run only on the local parts they can match (one ending in a digit, one starting with
    its own second character)."""
    local, _, domain = email.rpartition("@")
    plain = local.translate(_SEPARATORS)
    if (
        local in PLACEHOLDER_LOCALS
        or plain in PLACEHOLDER_LOCALS
        or domain in PLACEHOLDER_DOMAINS
        or domain.partition(".")[0] in PLACEHOLDER_DOMAIN_NAMES
    ):
        return True
    if len(plain) > 1 and plain[0] == plain[1] and _REPEATED.match(plain):
        return True
    if plain[-1:].isdigit():
        numbered = _NUMBERED.match(plain)
        return bool(_DIGITS.match(plain)) or (
            numbered is not None and numbered.group(1) in PLACEHOLDER_LOCALS
        )
    return False


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


@lru_cache(maxsize=4096)
def is_mobile(phone: str | None) -> bool:
    """A mobile number (or one the numbering plan cannot tell from a landline, as in the US)."""
    if not phone:
        return False
    try:
        kind = phonenumbers.number_type(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        return False
    return kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def record_keys(
    network: str, email: str | None, phone: str | None, *, gmail_rules: bool
) -> tuple[str | None, str | None]:
    """(e-mail key, phone key) of a record, None where it has none, each as 32 hex digits
    (how the ``uuid`` key columns read and write them): ``salted_key`` of the normalised
    value's ``identifier_hash`` (the suppression list's hash), so two networks never share
    a person and a brand-wide suppression finds its keys."""
    email_value = email_key(email, gmail_rules=gmail_rules)
    phone_value = phone_key(phone)
    return (
        None if email_value is None else salted_key(network, identifier_hash("email", email_value)),
        None if phone_value is None else salted_key(network, identifier_hash("phone", phone_value)),
    )


def salted_key(network: str, value_hash: str) -> str:
    """The key of a value whose ``identifier_hash`` is ``value_hash``, in ``network``."""
    return hashlib.sha256(f"{network}|{value_hash}".encode()).hexdigest()[:KEY_DIGITS]


KEY_DIGITS = 32  # 128 bits: a uuid column


def salted_key_sql(network_sql: str, value_hash_sql: str, vendor: str) -> str:
    """``salted_key`` as a SQL expression over two SQL text expressions, comparable with
    the key columns (``enseigne_sha256``: SQL on PostgreSQL, Python on SQLite)."""
    digits = f"substr(enseigne_sha256({network_sql} || '|' || {value_hash_sql}), 1, {KEY_DIGITS})"
    return f"({digits})::uuid" if vendor == "postgresql" else digits
