"""The port through which later apps learn of orders written, in the writer's transaction.

RFM (and whatever else follows the buyers' purchases) comes after commerce; rather than a
signal, the writers call ``orders_written`` with the buyers whose orders they just wrote,
and settings ``ENSEIGNE_ORDER_HOOKS`` name who is told (dotted paths to callables taking
the buyers' contact ids), as ``contacts.records`` does for records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

OrderHook = Callable[[list[int]], object]


@cache
def _hooks() -> tuple[OrderHook, ...]:
    return tuple(import_string(path) for path in getattr(settings, "ENSEIGNE_ORDER_HOOKS", ()))


def orders_written(contact_ids: Iterable[int | None]) -> None:
    """Tell every hook whose orders were written (call inside the writer's transaction;
    orders without a buyer are left out)."""
    buyers = sorted({c for c in contact_ids if c is not None})
    if buyers:
        for hook in _hooks():
            hook(buyers)
