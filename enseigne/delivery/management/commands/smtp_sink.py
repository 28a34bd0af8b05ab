"""The embedded demo's SMTP sink: every message is kept for the Outbox page, nothing leaves.

The sending unit is found from the ledger through the Message-ID, so each unit sees
only its own messages in the Outbox.
"""

import email.header
import logging
import queue
import re
import threading
import time

from aiosmtpd.controller import Controller
from django.core.management.base import BaseCommand
from django.db import OperationalError

from enseigne.campaigns.models import Recipient
from enseigne.delivery.messages import recipient_of
from enseigne.delivery.models import OutboxMessage
from enseigne.lib.rowsecurity import ALL, db_scope

MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>\r\n]+>)", re.M | re.I)
SUBJECT = re.compile(rb"^Subject: *(.*(?:\r\n[ \t].*)*)", re.M | re.I)
FROM = re.compile(rb"^From: *(.*)", re.M | re.I)


def _header(pattern: re.Pattern, head: bytes, default: str = "") -> str:
    found = pattern.search(head)
    if not found:
        return default
    folded = found.group(1).decode(errors="replace").replace("\r\n", "")
    return str(email.header.make_header(email.header.decode_header(folded)))


def keep(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> None:
    head = raw.split(b"\r\n\r\n", 1)[0]
    mid = _header(MESSAGE_ID, head)
    with db_scope(ALL):
        recipient_id = recipient_of(mid)
        unit_path = ""
        if recipient_id is not None:
            unit_path = (
                Recipient.objects.filter(pk=recipient_id)
                .values_list("unit_path", flat=True)
                .first()
                or ""
            )
        OutboxMessage.objects.create(
            channel="email",
            unit_path=unit_path,
            message_id=mid[:200],
            sender=_header(FROM, head, mail_from)[:300],
            recipient=", ".join(rcpt_tos)[:300],
            subject=_header(SUBJECT, head)[:300],
            raw=raw.decode("utf-8", errors="replace"),
        )


class _Store:
    """Answers at once and writes in the background: on SQLite the sending worker holds the
    write lock while it waits for this reply, so writing before replying would deadlock."""

    def __init__(self):
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._write, daemon=True, name="outbox-writer").start()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        self.queue.put(
            (
                envelope.original_content or envelope.content,
                envelope.mail_from,
                list(envelope.rcpt_tos),
            )
        )
        return "250 Message accepted"

    def _write(self) -> None:
        while True:
            item = self.queue.get()
            for attempt in range(30):
                try:
                    keep(*item)
                    break
                except OperationalError:  # the database is busy: try again shortly
                    time.sleep(0.2 * (attempt + 1))


class Command(BaseCommand):
    help = "Run the local SMTP sink; messages are kept for the Outbox page."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8025)

    def handle(self, *args, **options):
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        controller = Controller(_Store(), hostname="127.0.0.1", port=options["port"])
        controller.start()
        self.stdout.write(f"SMTP sink on 127.0.0.1:{options['port']}; see the Outbox page.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            controller.stop()
