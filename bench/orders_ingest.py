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

RFM's refresh of the buyers (queued by the order hook at commit) is counted, two ways:
- the product: a real Huey worker process (``enseigne worker --workers 1``, SQLite queue in
  the data dir) runs beside the clients and coalesces the batches' refreshes; the table gives
  the ingest rate, the time until every buyer is scored, and the CPU per 1,000 orders of the
  clients, the worker and each one's PostgreSQL backend (the 2-core budget is their sum);
- the baseline: Huey in immediate mode, one refresh per batch inside the request (what a
  worker did before refreshes were coalesced: the same work, just not beside the request).
Both start from the store's history (the bare write below, with the same buyers) ranked by
a full run as the nightly one would, tables analysed as the owner (``_analyze``), and send
fresh order ids.

Baselines of the same run, on the same data shape:
- the bare write: the same orders and lines inserted by ``lib.bulk.bulk_insert`` (COPY
  through a staging table), no HTTP, no validation, no lookups: the floor for any API; it
  is also the store's history for the runs after it;
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
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

from _setup import ROOT, django_ready, recreate_database, table

LINES = 3
BATCH = 1000
WORKER_NAME = "enseigne-bench-rfm-worker"


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


class BackendWatch(threading.Thread):
    """CPU seconds of the worker's PostgreSQL backends (found by application name, sampled
    every 0.2 s: a connection the worker replaces is still counted, from its first sight)."""

    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database, self.first, self.last = database, {}, {}
        self.stop = threading.Event()

    def sample(self, cursor) -> None:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [WORKER_NAME]
        )
        for (pid,) in cursor.fetchall():
            cpu = _backend_cpu(pid)
            self.first.setdefault(pid, cpu)
            self.last[pid] = max(cpu, self.last.get(pid, 0.0))

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.database.split("?")[0], autocommit=True) as conn:
            cursor = conn.cursor()
            while not self.stop.wait(0.2):
                self.sample(cursor)
            self.sample(cursor)

    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.first)


def _analyze(database: str) -> None:
    """Statistics for the data so far, as autovacuum keeps them on a live server (this one
    may run without it). As the owner: the app role's ANALYZE skips every table it does not
    own, silently but for a warning. Without them a refresh's plan took the orders table for
    empty: 57 s instead of 0.04 s for 2,000 buyers (a nested loop over all the orders)."""
    if database.startswith("postgres"):
        import psycopg

        with psycopg.connect(database.split("?")[0], autocommit=True) as conn:
            conn.execute("ANALYZE")


