"""A local SMTP server that keeps every message as a .eml file (the embedded demo's outbox)."""

import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management.base import BaseCommand


class _Store:
    def __init__(self, folder: Path):
        self.folder = folder

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        path = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        return "250 Message accepted"


class Command(BaseCommand):
    help = "Run the local SMTP sink; mail lands in ENSEIGNE_DATA_DIR/outbox."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8025)

    def handle(self, *args, **options):
        folder = Path(settings.DATA_DIR) / "outbox"
        folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(_Store(folder), hostname="127.0.0.1", port=options["port"])
        controller.start()
        self.stdout.write(f"SMTP sink on 127.0.0.1:{options['port']}, storing mail in {folder}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            controller.stop()
