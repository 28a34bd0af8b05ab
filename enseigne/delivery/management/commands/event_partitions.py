"""Create the monthly partitions of the events table ahead of time (PostgreSQL, as the schema owner).

Run it monthly from cron, or let ``enseigne migrate`` do it (it keeps last month to three
months ahead). Events of a month with no partition are never refused: they wait in the
default partition and move into their month when this creates it.
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from enseigne.delivery import partitions


class Command(BaseCommand):
    help = "Create the events table's monthly partitions (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--since", help="first month, YYYY-MM (default: last month)")
        parser.add_argument(
            "--ahead", type=int, default=3, help="months after this one (default 3)"
        )

    def handle(self, *args, since=None, ahead=3, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("SQLite keeps one events table: nothing to do.")
            return
        today = dt.date.today()
        made = partitions.ensure_around(today, months_ahead=ahead)
        if since:
            try:
                first = dt.date.fromisoformat(f"{since}-01")
            except ValueError as error:
                raise CommandError(
                    f"--since must be a month written YYYY-MM, got {since!r}."
                ) from error
            made += partitions.ensure(first, today)
        for name in made:
            self.stdout.write(f"created {name}")
        self.stdout.write(
            f"{len(partitions.existing()) - 1} monthly partitions, plus the default one."
        )
