import os
import shutil
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server (gunicorn, WSGI)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("ENSEIGNE_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "2")))

    def handle(self, *args, **options):
        gunicorn = shutil.which("gunicorn") or os.path.join(os.path.dirname(sys.executable), "gunicorn")
        os.execv(gunicorn, [  # noqa: S606 (fixed argv, no shell)
            gunicorn, "config.wsgi:application",
            "--bind", f"{options['host']}:{options['port']}",
            "--workers", str(options["workers"]),
            "--access-logfile", "-", "--timeout", "60",
        ])
