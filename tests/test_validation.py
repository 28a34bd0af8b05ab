"""The import's fast paths give exactly what the full validators give.

clean_email, clean_phone and clean_date skip email-validator, phonenumbers.parse and
strptime for the common shapes. These properties compare them with the full path on
generated input built to hit the edges of those shapes.
"""

from __future__ import annotations

import datetime as dt

import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from enseigne.contacts.validation import (
    SERVICE_NUMBER_TYPES,
    FieldError,
    clean_date,
    clean_email,
    clean_phone,
)


def full_email(value: str) -> str | None:
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    if len(result.local_part.encode()) > 64:  # RFC 5321, which email-validator lets through
        return None
    return result.normalized.lower()


def fast_email(value: str) -> str | None:
    try:
        return clean_email(value)
    except FieldError:
        return None


label = st.text(alphabet="abcXYZ019-_.+", min_size=1, max_size=8)
tld = st.sampled_from(
    ["fr", "com", "c", "x1", "test", "localhost", "arpa", "FR", "éte", "123", "xn--p1ai"]
)
emails = st.builds(
    lambda local, labels, top: f"{local}@{'.'.join(labels)}.{top}",
    st.text(alphabet="abcAB09._+-!#é\u212a", min_size=0, max_size=70),
    st.lists(label, min_size=1, max_size=3),
    tld,
)


@pytest.mark.slow  # hypothesis, thousands of examples
@settings(max_examples=3000, deadline=None)
@given(emails)
@example("a" * 64 + "@example.com")
@example("a" * 65 + "@example.com")
@example("a@" + "b" * 63 + ".fr")
@example("a@" + "b" * 64 + ".fr")
@example("a@b--c.fr")
@example("ab--c@b.fr")
@example("a@x.test")
@example("a@sub.localhost")
@example("\u212aevin@example.com")
@example(" Client.Un@Example.COM ")
def test_plain_email_path_agrees_with_email_validator(value):
    assert fast_email(value) == full_email(value)


def full_phone(value: str) -> str | None:
    try:
        number = phonenumbers.parse(value.strip(), "FR")
    except phonenumbers.NumberParseException:
        return None
    if number.country_code == 33:
        if not phonenumbers.is_valid_number_for_region(number, "FR"):
            return None
    elif not phonenumbers.is_valid_number(number):
        return None
    if phonenumbers.number_type(number) in SERVICE_NUMBER_TYPES:  # 08…: not a person's phone
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def fast_phone(value: str) -> str | None:
    try:
        return clean_phone(value, "FR")
    except FieldError:
        return None


phones = st.builds(
    lambda prefix, digits, sep: (
        prefix + sep.join(digits[i : i + 2] for i in range(0, len(digits), 2))
    ),
    st.sampled_from(["0", "+33", "0033", "+33 ", "+32", "00", "", "+", "0 ", "٠"]),
    st.text(alphabet="0123456789", min_size=7, max_size=11),
    st.sampled_from(["", " ", ".", "-", "/", "  "]),
)


@pytest.mark.slow  # hypothesis, thousands of examples
@settings(max_examples=3000, deadline=None)
@given(phones)
@example("06 12 34 56 78")
@example("+33 6 12 34 56 78")
@example("0033612345678")
@example("0612345678 ")
@example("06123456789")
@example("0690123456")
@example("0800123456")
@example("08 92 12 34 56")
@example("+33 (0)6 12 34 56 78")
@example("٠٦١٢٣٤٥٦٧٨")
def test_plain_french_phone_path_agrees_with_phonenumbers(value):
    assert fast_phone(value) == full_phone(value)


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-29",
        "2023-02-29",
        "1999-13-01",
        "0000-01-01",
        "31/12/1999",
        "1999-1-2",
        "٢٠٢٤-٠١-٠١",
    ],
)
def test_iso_date_path_agrees_with_strptime(value):
    def full(text):
        for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007
            except ValueError:
                continue
        return None

    try:
        fast = clean_date(value)
    except FieldError:
        fast = None
    assert fast == full(value)
