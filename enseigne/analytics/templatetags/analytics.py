"""Template filters for figures: rates with their interval, ROI, money."""

from __future__ import annotations

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from enseigne.lib.stats import Rate

register = template.Library()


@register.filter
def pct(value, digits: int = 1) -> str:
    """A Rate or a fraction as a percentage ("4.1 %"); "—" when there is nothing to divide."""
    fraction = value.value if isinstance(value, Rate) else value
    if fraction is None:
        return "—"
    return f"{number_format(100 * fraction, int(digits))}\u202f%"


@register.filter
def interval(rate: Rate) -> str:
    """The 95 % Wilson interval of a Rate ("3.2–5.0 %"), for the tooltip."""
    bounds = rate.interval if isinstance(rate, Rate) else None
    if bounds is None:
        return ""
    low, high = bounds
    return _("95%% interval: %(low)s–%(high)s %%") % {
        "low": number_format(100 * low, 1),
        "high": number_format(100 * high, 1),
    }


@register.filter
def ratio(value) -> str:
    """ROI, (revenue − cost) ÷ cost, as a signed percentage ("+240 %"); "—" when nothing was spent."""
    if value is None:
        return "—"
    return f"{'+' if value >= 0 else ''}{number_format(100 * value, 0, force_grouping=True)}\u202f%"


@register.filter
def money(value) -> str:
    if value is None:
        return "—"
    return f"{number_format(value, 2, force_grouping=True)}\u202f€"


@register.filter
def verdict_class(verdict: str) -> str:
    return {"better": "text-bg-success", "worse": "text-bg-danger"}.get(verdict, "text-bg-light")


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "") if mapping else ""
