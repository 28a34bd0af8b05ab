"""What RFM does when orders are written (``commerce.order_hooks``): after the writer's
transaction commits, the worker updates those buyers' scores (``scoring.refresh_buyers``)."""

from __future__ import annotations

from django.db import transaction


def orders_written(contact_ids: list[int]) -> None:
    from .tasks import rfm_refresh_buyers

    buyers = list(contact_ids)
    transaction.on_commit(lambda: rfm_refresh_buyers(buyers))
