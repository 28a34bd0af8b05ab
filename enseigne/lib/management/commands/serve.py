import json
import os
import shutil
import sys
import tempfile

from django.core.management.base import BaseCommand

# The access line without granian's own clock (local time, "+0100"): the time comes from
# the formatter, in UTC like every other line; the query string is left out (it can hold a
# signed token).
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


def log_config() -> dict:
    """Granian's own loggers (server and access) through the project's one-line UTC format."""
    line = {"()": "enseigne.lib.logs.OneLineUtc"}
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"generic": line, "access": line},
        "handlers": {
            "console": {**stream, "formatter": "generic"},
            "access": {**stream, "formatter": "access"},
        },
        "loggers": {
            "_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
            "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def log_config_file() -> str:
    handle, path = tempfile.mkstemp(prefix="enseigne-granian-log-", suffix=".json")
    with os.fdopen(handle, "w") as out:
        json.dump(log_config(), out)
    return path


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
                "--access-log-fmt",
                ACCESS_FORMAT,
                "--log-config",
                log_config_file(),
            ],
        )
