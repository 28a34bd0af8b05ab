"""Conversions over the JSON API: a till or e-shop reports each order once (retries are harmless)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.responses import Status

from enseigne.api.bounds import fits
from enseigne.api.paging import PageParams, page_of, paginate
from enseigne.commerce.cleaning import MAX_LINES
from enseigne.network.access import path_filter
from enseigne.network.capabilities import Capability
from enseigne.network.selectors import get_node_for_user, get_unit_for_user
from enseigne.tracking.conversions import conversion_record
from enseigne.tracking.models import Conversion
from enseigne.tracking.selectors import conversions_for_user

router = Router(tags=["conversions"])


class ConversionIn(Schema):
    order_id: str = fits(Conversion, "order_id")
    unit: uuid.UUID
    amount: Decimal
    occurred_at: dt.datetime | None = None
    contact: uuid.UUID | None = None
    # Not held to a contact's lengths: an address that is not one never refuses the sale
    # (it is left out and said in ``warnings``); 1,000 characters bound the request.
    email: str | None = Field(None, max_length=1000)
    phone: str | None = Field(None, max_length=1000)
    # The order's lines (see POST /orders/batch for their fields); kept with the order.
    lines: list[dict] | None = Field(None, max_length=MAX_LINES)
    channel: Literal["in_store", "online"] | None = None


class ConversionOut(Schema):
    order_id: str
    unit: uuid.UUID
    amount: Decimal
    occurred_at: dt.datetime
    contact: uuid.UUID | None
    attributed: bool

    @staticmethod
    def of(conversion: Conversion) -> ConversionOut:
        return ConversionOut(
            order_id=conversion.order_id,
            unit=conversion.unit.public_id,
            amount=conversion.amount,
            occurred_at=conversion.occurred_at,
            contact=conversion.contact.public_id if conversion.contact else None,
            attributed=conversion.campaign_id is not None,
        )


class BuyerWarningOut(Schema):
    field: str
    rule: str
    value: str
    message: str


class ConversionRecordedOut(ConversionOut):
    duplicate: bool
    # The order is recorded all the same: its e-mail or phone was left out (not valid), or no
    # contact of the store has it; the same words as the orders batch and the sales import.
    warnings: list[BuyerWarningOut] = []


@router.get("/conversions", response=page_of(ConversionOut))
def list_conversions(
    request: HttpRequest,
    page: Query[PageParams],
    unit: uuid.UUID | None = None,
    since: dt.datetime | None = None,
):
    """Orders of your units, newest first; ``since`` keeps those at or after that time."""
    conversions = conversions_for_user(request.user)
    if unit:
        node = get_node_for_user(request.user, unit)
        conversions = conversions.filter(path_filter([node.path]))
    if since:
        conversions = conversions.filter(occurred_at__gte=since)
    return paginate(conversions, page, ConversionOut.of)


@router.post("/conversions", response={200: ConversionRecordedOut, 201: ConversionRecordedOut})
def record_conversion(request: HttpRequest, payload: ConversionIn):
    """Record an order. The same ``order_id`` again answers 200 with the order as first recorded."""
    unit = get_unit_for_user(request.user, payload.unit, Capability.RECORD_CONVERSIONS)
    warnings: list = []
    conversion, created = conversion_record(
        actor=request.user,
        unit=unit,
        order_id=payload.order_id,
        amount=payload.amount,
        occurred_at=payload.occurred_at,
        contact_id=payload.contact,
        email=payload.email,
        phone=payload.phone,
        lines=payload.lines,
        channel=payload.channel,
        warnings=warnings,
    )
    out = ConversionRecordedOut(
        **ConversionOut.of(conversion).dict(),
        duplicate=not created,
        warnings=[
            BuyerWarningOut(field=w.field, rule=str(w.rule), value=w.value, message=w.message)
            for w in warnings
        ],
    )
    return Status(201 if created else 200, out)
