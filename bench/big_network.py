"""Build bench/audience.py's network (``--units`` units, ``--contacts`` contacts, two past
national ledgers, pressure caps, suppressions, a planned national campaign and the measured
one) in a database that is kept, for bench/pages.py and bench/serve_load.py to browse:

    python bench/big_network.py --contacts 1000000 --units 100 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_speed_1m
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_speed_1m python bench/pages.py \
        --personas bench-hq@example.com --password bench-password-1
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("DATABASE_APP_ROLE", "enseigne_app")
    from _setup import django_ready, recreate_database

    recreate_database(args.database)
    django_ready()
    from audience import build

    started = time.perf_counter()
    world = build(args)
    from enseigne.analytics import rollups
    from enseigne.lib.dbstats import analyze

    # The worker's first rollup pass (every five minutes in production): the dashboards and
    # the HQ home's contact bases read it.
    rollups.refresh()
    # build() analysed after the bulk history; the campaigns and rollups made since too.
    analyze()
    print(
        f"{args.contacts:,} contacts in {args.units} units built in "
        f"{time.perf_counter() - started:,.0f} s; measured campaign {world['campaign'].public_id}"
    )


if __name__ == "__main__":
    main()
