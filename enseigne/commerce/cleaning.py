"""Reading one order as sent (API JSON or a CSV row's text): each problem named by field and rule.

Nothing here touches the database: the same cleaning serves the API's batches, the
conversions endpoint and the CSV import, and a batch is cleaned before any write.
Amounts are decimal numbers in the unit's currency; JSON numbers and strings such as
``"12.50"`` are read, anything else (``"abc"``, ``NaN``, ``Infinity``, ``true``) is refused.
A decimal comma (``"12,50"``) is read only from a CSV file, where a French spreadsheet
writes it; in JSON it is refused rather than guessed (``"1,500"`` may mean 1.5 or 1,500).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.commerce.models import AMOUNT_PLACES, MAX_AMOUNT_DIGITS, Order
from enseigne.lib import decimals

MAX_AMOUNT = Decimal(10 ** (MAX_AMOUNT_DIGITS - AMOUNT_PLACES)) - Decimal("0.01")
MAX_QUANTITY = Decimal("9999999.999")
MAX_LINES = 500
CENT = Decimal("0.01")
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
)
# The future an order's time may reach (tills' clocks drift).
CLOCK_SLACK = dt.timedelta(hours=1)
CHANNELS = frozenset(Order.Channel.values)


class Rule(models.TextChoices):
    """Why a value is refused: stable codes a till's software can act on."""

    REQUIRED = "required", gettext_lazy("required")
    TOO_LONG = "too_long", gettext_lazy("too long")
    NOT_A_NUMBER = "not_a_number", gettext_lazy("not a decimal number")
    OUT_OF_RANGE = "out_of_range", gettext_lazy("out of range")
    TOO_PRECISE = "too_precise", gettext_lazy("too many decimals")
    NEGATIVE_OUTSIDE_RETURN = "negative_outside_return", gettext_lazy("negative outside a return")
    RETURN_NOT_NEGATIVE = "return_not_negative", gettext_lazy("return not negative")
    NOT_A_DATE = "not_a_date", gettext_lazy("not a date")
    IN_THE_FUTURE = "in_the_future", gettext_lazy("in the future")
    NOT_A_CHOICE = "not_a_choice", gettext_lazy("not one of the choices")
    NOT_TEXT = "not_text", gettext_lazy("not text")
    NOT_A_LIST = "not_a_list", gettext_lazy("not a list")
    NOT_AN_OBJECT = "not_an_object", gettext_lazy("not an object")
    TOO_MANY = "too_many", gettext_lazy("too many")
    UNKNOWN_CONTACT = "unknown_contact", gettext_lazy("unknown contact")
    INVALID_ADDRESS = "invalid_address", gettext_lazy("invalid e-mail or phone")
    UNKNOWN_FIELD = "unknown_field", gettext_lazy("unknown field")


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    rule: str
    message: str
    value: str = ""  # the value a warning is about (an e-mail left out), as given


class Refused(ValueError):
    def __init__(self, rule: str, message: str):
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(slots=True)
class CleanLine:
    sku: str
    quantity: Decimal
    amount: Decimal
    unit_amount: Decimal | None = None
    discount: Decimal = Decimal(0)
    category: str = ""
    is_return: bool = False


@dataclass(slots=True)
class CleanOrder:
    external_id: str
    occurred_at: dt.datetime
    total: Decimal
    channel: str = Order.Channel.IN_STORE
    contact_id: str = ""
    email: str = ""
    phone: str = ""
    lines: list[CleanLine] = field(default_factory=list)


def parse_decimal(value, *, decimal_comma: bool = False) -> Decimal:
    try:
        return decimals.parse_decimal(value, decimal_comma=decimal_comma)
    except decimals.NotADecimal as error:
        raise Refused(Rule.NOT_A_NUMBER, str(error)) from None


def parse_amount(value, decimal_comma: bool = False) -> Decimal:
    """An amount in the unit's currency, to the cent, of either sign (the caller checks the sign)."""
    amount = parse_decimal(value, decimal_comma=decimal_comma)
    if abs(amount) > MAX_AMOUNT:
        raise Refused(
            Rule.OUT_OF_RANGE,
            _("Must be between -%(max)s and %(max)s.") % {"max": f"{MAX_AMOUNT:,}"},
        )
    rounded = amount.quantize(CENT)
    if rounded != amount:
        if isinstance(value, float) and abs(rounded - amount) < Decimal("1e-9"):
            return rounded  # 0.1 + 0.2 from a till's float arithmetic is 0.30
        raise Refused(Rule.TOO_PRECISE, _("At most 2 decimals (cents)."))
    return rounded


def parse_quantity(value, decimal_comma: bool = False) -> Decimal:
    quantity = parse_decimal(value, decimal_comma=decimal_comma)
    if quantity == 0 or abs(quantity) > MAX_QUANTITY:
        raise Refused(
            Rule.OUT_OF_RANGE,
            _("Must be a quantity other than 0, at most %(max)s.") % {"max": "9,999,999.999"},
        )
    if quantity.quantize(Decimal("0.001")) != quantity:
        raise Refused(Rule.TOO_PRECISE, _("At most 3 decimals."))
    return quantity


