"""The store dashboard's customers section (issue 21): its reads at a network's size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_storedash_bench \
      DATABASE_APP_ROLE=enseigne_app ENSEIGNE_DATA_DIR=/tmp/ens-storedash \
      .venv/bin/python bench/store_customers.py --contacts 500000 --units 50

Contacts, orders (two years, 1.67 a contact) and lines (3 an order, 40 categories) are
generated as bench/behaviour.py generates them, RFM by the product's full run, the purchase
summaries by their rebuild. Each figure
is the median of 5 runs of ``analytics.customers`` as the store manager's row-level scope
sees it (the network-wide reads widen to the system scope inside), beside the baseline of
the same run: the rest of the store's dashboard (``selectors.unit_dashboard``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os

from _setup import django_ready, recreate_database, table
from behaviour import load_orders, timed, vacuum_analyze
from segments import generate

CODE = "bench-storedash"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="reuse a network of this size")
    args = parser.parse_args()
    database = os.environ["DATABASE_URL"]
    assert database.startswith("postgres"), "bench/store_customers.py runs on PostgreSQL"
    if not args.keep:
        recreate_database(database)
    django_ready()

    from django.db import transaction
    from django.utils import timezone

    from enseigne.analytics import customers, selectors
    from enseigne.commerce.models import CategoryPurchase
    from enseigne.commerce.summaries import rebuild
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from enseigne.network.models import OrgNode
    from enseigne.rfm import scoring

    with db_scope(ALL):
        network.builtin_roles_ensure()
        root = OrgNode.objects.filter(code=CODE).first()
        fresh = root is None
        if fresh:
            root = network.network_create(
                actor=None, name="Bench", code=CODE, legal_name="Bench", sending_domain="e.com"
            )
            units = [
                network.node_create(
                    actor=None, parent=root, kind="unit", name=f"U{i}", code=f"{CODE}-u{i}"
                )
                for i in range(args.units)
            ]
            with transaction.atomic():
                generate(units, args.contacts // args.units)
    if fresh:
        orders, lines = load_orders(database, root.path, 3)
        print(f"{orders:,} orders, {lines:,} lines")
        with db_scope(ALL):
            scoring.full_run(as_of=timezone.now())
    with db_scope(ALL):
        summarised = CategoryPurchase.objects.exists()
    if fresh or not summarised:
        # Orders were loaded around the product's writers: the order hook's summaries too.
        with db_scope(ALL):
            rebuild()
        vacuum_analyze(database)
    with db_scope(ALL):
        unit = OrgNode.objects.filter(path__startswith=root.path, kind="unit").order_by("path")[0]
        today = timezone.localdate()
        since = today - dt.timedelta(days=customers.CATEGORY_DAYS - 1)
        window = customers.rfm_selectors.window_start_of(root.path)
        _rfm, buyers = customers.rfm_shares(unit, root.path, ranked=True)

    def as_store(fn):
        def run():
            with db_scope([unit.path]):
                return fn()

        return run

    measures = [
        ("whole section", lambda: customers.store_customers(unit)),
        ("RFM groups", lambda: customers.rfm_shares(unit, root.path, ranked=True)),
        ("personas", lambda: customers.persona_shares(unit, root.path, ranked=True)),
        (
            "top categories",
            lambda: customers.category_figures(unit, root.path, since, buyers, ranked=True),
        ),
        ("demo check", lambda: customers.demo_figures(unit, root.path, window)),
        ("baseline: rest of the dashboard", lambda: selectors.unit_dashboard(unit, days=90)),
    ]
    rows = [("read (one store's scope)", "median ms")]
    for name, fn in measures:
        ms, _value = timed(as_store(fn))
        rows.append((name, f"{ms:.0f}"))
    table(f"{args.contacts:,} contacts, {args.units} stores", rows)


if __name__ == "__main__":
    main()
