"""Filters of the journey's report: a difference and its 95 % interval, in words."""

from __future__ import annotations

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from enseigne.lib.stats import Difference

register = template.Library()


def _signed(value: float, digits: int) -> str:
    # A typographic minus: "−0.4" reads as a negative number, "-0.4" as a hyphen.
    text = number_format(abs(value), digits, force_grouping=True)
    if round(value, digits) == 0:
        return text
    return f"{'+' if value > 0 else '−'}{text}"


@register.filter
def points(difference: Difference | None) -> str:
    """A difference of two rates in percentage points with its interval:
    "+2.1 points (95 % interval: −0.4 to +4.6)"."""
    if difference is None:
        return "—"
    return _("%(value)s points (95 %% interval: %(low)s to %(high)s)") % {
        "value": _signed(100 * difference.value, 1),
        "low": _signed(100 * difference.low, 1),
        "high": _signed(100 * difference.high, 1),
    }


@register.filter
def euros(difference: Difference | None) -> str:
    """A difference of two amounts per person with its interval: "+1.20 € (95 % interval:
    −0.50 to +2.90 €)"."""
    if difference is None:
        return "—"
    return _("%(value)s € (95 %% interval: %(low)s to %(high)s €)") % {
        "value": _signed(difference.value, 2),
        "low": _signed(difference.low, 2),
        "high": _signed(difference.high, 2),
    }


@register.filter
def verdict(difference: Difference | None) -> str:
    """What the interval says, in words."""
    if difference is None:
        return ""
    return {
        "higher": _("higher with the journey's messages"),
        "lower": _("lower with the journey's messages"),
    }.get(difference.verdict, _("no measured difference (the interval includes 0)"))


@register.filter
def per_person(group) -> float | None:
    """A group's revenue per entrant (None when it has nobody)."""
    return group.mean.value
