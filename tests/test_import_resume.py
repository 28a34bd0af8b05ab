"""A CSV import whose worker dies mid-import (killed, out of memory, the machine restarted)
is taken over by the worker's minute sweep once its lease has passed, and finishes with
exactly what an uninterrupted import writes: each order, contact or product once, the
counts and the row-by-row report complete (lib.imports: one rule for every import)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
import time_machine
from django.utils import timezone

from enseigne.brand import catalogue
from enseigne.brand.models import Asset
from enseigne.commerce import catalogue_importer
from enseigne.commerce import importer as order_importer
from enseigne.commerce.models import (
    CatalogueImport,
    CatalogueImportProblem,
    Order,
    OrderImport,
    OrderImportProblem,
)
from enseigne.commerce.tasks import commerce_imports_sweep, run_order_import
from enseigne.contacts.import_services import import_prepare, import_start
from enseigne.contacts.import_writer import BatchWriter
from enseigne.contacts.models import Contact, ImportRejection
from enseigne.contacts.tasks import contact_imports_sweep
from enseigne.lib.imports import IMPORT_ATTEMPTS, IMPORT_LEASE, LeaseLost, import_sweep
from tests.test_order_import import _media, product  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("product")

# Nine orders over 14 rows, with what a report holds: a refused order (bad price, its two
# rows), an unknown SKU (kept, flagged), a row with no order id, a broken quotation mark.
ORDERS = (
    "N° commande;Date;Référence;Quantité;Prix unitaire\r\n"
    "A-1;20/11/2026;P-1;1;10,00\r\n"
    "A-2;20/11/2026;P-1;2;10,00\r\n"
    "A-1;20/11/2026;INCONNU;1;5,00\r\n"
    "A-3;21/11/2026;P-1;1;abc\r\n"
    ";21/11/2026;P-1;1;1\r\n"
    "A-4;21/11/2026;P-1;1;4\r\n"
    'A-5;21/11/2026;"P-1;1;4\r\n'
    "A-6;22/11/2026;P-1;1;6\r\n"
    "A-3;21/11/2026;P-1;1;3\r\n"
    "A-7;22/11/2026;P-1;3;7\r\n"
    "A-8;22/11/2026;P-1;1;8\r\n"
    "A-9;23/11/2026;P-1;1;9\r\n"
    "A-10;23/11/2026;P-1;1;10\r\n"
)


def _after_the_lease():
    return time_machine.travel(timezone.now() + IMPORT_LEASE + dt.timedelta(seconds=1))


def _orders_started(actor, unit) -> OrderImport:
    order_import = order_importer.order_import_prepare(
        actor=actor, unit=unit, file_name="ventes.csv", content=ORDERS.encode("cp1252")
    )
    return order_importer.order_import_start(
        actor=actor, order_import=order_import, mapping=order_import.mapping, queue=False
    )


def _order_state(order_import: OrderImport):
    order_import.refresh_from_db()
    counts = (
        order_import.status,
        order_import.processed_rows,
        order_import.total_rows,
        order_import.created_count,
        order_import.duplicate_count,
        order_import.refused_count,
        order_import.refused_rows,
        order_import.line_count,
        order_import.unknown_sku_lines,
    )
    report = list(
        OrderImportProblem.objects.filter(order_import=order_import).values_list(
            "row_number", "kind", "column", "value", "rule", "reason"
        )
    )
    orders = sorted(
        (o.external_id, str(o.total), sorted((str(li.amount), li.sku) for li in o.lines.all()))
        for o in Order.objects.filter(unit=order_import.unit).prefetch_related("lines")
    )
    return counts, report, orders


def test_a_sales_import_killed_mid_way_is_resumed_by_the_sweep_and_writes_each_order_once(
    world, monkeypatch
):
    monkeypatch.setattr(order_importer, "MAX_BATCH", 2)  # five batches of the nine orders
    reference = order_importer.order_import_run(_orders_started(world.manager_b, world.unit_b).pk)
    expected = _order_state(reference)
    assert expected[0][0] == OrderImport.Status.DONE and expected[0][3] == 8  # A-3 refused

    real, calls = order_importer.orders_record, []

    def dies_on_the_third_batch(**kwargs):
        calls.append(kwargs)
        if len(calls) == 3:
            raise SystemExit("the worker is killed")  # no except clause of ours runs
        return real(**kwargs)

    monkeypatch.setattr(order_importer, "orders_record", dies_on_the_third_batch)
    order_import = _orders_started(world.manager_a, world.unit_a)
    with pytest.raises(SystemExit):
        order_importer.order_import_run(order_import.pk)
    order_import.refresh_from_db()
    assert (order_import.status, order_import.orders_done, order_import.attempts) == (
        OrderImport.Status.RUNNING,
        4,
        1,
    )
    assert sorted(
        Order.objects.filter(unit=world.unit_a).values_list("external_id", flat=True)
    ) == [
        "A-1",
        "A-2",
        "A-4",
    ]  # the two committed batches (A-3 refused), nothing of the third
    monkeypatch.setattr(order_importer, "orders_record", real)

    # While its lease runs the import is someone's: neither a second run nor the sweep takes it.
    assert order_importer.order_import_run(order_import.pk).status == OrderImport.Status.RUNNING
    commerce_imports_sweep.call_local()
    assert _order_state(order_import)[0][3] == 3

    with _after_the_lease():
        commerce_imports_sweep.call_local()  # the queue is immediate in tests: it runs here
    assert _order_state(order_import) == expected
    order_import.refresh_from_db()
    assert (order_import.attempts, order_import.lease_until) == (2, None)


def test_a_run_taken_for_dead_that_wakes_up_writes_nothing_twice(world, monkeypatch):
    """Fencing: a run that stalled past its lease (taken over, the import since finished)
    and then goes on from where it believed it was rolls its batch back."""
    monkeypatch.setattr(order_importer, "MAX_BATCH", 2)
    order_import = _orders_started(world.manager_a, world.unit_a)
    real, calls = order_importer.orders_record, []

    def stalls_after_the_first_batch(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise SystemExit("stalled")
        return real(**kwargs)

    monkeypatch.setattr(order_importer, "orders_record", stalls_after_the_first_batch)
    with pytest.raises(SystemExit):
        order_importer.order_import_run(order_import.pk)
    monkeypatch.setattr(order_importer, "orders_record", real)
    stale = OrderImport.objects.select_related("unit").get(pk=order_import.pk)
    with _after_the_lease():
        commerce_imports_sweep.call_local()
    finished = _order_state(order_import)
    assert finished[0][:5] == ("done", 13, 13, 8, 0)
    with pytest.raises(LeaseLost):
        order_importer._run_claimed(stale)  # the stalled run wakes up, at its second batch
    assert _order_state(order_import) == finished
    assert run_order_import.call_local(order_import.pk) is None  # the task ends quietly


def test_a_run_with_retries_left_lets_the_retry_take_over_at_once(world, monkeypatch):
    monkeypatch.setattr(order_importer, "MAX_BATCH", 2)
    order_import = _orders_started(world.manager_a, world.unit_a)
    real, calls = order_importer.orders_record, []

    def breaks_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(**kwargs)

    monkeypatch.setattr(order_importer, "orders_record", breaks_once)
    with pytest.raises(RuntimeError):
        run_order_import.call_local(order_import.pk, task=SimpleNamespace(retries=1))
    order_import.refresh_from_db()
    assert (order_import.status, order_import.orders_done, order_import.lease_until) == (
        "running",
        2,
        None,
    )
    run_order_import.call_local(order_import.pk, task=SimpleNamespace(retries=0))
    counts, _report, orders = _order_state(order_import)
    assert (counts[0], counts[3], counts[4], len(orders)) == ("done", 8, 0, 8)


def test_an_import_that_kills_its_worker_every_time_is_given_up_after_its_attempts(world):
    order_import = _orders_started(world.manager_a, world.unit_a)
    queued = []
    for _attempt in range(IMPORT_ATTEMPTS):
        OrderImport.objects.filter(pk=order_import.pk).update(
            status="running", attempts=_attempt + 1, lease_until=timezone.now()
        )
        with _after_the_lease():
            import_sweep(OrderImport, queued.append, order_importer.order_import_give_up)
    order_import.refresh_from_db()
    assert queued == [order_import.pk] * (IMPORT_ATTEMPTS - 1)
    assert order_import.status == OrderImport.Status.FAILED
    assert order_import.error.startswith("Stopped by an unexpected error after 0 rows.")


def test_a_queued_import_whose_task_was_lost_is_queued_again(world):
    order_import = _orders_started(world.manager_a, world.unit_a)
    assert import_sweep(OrderImport, print, order_importer.order_import_give_up) == []
    with _after_the_lease():
        commerce_imports_sweep.call_local()
    assert _order_state(order_import)[0][:4] == ("done", 13, 13, 8)


def test_a_contact_import_killed_mid_way_is_resumed_by_the_sweep(world, settings, monkeypatch):
    settings.IMPORT_BATCH_ROWS = 50
    rows = "\n".join(["email", *(f"p{i}@example.com" for i in range(120)), "pas-une-adresse"])
    imp = import_prepare(
        actor=world.manager_a, unit=world.unit_a, file_name="c.csv", content=rows.encode()
    )
    import_start(
        actor=world.manager_a, contact_import=imp, mapping=imp.mapping, consent_channels=[]
    )
    original, calls = BatchWriter.write_chunk, []

    def killed_on_the_second_batch(self, chunk):
        calls.append(chunk)
        if len(calls) == 2:
            raise SystemExit("the worker is killed")
        return original(self, chunk)

    monkeypatch.setattr(BatchWriter, "write_chunk", killed_on_the_second_batch)
    from enseigne.contacts.importer import run_import

    with pytest.raises(SystemExit):
        run_import(imp.pk)
    imp.refresh_from_db()
    assert (imp.status, imp.processed_rows, imp.created_count) == ("running", 50, 50)
    monkeypatch.setattr(BatchWriter, "write_chunk", original)
    contact_imports_sweep.call_local()  # the lease still runs: not taken
    imp.refresh_from_db()
    assert imp.processed_rows == 50
    with _after_the_lease():
        contact_imports_sweep.call_local()
    imp.refresh_from_db()
    assert (imp.status, imp.processed_rows, imp.created_count, imp.rejected_count) == (
        "done",
        121,
        120,
        1,
    )
    assert Contact.objects.filter(unit=world.unit_a).count() == 120
    assert list(ImportRejection.objects.filter(contact_import=imp).values_list("row_number")) == [
        (122,)
    ]


CATALOGUE = "sku;name;price\n" + "".join(f"S-{i};Produit {i};{i},50\n" for i in range(12))


def test_a_catalogue_import_killed_mid_way_is_resumed_by_the_sweep(world, monkeypatch):
    monkeypatch.setattr(catalogue_importer, "CHUNK_ROWS", 5)
    content = (CATALOGUE + "S-3;Doublon;1\n;Sans SKU;2\n").encode()
    imp = catalogue_importer.catalogue_import_prepare(
        actor=world.hq_admin, node=world.root, file_name="c.csv", content=content
    )
    imp = catalogue_importer.catalogue_import_start(
        actor=world.hq_admin, catalogue_import=imp, mapping=imp.mapping
    )  # queued once the test's transaction commits, which it never does: run here
    real, calls = catalogue.asset_create, []

    def killed_in_the_second_chunk(**kwargs):
        calls.append(kwargs)
        if len(calls) == 8:
            raise SystemExit("the worker is killed")
        return real(**kwargs)

    monkeypatch.setattr(catalogue, "asset_create", killed_in_the_second_chunk)
    with pytest.raises(SystemExit):
        catalogue_importer.catalogue_import_run(imp.pk)
    assert (
        Asset.objects.filter(kind=Asset.Kind.PRODUCT, data__sku__startswith="S-").count() == 5
    )  # the first chunk only
    monkeypatch.setattr(catalogue, "asset_create", real)
    with _after_the_lease():
        commerce_imports_sweep.call_local()
    imp.refresh_from_db()
    assert (imp.status, imp.processed_rows, imp.created_count, imp.rejected_count) == (
        "done",
        14,
        12,
        2,
    )
    assert Asset.objects.filter(kind=Asset.Kind.PRODUCT, data__sku__startswith="S-").count() == 12
    assert list(
        CatalogueImportProblem.objects.filter(catalogue_import=imp).values_list(
            "row_number", "column"
        )
    ) == [(14, "sku"), (15, "sku")]
    assert CatalogueImport.objects.get(pk=imp.pk).attempts == 2
