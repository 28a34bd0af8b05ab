"""Conversions over the JSON API: a till or e-shop reports each order once (retries are harmless)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status

from enseigne.network.capabilities import Capability
from enseigne.network.selectors import get_unit_for_user
from enseigne.tracking.conversions import conversion_record

router = Router(tags=["conversions"])


class ConversionIn(Schema):
    order_id: str
    unit: uuid.UUID
    amount: Decimal
    occurred_at: dt.datetime | None = None
    contact: uuid.UUID | None = None
    email: str | None = None
    phone: str | None = None


class ConversionOut(Schema):
    order_id: str
    unit: uuid.UUID
    amount: Decimal
    occurred_at: dt.datetime
    contact: uuid.UUID | None
    attributed: bool
    duplicate: bool


@router.post("/conversions", response={200: ConversionOut, 201: ConversionOut})
def record_conversion(request: HttpRequest, payload: ConversionIn):
    """Record an order. The same ``order_id`` again answers 200 with the order as first recorded."""
    unit = get_unit_for_user(request.user, payload.unit, Capability.RECORD_CONVERSIONS)
    conversion, created = conversion_record(
        actor=request.user,
        unit=unit,
        order_id=payload.order_id,
        amount=payload.amount,
        occurred_at=payload.occurred_at,
        contact_id=payload.contact,
        email=payload.email,
        phone=payload.phone,
    )
    out = ConversionOut(
        order_id=conversion.order_id,
        unit=conversion.unit.public_id,
        amount=conversion.amount,
        occurred_at=conversion.occurred_at,
        contact=conversion.contact.public_id if conversion.contact else None,
        attributed=conversion.campaign_id is not None,
        duplicate=not created,
    )
    return Status(201 if created else 200, out)
