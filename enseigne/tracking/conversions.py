"""Recording sales (conversions): one per order id, credited to the buyer's last click.

Tills and e-shops report an order with its unit, amount and time, and whatever identifies
the buyer (the contact's id, e-mail or phone, matched within that unit). The same order
reported twice — an API retry, the till's batch after the API — is recorded once. The order is
credited to the campaign of the buyer's last counted click within the network's
attribution window (other models are computed when reports are read, see
analytics/attribution.py), and a ``converted`` event enters the log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from enseigne.campaigns.models import Recipient
from enseigne.campaigns.selectors import policy_for
from enseigne.commerce.models import Order
from enseigne.commerce.services import order_record
from enseigne.contacts.models import Contact
from enseigne.delivery import events
from enseigne.delivery.models import Event
from enseigne.network.access import access_for
from enseigne.network.capabilities import Capability
from enseigne.network.models import OrgNode, User
from enseigne.tracking.models import Conversion

MAX_AMOUNT = Decimal("9999999999.99")
ORDER_SOURCE: dict[str, str] = {
    Conversion.Source.API: Order.Source.API,
    Conversion.Source.CSV: Order.Source.CSV,
    Conversion.Source.DEMO: Order.Source.DEMO,
}


@dataclass(frozen=True)
class Touch:
    at: dt.datetime
    campaign_id: int
    channel: str
    recipient_id: int


def touches(
    contact_ids: Iterable[int], start: dt.datetime, end: dt.datetime
) -> dict[int, list[Touch]]:
    """Each contact's counted clicks between ``start`` and ``end``, oldest first."""
    rows = Recipient.objects.filter(contact_id__in=list(contact_ids)).values_list(
        "id", "contact_id"
    )
    contact_of = dict(rows)
    out: dict[int, list[Touch]] = defaultdict(list)
    if not contact_of:
        return out
    clicks = (
        Event.objects.filter(
            kind=Event.Kind.CLICKED,
            machine=False,
            recipient_id__in=list(contact_of),
            occurred_at__gte=start,
            occurred_at__lte=end,
        )
        .values_list("occurred_at", "campaign_id", "channel", "recipient_id")
        .order_by("occurred_at", "id")
    )
    for at, campaign_id, channel, recipient_id in clicks:
        out[contact_of[recipient_id]].append(Touch(at, campaign_id, channel, recipient_id))
    return out


def _find_contact(unit: OrgNode, *, contact_id=None) -> Contact | None:
    """The contact a conversion's id names (refused with a reason when the unit has none);
    an e-mail or phone is the order writer's to read (``commerce.services``: one rule)."""
    contacts = Contact.objects.filter(unit=unit)
    if contact_id:
        try:
            public_id = uuid.UUID(str(contact_id))
        except ValueError:
            raise ValidationError(
                {"contact": _("%(value)s is not a contact id.") % {"value": contact_id}}
            ) from None
        found = contacts.filter(public_id=public_id).first()
        if found is None:
            raise ValidationError(
                {"contact": _("No contact with this id in unit %(unit)s.") % {"unit": unit.name}}
            )
        return found
    return None


def clean_amount(value) -> Decimal:
    try:
        amount = Decimal(
            str(value).strip().replace(",", ".").replace("\u202f", "").replace(" ", "")
        )
    except (InvalidOperation, ValueError):
        raise ValidationError(
            {"amount": _("%(value)s is not an amount.") % {"value": value}}
        ) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ValidationError({"amount": _("The amount must be between 0 and 9,999,999,999.99.")})
    return amount.quantize(Decimal("0.01"))


def conversion_record(
    *,
    actor: User | None,
    unit: OrgNode,
    order_id: str,
    amount,
    occurred_at: dt.datetime | None = None,
    contact_id=None,
    email: str | None = None,
    phone: str | None = None,
    source: str = Conversion.Source.API,
    lines: list | None = None,
    channel: str | None = None,
    warnings: list | None = None,
) -> tuple[Conversion, bool]:
    """Record one order; returns (conversion, created). A known order id returns the first record.

    The order itself (with ``lines``, when the till sends them) is recorded in the same
    transaction (``commerce``); an order the unit already has (from a till's batch) is
    linked, not recorded twice. ``warnings`` (a list, when given) receives the order writer's
    warnings: an e-mail or phone left out, or one no contact of the unit has."""
    if actor is not None and not access_for(actor).can(Capability.RECORD_CONVERSIONS, unit):
        raise PermissionDenied
    order_id = (order_id or "").strip()
    if not order_id or len(order_id) > 100:
        raise ValidationError({"order_id": _("An order id of 1 to 100 characters is required.")})
    amount = clean_amount(amount)
    now = timezone.now()
    occurred_at = occurred_at or now
    if timezone.is_naive(occurred_at):
        occurred_at = timezone.make_aware(occurred_at)
    if occurred_at > now + dt.timedelta(hours=1):
        raise ValidationError({"occurred_at": _("The order is dated in the future.")})
    # Order ids are the unit's own (its till's numbering): looked up in this unit only, so an
    # answer never depends on another unit's orders.
    existing = Conversion.objects.filter(unit=unit, order_id=order_id).first()
    if existing is not None:
        return existing, False
    contact = _find_contact(unit, contact_id=contact_id)
    purchase = {
        "order_id": order_id,
        "occurred_at": occurred_at,
        "total": amount,
        "channel": channel or "",
        "contact": str(contact.public_id) if contact is not None else "",
        # Without a contact id, the order writer finds the buyer by e-mail or phone, and an
        # address that is not valid costs the sale its buyer, never the sale (``warnings``).
        "email": "" if contact is not None else email,
        "phone": "" if contact is not None else phone,
        "lines": lines,
    }
    try:
        with transaction.atomic():
            recorded = order_record(
                actor=None, unit=unit, order=purchase, source=ORDER_SOURCE[source]
            )
            if recorded.problems:
                raise ValidationError(
                    {problem.field: problem.message for problem in recorded.problems}
                )
            if warnings is not None:
                warnings.extend(recorded.warnings)
            if contact is None and recorded.buyer_pk is not None:
                contact = Contact.objects.get(pk=recorded.buyer_pk)
            last = None
            if contact is not None:
                window = dt.timedelta(days=policy_for(unit).attribution_window_days)
                clicks = touches([contact.pk], occurred_at - window, occurred_at)
                last = (clicks.get(contact.pk) or [None])[-1]
            conversion = Conversion.objects.create(
                purchase_id=recorded.order_pk,
                order_id=order_id,
                unit=unit,
                unit_path=unit.path,
                contact=contact,
                amount=amount,
                occurred_at=occurred_at,
                campaign_id=last.campaign_id if last else None,
                channel=last.channel if last else "",
                source=source,
            )
            events.write(
                [
                    events.row(
                        occurred_at=occurred_at,
                        kind=Event.Kind.CONVERTED,
                        unit_id=unit.pk,
                        unit_path=unit.path,
                        channel=last.channel if last else "",
                        campaign_id=last.campaign_id if last else None,
                        recipient_id=last.recipient_id if last else None,
                        amount=amount,
                    )
                ]
            )
    except IntegrityError:  # the same unit's order id, recorded meanwhile by another request
        return Conversion.objects.get(unit=unit, order_id=order_id), False
    return conversion, True
