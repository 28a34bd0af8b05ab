"""``enseigne demo``: seed Maison Lumière (idempotent) and run web, worker and SMTP sink."""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections

from enseigne.demo import seed
from enseigne.lib.dbstats import analyze
from enseigne.lib.rowsecurity import ALL, db_scope, set_role_switch


class Command(BaseCommand):
    help = "Create the demo network (idempotent) and start everything embedded."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="Delete all data and seed again.")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--contacts", type=int, default=20_000)
        parser.add_argument("--no-serve", action="store_true", help="Only seed; start nothing.")

    def handle(self, *args, **options):
        # Every absolute address (pictures, click redirects, unsubscribe links and the
        # List-Unsubscribe header) names the port the demo answers on, from the seed on.
        settings.BASE_URL = base_url(options["port"], os.environ)
        set_role_switch(False)
        call_command("migrate", interactive=False, verbosity=0)
        if options["reset"]:
            # Wiping the database is the owner's job: the app role may not delete the
            # append-only ledgers (consent, audit).
            with db_scope(ALL):
                seed.reset()
        connections.close_all()
        set_role_switch(True)
        seeded = False
        with db_scope(ALL):
            if seed.demo_exists():
                self.stdout.write("The demo network already exists (use --reset to start over).")
            else:
                self.stdout.write(f"Seeding Maison Lumière with {options['contacts']:,} contacts…")
                summary = seed.seed(contacts_total=options["contacts"])
                self.stdout.write(
                    f"Created {summary['units']} units, {summary['contacts']:,} contacts."
                )
                seeded = True
        connections.close_all()
        if seeded:
            # The planner's statistics, now rather than when autovacuum wakes up: without
            # them the first pages plan on an empty database.
            analyze()
        self._print_logins(options["port"])
        if options["no_serve"]:
            return
        self._run_processes(options["port"])

    def _print_logins(self, port: int) -> None:
        self.stdout.write(self.style.SUCCESS(f"\nEnseigne is at {base_url(port, os.environ)}/"))
        self.stdout.write(f"Every demo login uses the password: {seed.PASSWORD}")
        for email, _first, _last, role, _node in seed.DEMO_USERS:
            self.stdout.write(f"  {email:40} {role}")

    def _run_processes(self, port: int) -> None:
        base = [sys.executable, "-m", "enseigne.cli"]
        sink_port = free_port()
        env = demo_environment(port, sink_port, os.environ)
        self.stdout.write(
            f"Mail sink on 127.0.0.1:{sink_port}; links point at {env['ENSEIGNE_BASE_URL']}"
        )
        children = {
            "SMTP sink": subprocess.Popen(  # noqa: S603
                [*base, "smtp_sink", "--port", str(sink_port)], env=env
            ),
            "worker": subprocess.Popen([*base, "worker"], env=env),  # noqa: S603
            "web server": subprocess.Popen([*base, "serve", "--port", str(port)], env=env),  # noqa: S603
        }
        self.stdout.write("Web, worker and SMTP sink are running. Press Ctrl+C to stop.")
        # Stopped by a process manager or a closed terminal rather than Ctrl+C: leave
        # through the same clean-up, so no child is left running (holding the ports).
        for number in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, _stop)
        try:
            while all(child.poll() is None for child in children.values()):
                time.sleep(1)
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(
                        f"The {name} stopped (exit code {child.returncode}); stopping the others."
                    )
        except KeyboardInterrupt:
            pass
        finally:
            stop_children(list(children.values()))


def base_url(port: int, environ) -> str:
    """The demo's public address: ``ENSEIGNE_BASE_URL`` when set, else this port's."""
    return environ.get("ENSEIGNE_BASE_URL") or f"http://127.0.0.1:{port}"


def free_port() -> int:
    """A TCP port nothing listens on now (the mail sink's: two demos run side by side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def demo_environment(port: int, sink_port: int, environ) -> dict[str, str]:
    """The children's environment: the web port in every absolute address, the worker's
    mail to this demo's own sink (an ``EMAIL_URL`` set by hand is kept)."""
    env = dict(environ)
    env["ENSEIGNE_BASE_URL"] = base_url(port, environ)
    env.setdefault("EMAIL_URL", f"smtp://127.0.0.1:{sink_port}")
    return env


def _stop(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt  # the same way out as Ctrl+C


def stop_children(children: list[subprocess.Popen], timeout: float = 10) -> None:
    """SIGTERM every child still running, then wait; kill any that outlives ``timeout``."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
