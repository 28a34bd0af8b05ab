"""Recompute the purchase summaries (``commerce.summaries``) from every order."""

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from enseigne.commerce.summaries import rebuild
from enseigne.lib.rowsecurity import ALL, db_scope


class Command(BaseCommand):
    help = (
        "Recompute the per-buyer purchase summary (latest sold line per category) that "
        "segment conditions read, from every order. Idempotent; the order writers keep it "
        "up to date afterwards (run it after loading orders outside the product's writers)."
    )

    def handle(self, *args, **options):
        start = time.perf_counter()
        with db_scope(ALL), transaction.atomic():
            rows = rebuild()
        self.stdout.write(f"{rows} summary rows in {time.perf_counter() - start:.1f} s")
