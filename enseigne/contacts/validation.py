"""Normalising what people type: emails (never a DNS lookup), phones (E.164), dates."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberFormat

from enseigne.contacts.models import CustomAttribute


class FieldError(ValueError):
    """A value that cannot be stored, with a reason a store manager understands."""


def clean_email(value: str) -> str:
    value = value.strip()
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(f"not a valid email address ({exc})") from None
    # The domain is case-insensitive; the local part is kept but lowercased too so that
    # deduplication within a unit matches how people type the same address.
    return result.normalized.lower()


@lru_cache(maxsize=8)
def _region(country: str) -> str:
    return (country or "FR").upper()


def clean_phone(value: str, country: str = "FR") -> str:
    raw = value.strip()
    try:
        number = phonenumbers.parse(raw, _region(country))
    except NumberParseException:
        raise FieldError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise FieldError(f"not a valid phone number for {country} or in international form")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")


def clean_date(value: str) -> dt.date:
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 (a calendar date)
        except ValueError:
            continue
    raise FieldError("not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def clean_birthday(value: str) -> dt.date:
    date = clean_date(value)
    today = dt.date.today()
    if date > today or date.year < today.year - 120:
        raise FieldError("not a plausible birthday")
    return date


_TRUE = {"1", "true", "yes", "oui", "o", "y", "vrai", "x"}
_FALSE = {"0", "false", "no", "non", "n", "faux", ""}


def clean_boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise FieldError("not yes/no")


def clean_attribute(attribute: CustomAttribute, value: str):
    text = value.strip()
    kind = attribute.kind
    if kind == CustomAttribute.Kind.NUMBER:
        try:
            number = float(text.replace(",", "."))
        except ValueError:
            raise FieldError("not a number") from None
        return int(number) if number.is_integer() else number
    if kind == CustomAttribute.Kind.DATE:
        return clean_date(text).isoformat()
    if kind == CustomAttribute.Kind.BOOLEAN:
        return clean_boolean(text)
    if kind == CustomAttribute.Kind.CHOICE and text not in attribute.choices:
        raise FieldError(f"not one of: {', '.join(attribute.choices)}")
    if len(text) > 200:
        raise FieldError("longer than 200 characters")
    return text


LANGUAGES = {"fr", "en", "de", "es", "it", "nl", "pt"}


def clean_language(value: str) -> str:
    lowered = value.strip().lower()[:2]
    if lowered not in LANGUAGES:
        raise FieldError(f"not a supported language ({', '.join(sorted(LANGUAGES))})")
    return lowered
