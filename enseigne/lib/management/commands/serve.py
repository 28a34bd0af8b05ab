import os
import shutil
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run the web server (granian, WSGI; clicks and opens take the fast path in config/wsgi.py)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ENSEIGNE_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2"))
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("WEB_THREADS", "1")),
            help="request threads per worker (more overlap database waits; 1 = one at a time)",
        )

    def handle(self, *args, **options):
        granian = shutil.which("granian") or os.path.join(
            os.path.dirname(sys.executable), "granian"
        )
        os.execv(  # noqa: S606 (fixed argv, no shell)
            granian,
            [
                granian,
                "--interface",
                "wsgi",
                "config.wsgi:application",
                "--host",
                options["host"],
                "--port",
                str(options["port"]),
                "--workers",
                str(options["workers"]),
                "--blocking-threads",
                str(options["threads"]),
                "--respawn-failed-workers",
                "--access-log",
            ],
        )
