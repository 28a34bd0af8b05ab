"""Decimal numbers as people and machines send them: JSON numbers, "12.50", and in files "12,50".

Anything else (``"abc"``, ``NaN``, ``Infinity``, ``true``, ``"1e3"``) is refused. A decimal
comma (and a thousands separator before it) is read only where the caller says the text
comes from a spreadsheet; in JSON ``"1,500"`` could mean 1.5 or 1,500 and is refused.
"""

from __future__ import annotations

import re
from decimal import Decimal

from django.utils.translation import gettext as _

_PLAIN = re.compile(r"-?\d+(\.\d+)?")
_COMMA = re.compile(r"-?\d{1,3}([ \u00a0\u202f.]\d{3})+(,\d+)?|-?\d+(,\d+)?")


class NotADecimal(ValueError):
    """The value is not a decimal number; the message says what was expected."""


def parse_decimal(value, *, decimal_comma: bool = False) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise NotADecimal(_("Must be a decimal number."))
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal | float):
        number = value if isinstance(value, Decimal) else Decimal(repr(value))
        if not number.is_finite():  # repr(0.1) is '0.1': the float's shortest text
            raise NotADecimal(_("Must be a decimal number."))
        return number
    if not isinstance(value, str):
        raise NotADecimal(_("Must be a decimal number."))
    text = value.strip()
    if _PLAIN.fullmatch(text):
        return Decimal(text)
    if decimal_comma and _COMMA.fullmatch(text):
        for mark in (" ", "\u00a0", "\u202f", "."):
            text = text.replace(mark, "")
        return Decimal(text.replace(",", "."))
    if decimal_comma:
        message = _("Must be a decimal number such as 12.50 or 12,50 (got “%(value)s”).")
    else:
        message = _("Must be a decimal number such as 12.50 (got “%(value)s”).")
    raise NotADecimal(message % {"value": text[:40]})
