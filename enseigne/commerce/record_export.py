"""A record's orders and their lines, for its GDPR export (contacts.records.export_parts)."""

from __future__ import annotations

from enseigne.contacts.models import Contact

from .models import Order


def _when(value) -> str | None:
    return value.isoformat() if value else None


def orders(contact: Contact) -> dict:
    """Every order the store recorded for the record, with its lines, oldest first."""
    found = (
        Order.objects.filter(contact=contact)
        .prefetch_related("lines")
        .order_by("occurred_at", "id")
    )
    return {
        "orders": [
            {
                "order_id": order.external_id,
                "occurred_at": _when(order.occurred_at),
                "total": str(order.total),
                "channel": order.channel,
                "source": order.source,
                "lines": [
                    {
                        "sku": line.sku,
                        "category": line.category,
                        "quantity": str(line.quantity),
                        "unit_price": None if line.unit_amount is None else str(line.unit_amount),
                        "amount": str(line.amount),
                        "discount": str(line.discount),
                        "return": line.is_return,
                    }
                    for line in sorted(order.lines.all(), key=lambda line: line.position)
                ],
            }
            for order in found
        ]
    }
