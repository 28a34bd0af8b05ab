"""Recompute each store's monthly revenue per category (``commerce.revenue``) from every order."""

import time

from django.core.management.base import BaseCommand
from django.db import transaction

from enseigne.commerce.revenue import rebuild


class Command(BaseCommand):
    help = (
        "Recompute each store's monthly net revenue per category, which the store dashboard "
        "compares with the median store, from every order. Idempotent; the order writers keep "
        "it up to date afterwards (run it after loading orders outside the product's writers)."
    )

    def handle(self, *args, **options):
        start = time.perf_counter()
        with transaction.atomic():
            rows = rebuild()
        self.stdout.write(f"{rows} category rows in {time.perf_counter() - start:.1f} s")
