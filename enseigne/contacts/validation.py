"""Normalising what people type: emails (never a DNS lookup), phones (E.164), dates."""

from __future__ import annotations

import datetime as dt
import math
import re
from functools import lru_cache

import phonenumbers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

from enseigne.contacts.models import CustomAttribute


class FieldError(ValueError):
    """A value that cannot be stored, with a reason a store manager understands.

    Reasons are translated when raised: imports run in the language of whoever started
    them, so the row-by-row report reads in that person's language.
    """


# The shape most addresses have: plain ASCII dot-atoms, a domain of letter/digit labels
# (single hyphens inside) and a letter TLD. Everything this accepts, email-validator
# accepts with the same normalised form (a property test checks it), so the common case
# skips the full validator (~0.5 µs instead of ~22 µs); anything else takes the full path.
_PLAIN_EMAIL = re.compile(
    r"(?P<local>[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)@(?P<domain>(?:[a-z0-9]+(?:-[a-z0-9]+)*\.)+[a-z]{2,63})"
)
_SPECIAL_SUFFIXES = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)


def _plain_email(value: str) -> str | None:
    if not value.isascii() or len(value) > 254:
        return None
    lowered = value.lower()
    match = _PLAIN_EMAIL.fullmatch(lowered)
    if match is None or len(match["local"]) > 64 or len(match["domain"]) > 253:
        return None
    if any(len(label) > 63 for label in match["domain"].split(".")):
        return None
    if lowered.endswith(_SPECIAL_SUFFIXES):
        return None
    return lowered


def clean_email(value: str) -> str:
    value = value.strip()
    plain = _plain_email(value)
    if plain is not None:
        return plain
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(_("not a valid email address (%(detail)s)") % {"detail": exc}) from None
    # The domain is case-insensitive; the local part is kept but lowercased too so that
    # deduplication within a unit matches how people type the same address.
    return result.normalized.lower()


@lru_cache(maxsize=8)
def _region(country: str) -> str:
    return (country or "FR").upper()


# French numbers written the usual ways (06 12 34 56 78, 06.12.34.56.78, +33 6…, 0033 6…)
# skip phonenumbers.parse (~14 µs) but not its validity check; a property test checks
# the result equals the full path's.
_FR_NUMBER = re.compile(r"(?:0|\+33|0033)([1-9]\d{8})", re.ASCII)
_SEPARATORS = str.maketrans("", "", " .-")


def _plain_french_phone(raw: str) -> str | None:
    match = _FR_NUMBER.fullmatch(raw.translate(_SEPARATORS))
    if match is None:
        return None
    national = match[1]
    if not phonenumbers.is_valid_number(
        PhoneNumber(country_code=33, national_number=int(national))
    ):
        return None
    return f"+33{national}"


def clean_phone(value: str, country: str = "FR") -> str:
    raw = value.strip()
    if _region(country) == "FR":
        plain = _plain_french_phone(raw)
        if plain is not None:
            return plain
    try:
        number = phonenumbers.parse(raw, _region(country))
    except NumberParseException:
        raise FieldError(_("not a phone number")) from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError(
            _("not a valid phone number for %(country)s or in international form")
            % {"country": country}
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_NOT_A_DATE = gettext_noop("not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def clean_date(value: str) -> dt.date:
    text = value.strip()
    if _ISO_DATE.fullmatch(text):
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise FieldError(_(_NOT_A_DATE)) from None
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a calendar date)
        except ValueError:
            continue
    raise FieldError(_(_NOT_A_DATE))


def clean_birthday(value: str) -> dt.date:
    date = clean_date(value)
    today = dt.date.today()
    if date > today or date.year < today.year - 120:
        raise FieldError(_("not a plausible birthday"))
    return date


_TRUE = {"1", "true", "yes", "oui", "o", "y", "vrai", "x"}
_FALSE = {"0", "false", "no", "non", "n", "faux", ""}


def clean_boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError(_("not yes/no"))


def clean_attribute(attribute: CustomAttribute, value: str):
    text = value.strip()
    kind = attribute.kind
    if kind == CustomAttribute.Kind.NUMBER:
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise FieldError(_("not a number")) from None
        if not math.isfinite(number):  # "nan", "inf": floats to Python, not numbers to JSON
            raise FieldError(_("not a number"))
        return int(number) if number.is_integer() else number
    if kind == CustomAttribute.Kind.DATE:
        return clean_date(text).isoformat()
    if kind == CustomAttribute.Kind.BOOLEAN:
        return clean_boolean(text)
    if kind == CustomAttribute.Kind.CHOICE and text not in attribute.choices:
        raise FieldError(_("not one of: %(choices)s") % {"choices": ", ".join(attribute.choices)})
    if len(text) > 200:
        raise FieldError(_("longer than 200 characters"))
    return text


LANGUAGES = {"fr", "en", "de", "es", "it", "nl", "pt"}


def clean_language(value: str) -> str:
    lowered = value.strip().lower()[:2]
    if lowered not in LANGUAGES:
        raise FieldError(
            _("not a supported language (%(languages)s)")
            % {"languages": ", ".join(sorted(LANGUAGES))}
        )
    return lowered
