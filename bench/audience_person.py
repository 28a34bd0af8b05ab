"""A national campaign's audience preview by person against the same preview by record.

    .venv/bin/python bench/audience_person.py --contacts 200000 --units 100 \
        --database postgres://postgres@127.0.0.1:5432/enseigne_bench_person

The data is ``bench/audience.py``'s (a network of ``--units`` units, pressure caps, two
past ledgers, a planned national campaign, 1 % of the addresses suppressed brand-wide,
every contact linked to its person and ``--shared`` of them in pairs across neighbouring
units); ``--reuse`` keeps a database an earlier run built.

Both previews run through ``audience.preview`` as HQ under row-level security, alternated
``--repeat`` times on the same database so that the machine's load weighs on both alike:

- *by person*: the product's preview (pressure per person, one message a person, a
  brand-wide suppression stops every record of the person);
- *by record* (the baseline): the same code with identity's three inputs emptied (no
  record has another record of its person, no suppression reaches a person), which is
  what the preview did before issue 20: each record its own person.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import contextmanager


@contextmanager
def by_record():
    """The preview as it was before persons: no ``shared`` links, no one-per-person pass,
    no suppression through a person."""
    from enseigne.campaigns import audience
    from enseigne.identity import sending
    from enseigne.identity.models import RecordLink

    saved = (
        sending.shared_links_sql,
        audience._one_per_person,
        sending.brand_wide_suppressed_records,
    )

    def no_links(handoff=None):
        return (f"SELECT contact_id, person_id FROM {RecordLink._meta.db_table} WHERE false", [])  # noqa: S608

    sending.shared_links_sql = no_links
    audience._one_per_person = lambda *args, **kwargs: None
    sending.brand_wide_suppressed_records = lambda *args, **kwargs: (
        RecordLink.objects.none().values("contact")
    )
    try:
        yield
    finally:
        (
            sending.shared_links_sql,
            audience._one_per_person,
            sending.brand_wide_suppressed_records,
        ) = saved


def _world():
    from enseigne.campaigns.models import Campaign
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network.models import OrgNode

    with db_scope(ALL):
        campaign = Campaign.objects.select_related("owner").get(name="Measured")
        units = list(OrgNode.objects.filter(kind=OrgNode.Kind.UNIT))
    return {"campaign": campaign, "units": units}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument(
        "--database", default="postgres://postgres@127.0.0.1:5432/enseigne_bench_person"
    )
    parser.add_argument("--shared", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a former run")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("DATABASE_APP_ROLE", "enseigne_app")
    os.environ.setdefault("ENSEIGNE_DATA_DIR", "/tmp/enseigne-bench-person")
    import audience as data
    from _setup import django_ready, recreate_database, table

    built = None
    if not args.reuse:
        recreate_database(args.database)
    django_ready()
    if not args.reuse:
        started = time.perf_counter()
        data.build(args)
        built = time.perf_counter() - started
    world = _world()

    from enseigne.campaigns import audience
    from enseigne.lib.rowsecurity import ALL, db_scope

    campaign = world["campaign"]

    def preview():
        with db_scope(ALL):
            return audience.preview(campaign)

    def timed(fn):
        started = time.perf_counter()
        value = fn()
        return (time.perf_counter() - started) * 1000, value

    def bare():
        from enseigne.contacts.models import Contact

        with db_scope(ALL):
            return Contact.objects.filter(unit__in=[u.pk for u in world["units"]]).count()

    preview()  # warm: the first statement of a connection plans and caches catalogues
    person_ms, record_ms, bare_ms = [], [], []
    person = record = total = None
    for _ in range(args.repeat):
        took, person = timed(preview)
        person_ms.append(took)
        with by_record():
            took, record = timed(preview)
        record_ms.append(took)
        took, total = timed(bare)
        bare_ms.append(took)

    def line(result) -> str:
        exclusions = ", ".join(f"{k} {v:,}" for k, v in sorted(result.exclusions.items()))
        return f"{result.recipients:,} of {result.candidates:,}; {exclusions}"

    by_person_ms, by_record_ms = statistics.median(person_ms), statistics.median(record_ms)
    rows = [("measure", "median (min–max)", "result")]
    if built is not None:
        rows.append(("build the data (SQL, ANALYZE)", f"{built:,.0f} s", ""))
    rows += [
        (
            f"national preview by person (median of {args.repeat})",
            f"{by_person_ms:,.0f} ms ({min(person_ms):,.0f}–{max(person_ms):,.0f})",
            line(person),
        ),
        (
            "baseline: the same preview by record",
            f"{by_record_ms:,.0f} ms ({min(record_ms):,.0f}–{max(record_ms):,.0f})",
            line(record),
        ),
        ("by person / by record", f"{by_person_ms / by_record_ms:.2f}×", ""),
        (
            "baseline: bare COUNT(*) of the units' contacts",
            f"{statistics.median(bare_ms):,.0f} ms",
            f"{total:,}",
        ),
    ]
    table(
        f"National audience preview by person and by record, PostgreSQL, {args.contacts:,} contacts",
        rows,
    )


if __name__ == "__main__":
    main()
