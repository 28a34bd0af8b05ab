"""The port through which the purchase summary and later apps learn of orders written, in
the writer's transaction.

RFM (and whatever else follows the buyers' purchases) comes after commerce; rather than a
signal, the writers call ``orders_written`` with the buyers whose orders they just wrote,
and settings ``ENSEIGNE_ORDER_HOOKS`` name who is told (dotted paths to callables taking
the buyers' contact ids), as ``contacts.records`` does for records. Commerce's own purchase
summary (``summaries``) is kept here first, before the hooks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from enseigne.commerce import summaries
from enseigne.contacts.models import Contact

OrderHook = Callable[[list[int]], object]


@cache
def _hooks() -> tuple[OrderHook, ...]:
    return tuple(import_string(path) for path in getattr(settings, "ENSEIGNE_ORDER_HOOKS", ()))


def orders_written(
    contact_ids: Iterable[int | None], *, order_ids: Sequence[int] | None = None
) -> None:
    """Keep the purchase summary and tell every hook whose orders were written (call inside
    the writer's transaction; orders without a buyer are left out). ``order_ids``: the
    orders just written, when the writer knows them: the summary then reads those orders'
    lines only, not their buyers' whole history."""
    buyers = sorted({c for c in contact_ids if c is not None})
    if not buyers:
        return
    # A record with an order is an existing customer: the "existing customer" condition and
    # the soft opt-in read the flag (one statement; records already flagged are not written).
    Contact.objects.filter(pk__any=buyers, is_customer=False).update(is_customer=True)
    if order_ids is None:
        summaries.refresh(buyers)
    else:
        summaries.orders_added(order_ids)
    for hook in _hooks():
        hook(buyers)