def _proc_cpu(pid: int) -> float:
    """CPU seconds of a process of ours and its threads (the worker)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_run(args) -> tuple[int, float, int, float, float, float]:
    """One client process: post its batches; (orders created, seconds, duplicates, CPU
    seconds of this process — Django's side — and of its PostgreSQL backend, wall-clock
    start): CPU time is what the work costs whatever else loads the machine."""
    unit_public_id, key, orders, immediate, rollup, barrier = args
    from django.db import connections
    from django.test import Client
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = immediate
    if not rollup:  # the baseline without the category revenue rollup (commerce.revenue)
        from enseigne.commerce import services

        services.orders_tallied = lambda unit, orders: None
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
    started_at = time.time()
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
        started_at,
    )


def _worker(args, queue) -> None:
    queue.put(_client_run(args))


def _clients(context, work, started=None) -> list[tuple]:
    """Run each client in its own process, started together after their warm-up;
    ``started()`` is called once they are forked (no thread of ours is forked with them)."""
    barrier, queue = context.Barrier(len(work)), context.Queue()
    processes = [context.Process(target=_worker, args=((*w, barrier), queue)) for w in work]
    for process in processes:
        process.start()
    if started:
        started()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--conversions", type=int, default=1000, help="orders for that baseline")
    parser.add_argument(
        "--rollup-rounds", type=int, default=4, help="rounds of batches with / without the rollup"
    )
    args = parser.parse_args()
    database = os.environ.get("DATABASE_URL", "")
    recreate_database(database)
    data_dir = os.environ.get("ENSEIGNE_DATA_DIR", "/tmp/ens-orders-bench")
    queue_file = f"{data_dir}/bench-huey.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(queue_file + suffix):
            os.unlink(queue_file + suffix)
    # The worker's queue; this process and the baseline's clients run tasks inline.
    os.environ["HUEY_URL"] = f"sqlite:///{queue_file}"
    django_ready()
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = True
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
        known = list(Contact.objects.filter(unit=unit).values_list("public_id", "email", "pk"))
        contacts = [(str(p), e) for p, e, _pk in known]
        buyer_of = {key: pk for p, e, pk in known for key in (str(p), e)}
    _analyze(database)
    skus = [f"SKU-{i:05d}" for i in range(2000)]
    total = args.orders - args.orders % (BATCH * args.processes) or BATCH * args.processes

    # Baseline 1: the bare write of the same rows, into the same store: also its history.
    bare_orders = make_orders(total, 10**8, contacts, skus, seed=1)
    start = time.perf_counter()
    with db_scope(ALL):
        products = products_for(unit, skus)
        for offset in range(0, total, BATCH):
            chunk = bare_orders[offset : offset + BATCH]
            with transaction.atomic():
                ids = bulk_insert(
                    Order,
                    ("public_id", "unit", "unit_path", "external_id", "contact", "occurred_at",
                     "total", "channel", "source", "created_at"),
                    [
                        (uuid.uuid4(), unit.pk, unit.path, o["order_id"],
                         buyer_of.get(o.get("contact") or o.get("email")), o["occurred_at"],
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
                        (pk, unit.path, p, line["sku"],
                         products[line["sku"]].pk if line["sku"] in products else None,
                         line["sku"] not in products, "", Decimal(line["quantity"]), None,
                         Decimal(line.get("amount") or line["unit_amount"]), Decimal(0),
                         bool(line.get("is_return")))
                        for (pk,), o in zip(ids, chunk, strict=True)
                        for p, line in enumerate(o["lines"])
                    ],
                )  # fmt: skip
    bare_seconds = time.perf_counter() - start

    from django.test import Client

    from enseigne.rfm import scoring
    from enseigne.rfm.models import PendingBuyer, RecordScore

    # The store's history ranked by a full run, as by last night's: the runs below refresh
    # buyers of a ranked store, as every day but the first.
    with db_scope(ALL):
        scoring.full_run()
    _analyze(database)
    share = total // args.processes

    def split(orders, immediate, rollup=True):
        return [
            (str(unit.public_id), key, orders[i * share : (i + 1) * share], immediate, rollup)
            for i in range(args.processes)
        ]

    connections.close_all()
    context = multiprocessing.get_context("fork")

    # Baseline: one refresh per batch, run inside the request (Huey immediate).
    inline_orders = make_orders(total, 0, contacts, skus, seed=2)
    inline = _clients(context, split(inline_orders, True))
    inline_seconds = max(r[1] for r in inline)

    # The product: a real worker beside the clients, refreshes coalesced.
    log_path = f"{data_dir}/bench-worker.log"
    worker_env = dict(os.environ, PYTHONPATH=str(ROOT))
    if database.startswith("postgres"):
        worker_env["DATABASE_URL"] = (
            f"{database}{'&' if '?' in database else '?'}application_name={WORKER_NAME}"
        )
    with open(log_path, "w") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "enseigne.cli", "worker", "--workers", "1"],
            cwd=ROOT,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.time() + 60
        while "consumer started" not in open(log_path).read().lower():  # noqa: SIM115
            if worker.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the worker did not start: see {log_path}")
            time.sleep(0.2)
        watch = BackendWatch(database) if database.startswith("postgres") else None
        worker_cpu = _proc_cpu(worker.pid)
        log_start = len(open(log_path).read())  # noqa: SIM115
        orders = make_orders(total, 10**7, contacts, skus, seed=2)
        results = _clients(context, split(orders, False), watch.start if watch else None)
        with db_scope(ALL):
            while PendingBuyer.objects.exists():
                time.sleep(0.05)
        scored_seconds = time.time() - min(r[5] for r in results)
        # The refresh's last transaction committed; let its task report before reading.
        time.sleep(0.5)
        worker_cpu = _proc_cpu(worker.pid) - worker_cpu
        if watch:
            watch.stop.set()
            watch.join()
        worker_db_cpu = watch.seconds() if watch else 0.0
        refreshes = sum(
            "rfm_refresh_pending:" in line and "executed in" in line
            for line in open(log_path).read()[log_start:].splitlines()  # noqa: SIM115
        )
    finally:
        worker.terminate()
        worker.wait(30)
    connections.close_all()
    batch_seconds = max(r[1] for r in results)
    created = sum(r[0] for r in results)
    # The same orders again: all duplicates (nothing written, nothing to refresh).
    again = _clients(context, split(orders, True))
    again_seconds = max(r[1] for r in again)
    with db_scope(ALL):
        buyers = set(
            Order.objects.filter(unit=unit, contact__isnull=False, total__gt=0).values_list(
                "contact_id", flat=True
            )
        )
        scored = RecordScore.objects.filter(contact_id__in=buyers).count()

    # Baseline 2: the conversions endpoint, one order per call, one client.
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

    # The category revenue rollup's cost (commerce.revenue, in every batch's transaction):
    # fresh batches with it and without it, alternated round by round so that the machine's
    # load falls on both alike; RFM refreshes run inline in both (the same work).
    rollup_cpu = {True: [0.0, 0.0], False: [0.0, 0.0]}
    connections.close_all()  # the forked clients must not share this process's connection
    for round_number in range(args.rollup_rounds):
        for with_rollup in (True, False) if round_number % 2 == 0 else (False, True):
            fresh = make_orders(total, (6 + 2 * round_number + with_rollup) * 10**8, contacts,
                                skus, seed=4 + round_number)  # fmt: skip
            runs = _clients(context, split(fresh, True, with_rollup))
            rollup_cpu[with_rollup][0] += sum(r[3] for r in runs)
            rollup_cpu[with_rollup][1] += sum(r[4] for r in runs)
    rollup_orders = total * args.rollup_rounds
    with db_scope(ALL):
        stored = Order.objects.filter(unit=unit).count()
        lines = OrderLine.objects.filter(order__unit=unit).count()
        from enseigne.commerce.models import CategoryRevenue

        rollup_rows = CategoryRevenue.objects.filter(unit=unit).count()

    def cpu_ms(runs, index):  # CPU milliseconds per 1,000 orders
        return sum(r[index] for r in runs) / total * 1_000_000

    cpu_first, cpu_again, cpu_inline = (cpu_ms(r, 3) for r in (results, again, inline))
    db_first, db_again, db_inline = (cpu_ms(r, 4) for r in (results, again, inline))
    cpu_worker = worker_cpu / total * 1_000_000
    db_worker = worker_db_cpu / total * 1_000_000
    spent = cpu_first + db_first + cpu_worker + db_worker
    # What 2 free cores would do: every process's CPU per order (clients, worker, both
    # one's PostgreSQL backends), shared by 2.
    ideal = 2 * 1_000_000 / spent if spent else 0
    ideal_inline = 2 * 1_000_000 / (cpu_inline + db_inline) if cpu_inline + db_inline else 0
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
        ("baseline: batch API, a refresh per batch in the request", f"{total:,}",
         f"{inline_seconds:.2f}", f"{total / inline_seconds:,.0f}",
         f"{cpu_inline:,.0f} + {db_inline:,.0f}"),
        (f"batch API, {args.processes} client(s), 1,000/call, worker beside", f"{created:,}",
         f"{batch_seconds:.2f}", f"{created / batch_seconds:,.0f}",
         f"{cpu_first:,.0f} + {db_first:,.0f}"),
        (f"  ... until every buyer is scored ({refreshes} refreshes)", f"{created:,}",
         f"{scored_seconds:.2f}", f"{created / scored_seconds:,.0f}",
         f"worker {cpu_worker:,.0f} + {db_worker:,.0f}"),
        ("same batches again (all duplicates)", f"{sum(r[2] for r in again):,}",
         f"{again_seconds:.2f}", f"{total / again_seconds:,.0f}", f"{cpu_again:,.0f} + {db_again:,.0f}"),
        ("baseline: conversions endpoint, 1/call", f"{len(single):,}",
         f"{conversion_seconds:.2f}", f"{len(single) / conversion_seconds:,.0f}", ""),
    ]  # fmt: skip
    if args.rollup_rounds:
        per = {
            k: [v * 1_000_000 / rollup_orders for v in values] for k, values in rollup_cpu.items()
        }
        rows += [
            (f"batch API with the category revenue rollup ({args.rollup_rounds} rounds)",
             f"{rollup_orders:,}", "", "", f"{per[True][0]:,.1f} + {per[True][1]:,.1f}"),
            ("  baseline: the same without it", f"{rollup_orders:,}", "", "",
             f"{per[False][0]:,.1f} + {per[False][1]:,.1f}"),
        ]  # fmt: skip
    table(
        f"Order ingest ({connection.vendor}, {LINES} lines/order, {os.cpu_count()} CPUs; "
        f"stored {stored:,} orders, {lines:,} lines; {scored:,} of {len(buyers):,} buyers "
        "scored)",
        rows,
    )
    if args.rollup_rounds:
        with_it, without = sum(per[True]), sum(per[False])
        print(
            f"\nThe category revenue rollup ({rollup_rows:,} rows for this store): "
            f"{with_it - without:+,.1f} ms CPU per 1,000 orders (Django "
            f"{per[True][0] - per[False][0]:+,.1f}, PostgreSQL {per[True][1] - per[False][1]:+,.1f}), "
            f"{100 * (with_it - without) / without:+.1f} % of the request's CPU."
        )
    print(
        f"\nFrom the CPU per order, everything counted (clients, worker, their PostgreSQL "
        f"backends: {spent:,.0f} ms per 1,000 orders): 2 unloaded cores would take about "
        f"{ideal:,.0f} orders/s with the worker beside, {ideal_inline:,.0f} with a refresh "
        "per batch."
    )
    return 0


def time_now():
    from django.utils import timezone

    return timezone.now()


if __name__ == "__main__":
    raise SystemExit(main())
