"""Normalising what people type: emails (never a DNS lookup), phones (E.164), dates."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from functools import lru_cache

import phonenumbers
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, PhoneNumberType

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


# email-validator explains in English; these are the reasons a store manager reads in
# the import report and forms, in their language. Each entry: a fragment of the
# validator's message, the reason shown. The first that matches wins.
_EMAIL_REASONS = (
    ("must have an @-sign", gettext_noop("no @ sign")),
    ("something before the @-sign", gettext_noop("nothing before the @")),
    ("something after the @-sign", gettext_noop("nothing after the @")),
    ("display name and angle brackets", gettext_noop("a name or <…> around the address")),
    ("too long before the @-sign", gettext_noop("too long before the @")),
    ("too long", gettext_noop("too long")),
    ("separated by so many characters", gettext_noop("a part of the domain is too long")),
    ("two periods in a row", gettext_noop("two dots in a row")),
    ("period and a hyphen", gettext_noop("a dot next to a hyphen")),
    ("special-use or reserved name", gettext_noop("a reserved domain name")),
    ("should have a period", gettext_noop("no dot in the domain after the @")),
    ("not within a valid top-level domain", gettext_noop("the domain does not end as one should")),
    ("after the @-sign", gettext_noop("characters not allowed in the domain after the @")),
    ("anything after the email address", gettext_noop("text after the address")),
    ("before the @-sign", gettext_noop("characters not allowed before the @")),
    ("invalid character", gettext_noop("characters not allowed")),
    ("unsafe characters", gettext_noop("characters not allowed")),
    ("not valid ASCII", gettext_noop("characters not allowed")),
)
_EMAIL_OTHER = gettext_noop("not the shape of an address")
# RFC 5321 (4.5.3.1.1): the part before the @ has at most 64 octets. email-validator 2.x
# lets longer ones through; mail servers refuse them.
LOCAL_PART_MAX = 64


def _email_reason(message: str) -> str:
    for fragment, reason in _EMAIL_REASONS:
        if fragment in message:
            return _(reason)
    return _(_EMAIL_OTHER)


def _invalid_email(reason: str) -> FieldError:
    return FieldError(_("not a valid email address (%(detail)s)") % {"detail": reason})


def clean_email(value: str) -> str:
    value = value.strip()
    plain = _plain_email(value)
    if plain is not None:
        return plain
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _invalid_email(_email_reason(str(exc))) from None
    if len(result.local_part.encode()) > LOCAL_PART_MAX:
        raise _invalid_email(
            _("more than %(count)s characters before the @") % {"count": LOCAL_PART_MAX}
        )
    # The domain is case-insensitive; the local part is kept but lowercased too so that
    # deduplication within a unit matches how people type the same address.
    return result.normalized.lower()


@lru_cache(maxsize=8)
def _region(country: str) -> str:
    return (country or "FR").upper()


# French numbers written the usual ways (06 12 34 56 78, 06.12.34.56.78, +33 6…, 0033 6…)
# skip phonenumbers.parse (~14 µs) but not its validity check; a property test checks
# the result equals the full path's. 08… numbers (free, shared-cost, premium services)
# take the full path, which refuses them.
_FR_NUMBER = re.compile(r"(?:0|\+33|0033)([1-79]\d{8})", re.ASCII)
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


# Numbers that reach a service, not a person's phone: a text to them is lost or billed.
SERVICE_NUMBER_TYPES = frozenset(
    {
        PhoneNumberType.TOLL_FREE,
        PhoneNumberType.PREMIUM_RATE,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.UAN,
        PhoneNumberType.VOICEMAIL,
        PhoneNumberType.PAGER,
    }
)


def clean_phone(value: str, country: str | None = "FR") -> str:
    """The number in E.164. A national number (06…, 079…) is read as a number of
    ``country``, and must be valid *for that country*; ``None`` means the country is not
    known, so only the international form (+41…, 0041… is not enough) is accepted."""
    raw = value.strip()
    region = _region(country) if country is not None else None
    if region == "FR":
        plain = _plain_french_phone(raw)
        if plain is not None:
            return plain
    try:
        number = phonenumbers.parse(raw, region)
    except NumberParseException as exc:
        if region is None and exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            raise FieldError(
                _("a national number, but the country is not known: write it as +<country code>…")
            ) from None
        raise FieldError(_("not a phone number")) from None
    national = region is not None and number.country_code == phonenumbers.country_code_for_region(
        region
    )
    if not (
        phonenumbers.is_valid_number_for_region(number, region)
        if national
        else phonenumbers.is_valid_number(number)
    ):
        raise FieldError(
            _("not a valid phone number for %(country)s or in international form")
            % {"country": region or "?"}
        )
    if phonenumbers.number_type(number) in SERVICE_NUMBER_TYPES:
        raise FieldError(
            _("a service number (free, shared-cost or premium rate), not a person's phone")
        )
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def folded(text: str) -> str:
    """Lower case, no accents, punctuation as spaces: how headers and country names compare."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w+]|_", " ", bare).split())


# ISO 3166 alpha-3 codes of the countries a French network's customers mostly come from
# (phonenumbers knows alpha-2 codes and names only).
_ALPHA3 = {
    "fra": "FR", "bel": "BE", "che": "CH", "lux": "LU", "mco": "MC", "deu": "DE", "ita": "IT",
    "esp": "ES", "prt": "PT", "nld": "NL", "gbr": "GB", "irl": "IE", "aut": "AT", "and": "AD",
    "usa": "US", "can": "CA", "mar": "MA", "dza": "DZ", "tun": "TN", "sen": "SN", "civ": "CI",
    "reu": "RE", "glp": "GP", "mtq": "MQ", "guf": "GF", "myt": "YT", "pol": "PL", "rou": "RO",
}  # fmt: skip
_COUNTRY_ALIASES = {"uk": "GB", "angleterre": "GB", "england": "GB", "usa": "US"}
_NAME_LANGUAGES = ("fr", "en", "de", "es", "it", "nl", "pt")


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    """Folded country names in the languages the UI and customers use -> region code."""
    from phonenumbers.geodata.locale import LOCALE_DATA  # large: loaded on first use

    names = {}
    for region, by_language in LOCALE_DATA.items():
        if region not in phonenumbers.SUPPORTED_REGIONS:
            continue
        for language in _NAME_LANGUAGES:
            name = by_language.get(language, "")
            while name.startswith("*"):  # "*de": same as German
                name = by_language.get(name[1:], "")
            if name:
                names.setdefault(folded(name), region)
    return names


def clean_country(value: str) -> str:
    """A country as a file writes it (FR, CHE, Suisse, Switzerland, +41) -> ISO alpha-2."""
    key = folded(value)
    if len(key) == 2 and key.upper() in phonenumbers.SUPPORTED_REGIONS:
        return key.upper()
    if key in _ALPHA3:
        return _ALPHA3[key]
    if key in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[key]
    code = key.removeprefix("+").removeprefix("00")
    if code.isdigit() and code != key:
        region = phonenumbers.region_code_for_country_code(int(code))
        if region in phonenumbers.SUPPORTED_REGIONS:
            return region
    region = _country_names().get(key)
    if region is None:
        raise FieldError(_("not a country (use a code such as FR or CH, or its name)"))
    return region


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
