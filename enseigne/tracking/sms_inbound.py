"""Replies to SMS: a STOP withdraws SMS consent within the declared scope, and is confirmed.

The provider posts each reply to the inbound webhook. A reply whose first word is a stop
keyword (STOP, ARRET/ARRÊT, STOPP, DESABONNER, UNSUBSCRIBE…, in any case and with or
without accents) withdraws the number's SMS consent — in the unit that sent the last SMS
to that number, or in every unit of the brand, as HQ declared in the sending rules (a
number that no unit wrote to is stopped brand-wide). The number is put on the
suppression list in the same transaction, so the next hand-off already skips it, and a
confirmation SMS states the scope. Anything else is ignored (a person answering "OK"
does not unsubscribe).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from enseigne.campaigns.models import Recipient, StopScope
from enseigne.campaigns.selectors import policy_for
from enseigne.contacts.models import Channel, ConsentEvent, Contact, Suppression
from enseigne.contacts.services import consent_withdraw_all, suppress_brand_wide
from enseigne.contacts.validation import FieldError, clean_phone
from enseigne.delivery import events
from enseigne.delivery.channels import sms_transport
from enseigne.delivery.channels.base import SmsOut
from enseigne.delivery.models import Event
from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.selectors import network_root

STOP_WORDS = {
    "STOP",
    "STOPP",
    "ARRET",
    "ARRETER",
    "ARRETEZ",
    "DESABONNER",
    "DESINSCRIRE",
    "DESINSCRIPTION",
    "UNSUBSCRIBE",
    "STOPALL",
    "END",
    "CANCEL",
    "QUIT",
}
_WORD = re.compile(r"[A-Z]+")


def is_stop(text: str) -> bool:
    plain = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().upper()
    words = _WORD.findall(plain)
    return bool(words) and (words[0] in STOP_WORDS or "".join(words[:2]) in STOP_WORDS)


@dataclass(frozen=True)
class StopResult:
    phone: str
    scope: str
    unit_name: str
    withdrawn: int  # contacts whose SMS consent this reply withdrew
    confirmation: str


def inbound(*, sender: str, text: str, reference: str = "") -> StopResult | None:
    """Act on one reply; None when it is not a STOP (or not a number)."""
    if not is_stop(text):
        return None
    root = network_root()
    if root is None:
        return None
    try:
        phone = clean_phone(sender, root.network.default_country)
    except FieldError:
        return None
    with transaction.atomic(), db_scope(ALL):
        policy = policy_for(root)
        last = (
            Recipient.objects.filter(
                contact__phone=phone, channel=Channel.SMS, status=Recipient.Status.SENT
            )
            .select_related("unit")
            .order_by("-sent_at", "-id")
            .first()
        )
        scope = policy.sms_stop_scope if last is not None else StopScope.BRAND
        contacts = Contact.objects.select_for_update().filter(phone=phone)
        if scope == StopScope.UNIT:
            contacts = contacts.filter(unit=last.unit)
        withdrawn = consent_withdraw_all(
            contacts,
            channel=Channel.SMS,
            source=ConsentEvent.Source.SMS_STOP,
            source_ref=f"sms:{reference}"[:128],
        )
        if scope == StopScope.BRAND:
            suppress_brand_wide(
                channel=Channel.SMS, address=phone, reason=Suppression.Reason.UNSUBSCRIBE
            )
        if last is not None and withdrawn:
            events.write([events.of_recipient(last, Event.Kind.UNSUBSCRIBED, timezone.now())])
        unit_name = last.unit.name if scope == StopScope.UNIT else root.name
        language = next((c.language for c in contacts if c.language), "") or "fr"
        with translation.override(language):
            if scope == StopScope.UNIT:
                confirmation = _("%(brand)s: you will no longer receive SMS from %(unit)s.") % {
                    "brand": root.name[:11],
                    "unit": unit_name,
                }
            else:
                confirmation = _(
                    "%(brand)s: you will no longer receive SMS from %(brand_name)s (every store)."
                ) % {"brand": root.name[:11], "brand_name": root.name}
        result = StopResult(
            phone=phone,
            scope=scope,
            unit_name=unit_name,
            withdrawn=withdrawn,
            confirmation=confirmation,
        )
        transaction.on_commit(lambda: _confirm(root.name[:11], result))
    return result


def _confirm(sender: str, result: StopResult) -> None:
    """The confirmation SMS (a service message: no STOP mention, no sending window)."""
    transport = sms_transport()
    try:
        transport.send(
            [
                SmsOut(
                    recipient_id=0,
                    sender=sender,
                    to=result.phone,
                    text=result.confirmation,
                    message_id=f"stop-{result.phone}-{int(timezone.now().timestamp())}",
                )
            ]
        )
    finally:
        transport.close()