def parse_time(value, now: dt.datetime | None = None) -> dt.datetime:
    """An order's time: ISO 8601 or a spreadsheet's date, in the network's time zone when
    it names none; at most an hour ahead of now."""
    if isinstance(value, dt.datetime):
        parsed: dt.datetime | None = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            parsed = None
            for fmt in DATE_FORMATS:
                try:
                    parsed = dt.datetime.strptime(text, fmt)  # noqa: DTZ007 (zone set below)
                    break
                except ValueError:
                    continue
    else:
        parsed = None
    if parsed is None:
        raise Refused(
            Rule.NOT_A_DATE,
            _("%(value)s is not a date (use YYYY-MM-DD HH:MM or DD/MM/YYYY HH:MM).")
            % {"value": str(value)[:40]},
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    if parsed > (now or timezone.now()) + CLOCK_SLACK:
        raise Refused(Rule.IN_THE_FUTURE, _("The order is dated in the future."))
    return parsed


def _is_object(value) -> bool:
    # A JSON object is a dict: the abstract Mapping check only for other mappings (it was a
    # tenth of a batch's cleaning).
    return type(value) is dict or isinstance(value, Mapping)


def _text(value, limit: int, required: bool = False) -> str:
    if type(value) is str:  # the common case first: a batch cleans ~25 values an order
        value = value.strip()
        if value and len(value) <= limit:
            return value
    elif value is None:
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)  # a till sending its SKU 12345 as a number means the text
    if not isinstance(value, str):
        raise Refused(Rule.NOT_TEXT, _("Must be text."))
    value = value.strip()
    if required and not value:
        raise Refused(Rule.REQUIRED, _("This field is required."))
    if len(value) > limit:
        raise Refused(
            Rule.TOO_LONG,
            _("At most %(max)s characters (this has %(length)s).")
            % {"max": limit, "length": len(value)},
        )
    return value


