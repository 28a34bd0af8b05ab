"""The preferred channel, e-mail or SMS, from engagement (issue 21), as segment conditions
(``contacts.segment_choices``):

- ``preferred_channel``: the record's own messages;
- ``person_preferred_channel`` (HQ only): the messages of all the person's records added up
  (a record not linked yet is its own person). Declared after identity's provider: it is a
  person's condition already, and "any record of the person prefers e-mail" would not be the
  person's preference (``per_person`` is off for the record's).

The rule, from what Enseigne records per channel today. Over the last N days (the rule's
days), a message a contact was sent (a ``sent`` ledger row) is *engaged* when a human click
in it, or a purchase attributed to it (last click, the ``converted`` event), happened in the
window; machine clicks never count. The preferred channel is the channel with more engaged
messages; a tie — nothing engaged on either — is no preference, which "is not" selects.
Opens are left out: they are recorded only where the customer accepted per-person open
tracking, and are mostly privacy proxies and scanners. Links in SMS are not tracked yet, so
today only e-mail messages can be engaged and "SMS" selects nobody; SMS clicks will count
when they are recorded, with no change here.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from functools import reduce

from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.campaigns.models import Recipient
from enseigne.contacts.models import Channel
from enseigne.contacts.segment_choices import ChoiceCondition
from enseigne.contacts.segments import ExtraField
from enseigne.delivery.models import Event
from enseigne.identity.models import RecordLink
from enseigne.identity.segment_fields import is_hq
from enseigne.network.models import User

ENGAGING = (Event.Kind.CLICKED, Event.Kind.CONVERTED)
PERSON = "contact__identity_link__person"


def engaged(days: int | None) -> QuerySet[Recipient]:
    """The sent ledger rows with a human click or an attributed purchase in the last
    ``days`` days."""
    since = timezone.now() - dt.timedelta(days=days or 0)
    events = Event.objects.filter(
        kind__in=ENGAGING, machine=False, recipient_id__isnull=False, occurred_at__gte=since
    )
    return Recipient.objects.filter(
        status=Recipient.Status.SENT,
        contact__isnull=False,
        channel__in=Channel.values,
        pk__in=events.values("recipient_id"),
    )


def preferring(rows: QuerySet[Recipient], by: str, channel: str) -> QuerySet:
    """Per ``by`` (a contact or a person), kept when ``channel`` has more of ``rows`` than
    the other channels together."""
    return (
        rows.values(by)
        .annotate(
            mine=Count("pk", filter=Q(channel=channel)),
            others=Count("pk", filter=~Q(channel=channel)),
        )
        .filter(mine__gt=F("others"))
    )


def _record(keys: list[str], days: int | None) -> Q:
    # The preferring contacts are computed once, uncorrelated: "is" is a semi-join, "is not" a
    # hashed NOT IN (the grouped set is estimated small, so it is always hashed). A
    # per-contact aggregate correlated to the contact ran once per contact (60 s for 100,000
    # contacts) and an EXISTS over it was planned as a nested-loop anti-join on the grouped
    # set's low estimate (minutes): docs/benchmarks.md, "Preferred channel".
    rows = engaged(days)
    return reduce(
        operator.or_, (Q(pk__in=preferring(rows, "contact", c).values("contact")) for c in keys)
    )


def _person(keys: list[str], days: int | None) -> Q:
    rows = engaged(days)
    linked = rows.filter(**{f"{PERSON}__isnull": False})
    alone = rows.filter(**{f"{PERSON}__isnull": True})
    return reduce(
        operator.or_,
        (
            Q(
                pk__in=RecordLink.objects.filter(
                    person_id__in=preferring(linked, PERSON, channel).values(PERSON)
                ).values("contact")
            )
            | Q(pk__in=preferring(alone, "contact", channel).values("contact"))
            for channel in keys
        ),
    )


def _choices(user: User) -> list[list[str]]:
    return [[key, str(label)] for key, label in Channel.choices]


CHANNELS = ChoiceCondition(
    choices=_choices,
    refusal=lambda where: _("%(where)s: choose e-mail or SMS.") % {"where": where},
    with_days=True,
    help=gettext_lazy(
        "The channel with more messages engaged in the last N days: a message counts when the "
        "customer clicked in it or a purchase was attributed to it (machine clicks and opens "
        "never count). A tie, or nothing, is no preference. Links in SMS are not tracked yet, "
        "so for now only e-mail can be preferred."
    ),
)


RECORD_LABEL = gettext_lazy("Preferred channel in the store")
PERSON_LABEL = gettext_lazy("Preferred channel in the network (person)")


def fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [CHANNELS.field("preferred_channel", RECORD_LABEL, _record, per_person=False)]


def network_fields(before: Sequence[ExtraField]) -> list[ExtraField]:
    return [CHANNELS.field("person_preferred_channel", PERSON_LABEL, _person, available=is_hq)]
