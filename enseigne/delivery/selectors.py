"""Scoped reads of the Outbox (captured messages)."""

from __future__ import annotations

import email
import email.policy

from django.db.models import QuerySet
from django.http import Http404

from enseigne.delivery.models import OutboxMessage
from enseigne.network.access import access_for, path_filter
from enseigne.network.models import User


def outbox_for_user(user: User) -> QuerySet[OutboxMessage]:
    """HQ sees every captured message of its network; a unit, those it sent."""
    return OutboxMessage.objects.filter(path_filter(access_for(user).paths)).defer("raw")


def get_outbox_message_for_user(user: User, pk: int) -> OutboxMessage:
    message = OutboxMessage.objects.filter(path_filter(access_for(user).paths), pk=pk).first()
    if message is None:
        raise Http404("No such message.")
    return message


def raw_headers(message: OutboxMessage) -> str:
    if message.channel != "email":
        return ""
    return message.raw.split("\r\n\r\n", 1)[0]


def html_body(message: OutboxMessage) -> str | None:
    if message.channel != "email":
        return None
    parsed = email.message_from_string(message.raw, policy=email.policy.default)
    part = parsed.get_body(("html",))
    return part.get_content() if part is not None else None