def buyer_text(value) -> str:
    """A buyer's e-mail or phone as given, as text (the services judge it; a value that is
    not text is shown as the JSON it was, and is no address)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


_TRUE = {"1", "true", "yes", "oui", "o", "y", "vrai", "x", "return", "retour"}
_FALSE = {"", "0", "false", "no", "non", "n", "faux"}
_FLAGS = frozenset(_TRUE | _FALSE)


def _flag(value) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, str) and (word := value.strip().lower()) in _FLAGS:
        return word in _TRUE
    raise Refused(Rule.NOT_A_CHOICE, _("Must be true or false."))


LINE_FIELDS = ("sku", "category", "quantity", "unit_amount", "amount", "discount", "is_return")
ORDER_FIELDS = (
    "order_id",
    "occurred_at",
    "total",
    "channel",
    "contact",
    "email",
    "phone",
    "lines",
)
_ORDER_KEYS = frozenset(ORDER_FIELDS)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def run(self, prefix: str, name: str, func, *args):
        """``func(*args)``, or None with the problem noted under ``prefix.name`` (the name is
        only built for a problem: a batch cleans tens of thousands of values)."""
        try:
            return func(*args)
        except Refused as refused:
            field = f"{prefix}.{name}" if prefix else name
            self.problems.append(Problem(field, refused.rule, refused.message))
            return None


def clean_line(
    raw, prefix: str, collect: _Collector, *, decimal_comma: bool = False
) -> CleanLine | None:
    if not _is_object(raw):
        collect.problems.append(Problem(prefix, Rule.NOT_AN_OBJECT, _("Must be a JSON object.")))
        return None
    before = len(collect.problems)
    run = collect.run
    get = raw.get
    sku = run(prefix, "sku", _text, get("sku"), 64, True)
    # An absent optional field is its default, with no call (a batch has 15,000 of them).
    value = get("category")
    category = "" if value is None else run(prefix, "category", _text, value, 120)
    value = get("is_return")
    is_return = False if value is None else run(prefix, "is_return", _flag, value)
    quantity: Decimal | None = Decimal(1)
    value = get("quantity")
    if value is not None and value != "":
        quantity = run(prefix, "quantity", parse_quantity, value, decimal_comma)
    amounts: dict[str, Decimal | None] = {}
    for name in ("unit_amount", "amount", "discount"):
        value = get(name)
        amounts[name] = (
            None
            if value is None or value == ""
            else run(prefix, name, parse_amount, value, decimal_comma)
        )
    unit_amount, amount, discount = amounts["unit_amount"], amounts["amount"], amounts["discount"]
    if quantity is None or len(collect.problems) > before:
        return None
    discount = discount or Decimal(0)
    if amount is None:
        if unit_amount is None:
            collect.problems.append(
                Problem(
                    f"{prefix}.amount", Rule.REQUIRED, _("Give the line's amount or unit price.")
                )
            )
            return None
        amount = (quantity * unit_amount - discount * (-1 if quantity < 0 else 1)).quantize(CENT)
    for name, value in (("unit_amount", unit_amount), ("discount", discount)):
        if value is not None and value < 0:
            collect.problems.append(
                Problem(
                    f"{prefix}.{name}",
                    Rule.NEGATIVE_OUTSIDE_RETURN,
                    _("Must not be negative (a return has a negative quantity and amount)."),
                )
            )
    if len(collect.problems) > before:  # the amount derived from them would repeat it
        return None
    if is_return:
        if quantity > 0 or amount > 0:
            collect.problems.append(
                Problem(
                    f"{prefix}.quantity" if quantity > 0 else f"{prefix}.amount",
                    Rule.RETURN_NOT_NEGATIVE,
                    _("A return line has a negative quantity and an amount of 0 or less."),
                )
            )
    else:
        for name, value in (("quantity", quantity), ("amount", amount)):
            if value < 0:
                collect.problems.append(
                    Problem(
                        f"{prefix}.{name}",
                        Rule.NEGATIVE_OUTSIDE_RETURN,
                        _("Negative only on a return line (set is_return)."),
                    )
                )
    if len(collect.problems) > before:
        return None
    return CleanLine(
        sku=sku,
        quantity=quantity,
        amount=amount,
        unit_amount=unit_amount,
        discount=discount,
        category=category or "",
        is_return=bool(is_return),
    )


def clean_order(
    raw, *, decimal_comma: bool = False, now: dt.datetime | None = None, strict: bool = True
) -> tuple[CleanOrder | None, list[Problem]]:
    """(the order, []) or (None, every problem found). ``strict``: unknown keys are refused
    (a misspelt ``totl`` must not pass as an order without a total)."""
    collect = _Collector()
    if not _is_object(raw):
        return None, [Problem("", Rule.NOT_AN_OBJECT, _("Must be a JSON object."))]
    if strict:
        for key in raw:
            if key not in _ORDER_KEYS:
                collect.problems.append(
                    Problem(str(key), Rule.UNKNOWN_FIELD, _("Unknown field: check its spelling."))
                )
    run = collect.run
    external_id = run("", "order_id", _text, raw.get("order_id"), 100, True)
    occurred_at = now or timezone.now()
    if raw.get("occurred_at") not in (None, ""):
        occurred_at = run("", "occurred_at", parse_time, raw.get("occurred_at"), now)
    channel = run("", "channel", _text, raw.get("channel"), 8) or Order.Channel.IN_STORE
    if channel not in CHANNELS:
        collect.problems.append(
            Problem(
                "channel",
                Rule.NOT_A_CHOICE,
                _("Must be one of: %(choices)s.") % {"choices": ", ".join(Order.Channel.values)},
            )
        )
    buyer = {
        "contact": run("", "contact", _text, raw.get("contact"), 36) or "",
        # Never a reason to refuse the sale: the services leave a bad one out, and say so.
        "email": buyer_text(raw.get("email")),
        "phone": buyer_text(raw.get("phone")),
    }
    total = None
    if raw.get("total") not in (None, ""):
        total = run("", "total", parse_amount, raw.get("total"), decimal_comma)
    lines: list[CleanLine] = []
    raw_lines = raw.get("lines")
    if raw_lines is not None:
        if not isinstance(raw_lines, list):
            collect.problems.append(Problem("lines", Rule.NOT_A_LIST, _("Must be a list.")))
        elif len(raw_lines) > MAX_LINES:
            collect.problems.append(
                Problem(
                    "lines",
                    Rule.TOO_MANY,
                    _("At most %(max)s lines per order.") % {"max": MAX_LINES},
                )
            )
        else:
            for index, raw_line in enumerate(raw_lines):
                line = clean_line(raw_line, f"lines[{index}]", collect, decimal_comma=decimal_comma)
                if line is not None:
                    lines.append(line)
    if collect.problems:
        return None, collect.problems
    if total is None:
        if not lines:
            return None, [Problem("total", Rule.REQUIRED, _("Give the total or the lines."))]
        total = sum((line.amount for line in lines), Decimal(0))
        if abs(total) > MAX_AMOUNT:
            return None, [
                Problem(
                    "total", Rule.OUT_OF_RANGE, _("The lines add up beyond the largest amount.")
                )
            ]
    if total < 0 and not any(line.is_return for line in lines):
        return None, [
            Problem(
                "total",
                Rule.NEGATIVE_OUTSIDE_RETURN,
                _("A negative total is only for an order with return lines."),
            )
        ]
    return (
        CleanOrder(
            external_id=external_id,
            occurred_at=occurred_at,
            total=total,
            channel=channel,
            contact_id=buyer["contact"],
            email=buyer["email"],
            phone=buyer["phone"],
            lines=lines,
        ),
        [],
    )
