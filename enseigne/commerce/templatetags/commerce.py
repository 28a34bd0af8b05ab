"""The purchases on the contact card (contacts comes before commerce and imports nothing of
it: its template asks this tag). The page has already authorized the record; the read also
goes through the request's row-level scope."""

from __future__ import annotations

from dataclasses import dataclass

from django import template

from enseigne.commerce.models import Order

register = template.Library()
SHOWN = 10


@dataclass
class Purchases:
    orders: list[Order]
    count: int


@register.simple_tag
def record_purchases(contact) -> Purchases:
    """The record's latest orders (with their lines) and how many it has in all."""
    orders = Order.objects.filter(contact_id=contact.pk)
    latest = list(orders.prefetch_related("lines").order_by("-occurred_at", "-id")[:SHOWN])
    count = len(latest) if len(latest) < SHOWN else orders.count()
    return Purchases(orders=latest, count=count)
