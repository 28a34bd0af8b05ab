"""Orders over the JSON API: a till sends its day (or its last minutes) in batches."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils.translation import gettext as _
from ninja import Router, Schema
from ninja.decorators import decorate_view

from enseigne.commerce.models import Order
from enseigne.commerce.services import MAX_BATCH, Status, orders_record
from enseigne.lib.bulk import collector_paused
from enseigne.network.access import AuthenticatedRequest
from enseigne.network.capabilities import Capability
from enseigne.network.selectors import get_unit_for_user

router = Router(tags=["orders"])


class OrderBatchIn(Schema):
    """``orders``: up to 1,000 objects, each ``{"order_id", "occurred_at", "total", "channel"
    ("in_store" | "online"), "contact" | "email" | "phone", "lines": [{"sku", "category",
    "quantity", "unit_amount", "amount", "discount", "is_return"}]}``. Amounts are decimal
    numbers (JSON numbers or strings such as "12.50"), negative only on return lines."""

    unit: uuid.UUID
    orders: list[Any]


class ProblemOut(Schema):
    field: str
    rule: str
    message: str


class WarningOut(Schema):
    field: str
    rule: str
    value: str
    message: str


class OrderResultOut(Schema):
    index: int
    order_id: str
    status: str
    errors: list[ProblemOut]
    # The order is recorded all the same: its e-mail or phone was left out (not valid), or no
    # contact of the store has it; the same words as the sales import's report.
    warnings: list[WarningOut]
    unknown_skus: list[str]


class OrderBatchOut(Schema):
    created: int
    duplicates: int
    refused: int
    results: list[OrderResultOut]


@router.post("/orders/batch", response={200: OrderBatchOut})
# From the body's parsing to the answer: the batch's thousands of dicts never set off a
# collection of the whole process (see collector_paused).
@decorate_view(collector_paused())
def record_orders(request: AuthenticatedRequest, payload: OrderBatchIn):
    """Record up to 1,000 orders of one unit. Each order answers ``created``, ``duplicate``
    (the unit has this ``order_id`` already: sending a batch again is harmless) or
    ``refused`` with its errors (field, rule, message); the others are recorded all the same.
    An e-mail or phone that is not valid never refuses the sale: the order is recorded without
    it and ``warnings`` says which field and value were left out and why (as does one that no
    contact of the store has).
    A line whose SKU the library does not know is kept and listed in ``unknown_skus``."""
    unit = get_unit_for_user(request.user, payload.unit, Capability.RECORD_CONVERSIONS)
    if len(payload.orders) > MAX_BATCH:
        raise ValidationError(
            {
                "orders": _(
                    "At most %(max)s orders per call (this one has %(count)s): split the batch."
                )
                % {"max": f"{MAX_BATCH:,}", "count": f"{len(payload.orders):,}"}
            }
        )
    outcomes = orders_record(
        actor=request.user, unit=unit, orders=payload.orders, source=Order.Source.API
    )
    # Built as plain data and sent as is: validating a thousand results against the schema
    # again cost a sixth of the call (bench/orders_ingest.py); the schema still documents it.
    body = {
        "created": sum(o.status == Status.CREATED for o in outcomes),
        "duplicates": sum(o.status == Status.DUPLICATE for o in outcomes),
        "refused": sum(o.status == Status.REFUSED for o in outcomes),
        "results": [
            {
                "index": o.index,
                "order_id": o.order_id,
                "status": o.status,
                "errors": [
                    {"field": p.field, "rule": str(p.rule), "message": p.message}
                    for p in o.problems
                ],
                "warnings": [
                    {"field": w.field, "rule": str(w.rule), "value": w.value, "message": w.message}
                    for w in o.warnings
                ],
                "unknown_skus": o.unknown_skus,
            }
            for o in outcomes
        ],
    }
    return JsonResponse(body)
