"""A catalogue import's chunk linking the earlier unknown-SKU sales lines to its products.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_link_bench \
      DATABASE_APP_ROLE=enseigne_app ENSEIGNE_DATA_DIR=/tmp/ens-link-bench \
      .venv/bin/python bench/catalogue_link.py --orders 60000

The database is dropped and created again. A store gets 5,000 contacts and ``--orders``
orders of 3 lines, 1 line in 20 with an SKU of 2,000 the library does not know yet (a sales
import's report flags each). HQ then adds 500 of those SKUs (one catalogue chunk), and
``commerce.catalogue_importer.unknown_skus_link`` runs for them: the lines' update, the
buyers' purchase summaries, the report's flags. Each run is rolled back, so every run sees
the same data; the table gives the whole call and, apart, the summaries' refresh
(``summaries.refresh``, called as it is) and the lines' UPDATE. Baselines, same run, same
data: the lines' UPDATE written with a correlated subquery per line for the product (the
first version), and the whole call without the two partial indexes the link reads
(``orderline_unknown_sku``, ``orderimportproblem_flagged``; tables analysed again).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid
from decimal import Decimal

from _setup import bench_network, django_ready, recreate_database, table

LINES = 3
CHUNK = 500


class Rollback(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    database = os.environ["DATABASE_URL"]
    recreate_database(database)
    django_ready()

    from django.db import connection, transaction
    from django.db.models import Case, F, OuterRef, Subquery, TextField, Value, When
    from django.db.models.fields.json import KT
    from django.db.models.functions import Cast, Coalesce
    from django.utils import timezone

    from enseigne.brand.models import Asset
    from enseigne.commerce import catalogue_importer
    from enseigne.commerce.catalogue_importer import unknown_skus_link
    from enseigne.commerce.models import Order, OrderImport, OrderImportProblem, OrderLine
    from enseigne.contacts.models import Contact
    from enseigne.lib.bulk import bulk_insert
    from enseigne.lib.rowsecurity import ALL, db_scope

    rng = random.Random(7)
    with db_scope(ALL):
        root, stores = bench_network("lk", 2)
        store = stores[0]
        Contact.objects.bulk_create(
            Contact(unit=store, unit_path=store.path, email=f"c{i}@example.com")
            for i in range(5000)
        )
        buyers = list(Contact.objects.filter(unit=store).values_list("pk", flat=True))
        report = OrderImport.objects.create(unit=store, unit_path=store.path, file_name="v.csv")
        now = timezone.now()
        flags = []
        for offset in range(0, args.orders, 5000):
            count = min(5000, args.orders - offset)
            with transaction.atomic():
                ids = bulk_insert(
                    Order,
                    ("public_id", "unit", "unit_path", "external_id", "contact", "occurred_at",
                     "total", "channel", "source", "created_at"),
                    [(uuid.uuid4(), store.pk, store.path, f"T-{offset + i}", rng.choice(buyers),
                      now, Decimal(30), "in_store", "csv", now) for i in range(count)],
                    returning=("id",),
                )  # fmt: skip
                lines = []
                for (pk,) in ids:
                    for position in range(LINES):
                        unknown = rng.random() < 0.05
                        sku = f"NEW-{rng.randrange(2000):05d}" if unknown else "SKU-1"
                        lines.append((pk, store.path, position, sku, None, unknown, "",
                                      Decimal(1), None, Decimal(10), Decimal(0), False))  # fmt: skip
                        if unknown:
                            flags.append(OrderImportProblem(
                                order_import=report, unit_path=store.path, kind="flagged",
                                row_number=len(flags) + 2, column="sku", value=sku,
                                rule="unknown_sku", reason="x"))  # fmt: skip
                bulk_insert(
                    OrderLine,
                    ("order", "unit_path", "position", "sku", "product", "unknown_sku",
                     "category", "quantity", "unit_amount", "amount", "discount", "is_return"),
                    lines,
                )  # fmt: skip
        OrderImportProblem.objects.bulk_create(flags, batch_size=5000)
        skus = [f"NEW-{i:05d}" for i in range(CHUNK)]
        Asset.objects.bulk_create(
            Asset(kind=Asset.Kind.PRODUCT, name=sku, shared_path=root.path,
                  data={"sku": sku, "name": sku, "category": "Mailles"})
            for sku in skus
        )  # fmt: skip
    owner = database.split("?")[0]

    def as_owner(*statements: str) -> None:
        import psycopg

        with psycopg.connect(owner, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    refresh = catalogue_importer.summaries.refresh
    parts: dict[str, list[float]] = {"refresh": [], "update": []}

    def timed_refresh(ids):
        start = time.perf_counter()
        refresh(ids)
        parts["refresh"].append(time.perf_counter() - start)

    catalogue_importer.summaries.refresh = timed_refresh

    def rolled_back(work) -> tuple[float, int]:
        seconds, result = [], 0
        for _ in range(args.runs):
            start = time.perf_counter()
            try:
                with db_scope(ALL), transaction.atomic():
                    result = work()
                    seconds.append(time.perf_counter() - start)
                    raise Rollback
            except Rollback:
                pass
        return statistics.median(seconds), result

    def runs() -> tuple[float, int]:
        return rolled_back(lambda: unknown_skus_link(root, skus))

    lines = OrderLine.objects.filter(
        unknown_sku=True, sku__in=skus, unit_path__startswith=root.path
    )

    def case_update() -> int:  # the shipped statement, alone
        products = {
            sku: (pk, "Mailles")
            for sku, pk in Asset.objects.filter(kind="product", unit_path="")
            .annotate(s=Cast(KT("data__sku"), TextField()))
            .values_list("s", "pk")
        }
        return lines.update(
            product_id=Case(*(When(sku=k, then=Value(pk)) for k, (pk, _c) in products.items())),
            category=Case(
                *(When(category="", sku=k, then=Value(c)) for k, (_pk, c) in products.items()),
                default=F("category"),
            ),
            unknown_sku=False,
        )

    def correlated_update() -> int:  # the first version: a subquery per line
        product = (
            Asset.objects.filter(kind="product", unit_path="", shared_path=root.path)
            .annotate(s=Cast(KT("data__sku"), TextField()))
            .filter(s=OuterRef("sku"))
            .order_by("pk")
        )
        category = product.annotate(c=Cast(KT("data__category"), TextField())).values("c")[:1]
        return lines.update(
            product_id=Subquery(product.values("pk")[:1]),
            category=Case(
                When(
                    category="",
                    then=Coalesce(
                        Subquery(category),
                        Value(""),
                        output_field=OrderLine._meta.get_field("category"),
                    ),
                ),
                default=F("category"),
            ),
            unknown_sku=False,
        )

    as_owner("ANALYZE")
    indexed, linked = runs()
    refresh_ms = statistics.median(parts["refresh"]) * 1000
    case_seconds, _n = rolled_back(case_update)
    correlated_seconds, _n = rolled_back(correlated_update)
    connection.close()
    as_owner(
        "DROP INDEX orderline_unknown_sku",
        "DROP INDEX orderimportproblem_flagged",
        "ANALYZE",
    )
    bare, linked_bare = runs()
    table(
        f"Linking one catalogue chunk ({CHUNK} SKUs) to {linked:,} earlier lines "
        f"({args.orders * LINES:,} lines, {len(flags):,} flags; median of {args.runs})",
        [
            ("variant", "lines linked", "ms"),
            ("the whole call, as shipped", f"{linked:,}", f"{indexed * 1000:.1f}"),
            ("  of which summaries.refresh", "", f"{refresh_ms:.1f}"),
            ("  the lines' UPDATE alone (CASE)", "", f"{case_seconds * 1000:.1f}"),
            ("baseline: UPDATE by correlated subquery", "", f"{correlated_seconds * 1000:.1f}"),
            ("baseline: whole call, no partial indexes", f"{linked_bare:,}", f"{bare * 1000:.1f}"),
        ],
    )


if __name__ == "__main__":
    main()
