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


def _backend_cpu(pid: int | None) -> float:
    """CPU seconds of a PostgreSQL backend on this machine (from /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_run(args) -> tuple[int, float, int, float, float]:
    """One client process: post its batches; (orders created, seconds, duplicates, CPU
    seconds of this process — Django's side — and of its PostgreSQL backend): CPU time is
    what the work costs whatever else loads the machine."""
    unit_public_id, key, orders, barrier = args
    from django.db import connections
    from django.test import Client

    connections.close_all()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    created = duplicates = 0
    backend = None
    if connections["default"].vendor == "postgresql":
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
    # Warm up outside the measure: the first request imports the URL map and the views.
    warm = json.dumps({"unit": unit_public_id, "orders": []})
    client.post("/api/v1/orders/batch", data=warm, content_type="application/json")
    barrier.wait()  # every client starts at once: their times overlap
    cpu, db_cpu = _cpu(), _backend_cpu(backend)
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
    return (
        created,
        time.perf_counter() - start,
        duplicates,
        _cpu() - cpu,
        _backend_cpu(backend) - db_cpu,
    )


def _worker(args, queue) -> None:
    queue.put(_client_run(args))


def _clients(context, work) -> list[tuple]:
    """Run each client in its own process, started together after their warm-up."""
    barrier, queue = context.Barrier(len(work)), context.Queue()
    processes = [context.Process(target=_worker, args=((*w, barrier), queue)) for w in work]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    return results


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
    # Timed inside each client from the common start to its last answer (no fork, no warm-up).
    results = _clients(context, work)
    batch_seconds = max(r[1] for r in results)
    created = sum(r[0] for r in results)
    # The same orders again: all duplicates.
    again = _clients(context, work)
    again_seconds = max(r[1] for r in again)

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

    def cpu_ms(runs, index):  # CPU milliseconds per 1,000 orders
        return sum(r[index] for r in runs) / total * 1_000_000

    cpu_first, cpu_again = cpu_ms(results, 3), cpu_ms(again, 3)
    db_first, db_again = cpu_ms(results, 4), cpu_ms(again, 4)
    # What 2 free cores would do: both sides' CPU per order, shared by 2.
    ideal = 2 * 1_000_000 / (cpu_first + db_first) if cpu_first + db_first else 0
    rows = [
        (
            "measure",
            "orders",
            "seconds",
            "orders/s",
            "CPU ms/1,000 orders: Django + PostgreSQL",
        )
    ]
    rows += [
        ("baseline: bare COPY insert, no API", f"{total:,}", f"{bare_seconds:.2f}",
         f"{total / bare_seconds:,.0f}", ""),
        (f"batch API, {args.processes} client(s), 1,000/call", f"{created:,}",
         f"{batch_seconds:.2f}", f"{created / batch_seconds:,.0f}", f"{cpu_first:,.0f} + {db_first:,.0f}"),
        ("same batches again (all duplicates)", f"{sum(r[2] for r in again):,}",
         f"{again_seconds:.2f}", f"{total / again_seconds:,.0f}", f"{cpu_again:,.0f} + {db_again:,.0f}"),
        ("baseline: conversions endpoint, 1/call", f"{len(single):,}",
         f"{conversion_seconds:.2f}", f"{len(single) / conversion_seconds:,.0f}", ""),
    ]  # fmt: skip
    table(
        f"Order ingest ({connection.vendor}, {LINES} lines/order, {os.cpu_count()} CPUs; "
        f"stored {stored:,} orders, {lines:,} lines)",
        rows,
    )
    print(
        f"\nFrom the CPU per order: 2 unloaded cores would take about {ideal:,.0f} orders/s "
        "through the batch API (Django and PostgreSQL sharing them)."
    )
    return 0


def time_now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    raise SystemExit(main())
