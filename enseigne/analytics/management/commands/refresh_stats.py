import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from enseigne.analytics import rollups


class Command(BaseCommand):
    help = "Bring the dashboards' daily rollups up to date (the worker does it every five minutes)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--from",
            dest="since",
            metavar="YYYY-MM-DD",
            help="rebuild from this day on (e.g. after changing prices or importing old events)",
        )

    def handle(self, *args, since=None, **options):
        if since:
            try:
                day = dt.date.fromisoformat(since)
            except ValueError as error:
                raise CommandError(f"--from: {since!r} is not a date like 2026-01-31.") from error
            rollups.touch(rollups.local_midnight(day))
        done = rollups.refresh()
        self.stdout.write(
            f"Rebuilt {done['days']} day(s): {done['rows']} rows; {done['units']} unit bases."
        )
