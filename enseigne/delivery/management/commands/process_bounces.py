"""``enseigne process_bounces``: read bounce reports and complaints, act on them.

- ``enseigne process_bounces < message`` reads one message on stdin: a Postfix ``pipe``
  transport for the bounce address can run it (``argv=… process_bounces --envelope-to
  ${recipient}``);
- ``enseigne process_bounces FILE…`` reads saved messages;
- ``enseigne process_bounces --maildir DIR`` reads a Maildir and removes what it read
  (``ENSEIGNE_BOUNCE_MAILDIR`` is read every minute by the worker).
"""

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from enseigne.delivery.bounces import parse, process_maildir, record
from enseigne.lib.signing import webhook_key


class Command(BaseCommand):
    help = "Read bounce reports (DSN), complaints (ARF) and automatic replies; suppress hard bounces and complainers."

    def add_arguments(self, parser):
        parser.add_argument(
            "files", nargs="*", help="Saved messages (default: one message on stdin)."
        )
        parser.add_argument(
            "--maildir",
            nargs="?",
            const="",
            default=None,
            help="A Maildir to read and empty (without a value: ENSEIGNE_BOUNCE_MAILDIR).",
        )
        parser.add_argument(
            "--envelope-to", default="", help="The address the message was delivered to."
        )
        parser.add_argument(
            "--print-url",
            action="store_true",
            help="Print the secret URL an MTA can POST raw reports to, and stop.",
        )

    def handle(self, *args, **options):
        if options["print_url"]:
            key = webhook_key("bounces")
            self.stdout.write(
                f"{settings.BASE_URL.rstrip('/')}{reverse('inbound_bounce', args=[key])}"
            )
            return
        if options["maildir"] is not None:
            path = options["maildir"] or settings.BOUNCE_MAILDIR
            if not path or not Path(path, "new").is_dir():
                raise CommandError(f"{path} is not a Maildir (no 'new' folder in it).")
            self.stdout.write(f"{process_maildir(path)} message(s) read from {path}.")
            return
        sources = [(name, Path(name).read_bytes()) for name in options["files"]] or [
            ("stdin", sys.stdin.buffer.read())
        ]
        for name, raw in sources:
            report = parse(raw, envelope_to=options["envelope_to"])
            if report is None:
                self.stdout.write(
                    f"{name}: not a bounce (a delivery notice or a 'not spam' report), ignored."
                )
                continue
            recorded = record(report, source="mailbox")
            row = (
                f"ledger row {report.recipient_id}"
                if report.recipient_id
                else "no ledger row of ours"
            )
            state = "recorded" if recorded else "already recorded"
            self.stdout.write(f"{name}: {report.kind} {report.status} ({row}), {state}.")
