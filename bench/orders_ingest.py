"""Purchase ingest through the API: orders/s of POST /api/v1/orders/batch, 3 lines an order.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_orders_bench \
      DATABASE_APP_ROLE=enseigne_app ENSEIGNE_DATA_DIR=/tmp/ens-orders-bench \
      .venv/bin/python bench/orders_ingest.py --orders 50000 --processes 2

The database is dropped and created again. A unit gets 20,000 contacts and a catalogue of
2,000 products; each order names its buyer (contact id for half, e-mail for a third, none
for the rest) and has 3 lines, 1 in 20 with an SKU the library does not know, 1 in 50 a
return. Requests go through Django's whole stack in-process (middleware, bearer token,
the row-level-security scope, JSON, validation, the service, COPY), no network socket.
``--processes N`` runs N such clients at once (each its own connection), like N gunicorn
workers on N cores.

Baselines of the same run, on the same data shape:
- the bare write: the same orders and lines inserted by ``lib.bulk.bulk_insert`` (COPY
  through a staging table), no HTTP, no validation, no lookups: the floor for any API;
- the conversions endpoint, one order per call (how a till reported sales before).
Then the batch sent again (every order a duplicate), which tills' retries cost.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import time
import uuid
from decimal import Decimal

from _setup import django_ready, recreate_database, table

LINES = 3
BATCH = 1000


def make_orders(
    count: int, start: int, contacts: list[tuple[str, str]], skus: list[str], seed: int
):
    rng = random.Random(seed)
    orders = []
    for number in range(start, start + count):
        lines = []
        for position in range(LINES):
            sku = rng.choice(skus) if rng.random() > 0.05 else f"UNKNOWN-{rng.randrange(500)}"
            quantity = rng.randint(1, 3)
            price = Decimal(rng.randrange(199, 15000)) / 100
            if position == 2 and number % 50 == 0:  # an exchange: one line returned
                lines.append({"sku": sku, "quantity": -1, "amount": str(-price), "is_return": True})
            else:
                lines.append(
                    {"sku": sku, "quantity": quantity, "unit_amount": str(price), "discount": "0"}
                )
        order = {
            "order_id": f"T{number:09d}",
            "occurred_at": f"2026-11-{1 + number % 28:02d}T{9 + number % 10:02d}:15:00+01:00",
            "channel": "in_store" if number % 4 else "online",
            "lines": lines,
        }
        public_id, email = contacts[number % len(contacts)]
        if number % 2 == 0:
            order["contact"] = public_id
        elif number % 3 == 0:
            order["email"] = email
        orders.append(order)
    return orders


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _client_run(args) -> tuple[int, float, int, float]:
    """One client process: post its batches; (orders created, seconds, duplicates, CPU
    seconds of this process: Django's side of the work, whatever else loads the machine)."""
    unit_public_id, key, orders = args
    from django.db import connections
    from django.test import Client

    connections.close_all()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    created = duplicates = 0
    cpu = _cpu()
    start = time.perf_counter()
    for offset in range(0, len(orders), BATCH):
        body = json.dumps({"unit": unit_public_id, "orders": orders[offset : offset + BATCH]})
        response = client.post("/api/v1/orders/batch", data=body, content_type="application/json")
        if response.status_code != 200:
            raise SystemExit(f"batch refused: {response.status_code} {response.content[:300]!r}")
        answer = response.json()
        created += answer["created"]
        duplicates += answer["duplicates"]
        if answer["refused"]:
            raise SystemExit(f"orders refused: {answer['results'][:3]}")
    return created, time.perf_counter() - start, duplicates, _cpu() - cpu


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--conversions", type=int, default=1000, help="orders for that baseline")
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL", "")
    recreate_database(database)
    django_ready()
    from django.db import connection, connections, transaction

    from enseigne.brand.models import Asset
    from enseigne.commerce.models import Order, OrderLine
    from enseigne.commerce.services import products_for
    from enseigne.contacts.models import Contact
    from enseigne.lib.bulk import bulk_insert
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from enseigne.network.tokens import token_create

    with db_scope(ALL):
        roles = network.builtin_roles_ensure()
        root = network.network_create(
            actor=None, name="Bench", code="bench", legal_name="Bench", sending_domain="example.com"
        )
        unit = network.node_create(actor=None, parent=root, kind="unit", name="Till", code="till")
        other = network.node_create(actor=None, parent=root, kind="unit", name="Base", code="base")
        user = network.user_create(actor=None, email="till@example.com", password="x" * 20)
        network.membership_grant(actor=None, user=user, node=unit, role=roles["unit_manager"])
        _token, key = token_create(user=user)
        Contact.objects.bulk_create(
            (
                Contact(unit=unit, unit_path=unit.path, email=f"client.{i}@orange.fr")
                for i in range(20_000)
            ),
            batch_size=2000,
        )
        Asset.objects.bulk_create(
            Asset(
                kind=Asset.Kind.PRODUCT,
                name=f"Produit {i}",
                shared_path=root.path,
                data={"sku": f"SKU-{i:05d}", "name": f"Produit {i}", "category": f"C{i % 40}"},
            )
            for i in range(2000)
        )
        contacts = [
            (str(p), e)
            for p, e in Contact.objects.filter(unit=unit).values_list("public_id", "email")
        ]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    skus = [f"SKU-{i:05d}" for i in range(2000)]
    total = args.orders - args.orders % (BATCH * args.processes) or BATCH * args.processes

    # Baseline 1: the bare write of the same rows (another unit, so no conflicts).
    bare_orders = make_orders(total, 10**8, contacts, skus, seed=1)
    start = time.perf_counter()
    with db_scope(ALL):
        products = products_for(other, skus)
        for offset in range(0, total, BATCH):
            chunk = bare_orders[offset : offset + BATCH]
            with transaction.atomic():
                ids = bulk_insert(
                    Order,
                    ("public_id", "unit", "unit_path", "external_id", "contact", "occurred_at",
                     "total", "channel", "source", "created_at"),
                    [
                        (uuid.uuid4(), other.pk, other.path, o["order_id"], None, o["occurred_at"],
                         Decimal("10"), o["channel"], "api", time_now())
                        for o in chunk
                    ],
                    returning=("id",),
                )  # fmt: skip
                bulk_insert(
                    OrderLine,
                    ("order", "unit_path", "position", "sku", "product", "unknown_sku", "category",
                     "quantity", "unit_amount", "amount", "discount", "is_return"),
                    [
                        (pk, other.path, p, line["sku"],
                         products[line["sku"]].pk if line["sku"] in products else None,
                         line["sku"] not in products, "", Decimal(line["quantity"]), None,
                         Decimal(line.get("amount") or line["unit_amount"]), Decimal(0),
                         bool(line.get("is_return")))
                        for (pk,), o in zip(ids, chunk, strict=True)
                        for p, line in enumerate(o["lines"])
                    ],
                )  # fmt: skip
    bare_seconds = time.perf_counter() - start

    # The product: the batch endpoint, N clients at once.
    orders = make_orders(total, 0, contacts, skus, seed=2)
    share = total // args.processes
    work = [
        (str(unit.public_id), key, orders[i * share : (i + 1) * share])
        for i in range(args.processes)
    ]
    connections.close_all()
    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    with context.Pool(args.processes) as pool:
        results = pool.map(_client_run, work)
    batch_seconds = time.perf_counter() - start
    created = sum(r[0] for r in results)
    # The same orders again: all duplicates.
    start = time.perf_counter()
    with context.Pool(args.processes) as pool:
        again = pool.map(_client_run, work)
    again_seconds = time.perf_counter() - start

    # Baseline 2: the conversions endpoint, one order per call, one client.
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    single = make_orders(args.conversions, 5 * 10**8, contacts, skus, seed=3)
    start = time.perf_counter()
    for order in single:
        payload = {
            "order_id": order["order_id"],
            "unit": str(unit.public_id),
            "amount": "10.00",
            "lines": order["lines"],
            **({"contact": order["contact"]} if "contact" in order else {}),
        }
        response = client.post(
            "/api/v1/conversions", data=json.dumps(payload), content_type="application/json"
        )
        assert response.status_code == 201, response.content[:300]
    conversion_seconds = time.perf_counter() - start

    with db_scope(ALL):
        stored = Order.objects.filter(unit=unit).count()
        lines = OrderLine.objects.filter(order__unit=unit).count()
    cpu_first = sum(r[3] for r in results) / total * 1000
    cpu_again = sum(r[3] for r in again) / total * 1000
    rows = [("measure", "orders", "seconds", "orders/s", "Django CPU ms / 1,000 orders")]
    rows += [
        ("baseline: bare COPY insert, no API", f"{total:,}", f"{bare_seconds:.2f}",
         f"{total / bare_seconds:,.0f}", ""),
        (f"batch API, {args.processes} client(s), 1,000/call", f"{created:,}",
         f"{batch_seconds:.2f}", f"{created / batch_seconds:,.0f}", f"{cpu_first:,.0f}"),
        ("same batches again (all duplicates)", f"{sum(r[2] for r in again):,}",
         f"{again_seconds:.2f}", f"{total / again_seconds:,.0f}", f"{cpu_again:,.0f}"),
        ("baseline: conversions endpoint, 1/call", f"{len(single):,}",
         f"{conversion_seconds:.2f}", f"{len(single) / conversion_seconds:,.0f}", ""),
    ]  # fmt: skip
    table(
        f"Order ingest ({connection.vendor}, {LINES} lines/order, {os.cpu_count()} CPUs; "
        f"stored {stored:,} orders, {lines:,} lines)",
        rows,
    )
    return 0


def time_now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    raise SystemExit(main())
