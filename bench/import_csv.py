"""Import benchmark: an N-row CSV with 2 % bad rows, validated and deduplicated.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_bench DATABASE_APP_ROLE=enseigne_app \
        .venv/bin/python bench/import_csv.py --rows 1000000

Prints rows/s end to end and peak memory (taken after the first import), with
``--reimport`` the same file imported a second time (every row already there), beside two
baselines of the same run: the bare validation loop (clean_email + clean_phone, no
database) and the bare PostgreSQL COPY of the same rows into a temporary table.

``--identity`` also imports the file into another unit with the record hooks off (no
person matching), the baseline the product's import (matching on) is compared with in the
same run (issue 20: at most 15 % slower). Each import goes into a unit of a network of its
own (the keys are salted with the network, so each matched import is a fresh network's,
whatever earlier runs left in the database). With ``--repeat N`` the pair runs N times,
alternately baseline first and matched first (the tables grow between imports, and the
machine is shared: only ratios within one run mean something); the overhead printed is
the median pair's, beside the extremes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _setup import django_ready, table

# Real mailbox providers: example.com is a placeholder domain, which gives no matching key.
DOMAINS = ("orange.fr", "gmail.com", "free.fr", "laposte.net", "sfr.fr", "hotmail.fr")


def make_csv(path: Path, rows: int, seed: int = 7, first: int = 0) -> int:
    """Write ``rows`` people numbered from ``first``; return how many rows are bad."""
    rng = random.Random(seed + first)  # other people, other phones
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("prenom;nom;email;mobile;naissance\n")
        for i in range(first, first + rows):
            email = f"prenom.{i}.nom@{DOMAINS[i % len(DOMAINS)]}"
            phone = f"0{rng.choice((61, 62, 64, 65, 66, 67, 68, 76, 77, 78))}{rng.randrange(0, 9_999_999):07d}"
            birthday = (
                f"{rng.randint(1950, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            )
            if i % 50 == 0:  # 2 % bad rows
                bad += 1
                email = f"prenom.{i}.nom@"
            if i % 97 == 0 and i:  # a few repeats of an earlier person: dedup
                email = f"prenom.{i - 1}.nom@{DOMAINS[(i - 1) % len(DOMAINS)]}"
            out.write(f"Prénom{i};Nom{i};{email};{phone};{birthday}\n")
    return bad


def queued_import(unit, path: Path):
    """A queued import of ``path`` (make_csv's columns) into ``unit``, as the mapping page leaves it."""
    from enseigne.contacts.models import ContactImport
    from enseigne.lib.rowsecurity import db_scope

    with db_scope([unit.path]):
        return ContactImport.objects.create(
            unit=unit,
            unit_path=unit.path,
            file_name="bench.csv",
            file_path=str(path),
            file_sha256="0" * 64,
            columns=["prenom", "nom", "email", "mobile", "naissance"],
            mapping={
                "prenom": "first_name",
                "nom": "last_name",
                "email": "email",
                "mobile": "phone",
                "naissance": "birthday",
            },
            consent_channels=["email"],
            consent_wording="bench",
            status=ContactImport.Status.QUEUED,
        )


@dataclass(frozen=True)
class Timing:
    """One import's wall time, and the CPU time of its writer thread plus its database
    session (PostgreSQL on this machine; None elsewhere). The import's critical path is
    that thread and that session, so the CPU figure counts the work matching adds whatever
    else the shared cores were doing; the wall time is what a user waits."""

    wall: float
    cpu: float | None


def _session_cpu() -> float | None:
    """CPU seconds used so far by this thread's database session (PostgreSQL, local)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # a database on another machine
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _session_ns(pid: int) -> int:
    """Nanoseconds of CPU the database session ``pid`` used so far (the scheduler's count)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


class StatementProfile:
    """Where an import's critical path spends its CPU, statement by statement (``--profile``).

    Wraps the writer's connection: for each statement, the database session's CPU (from the
    scheduler, to the nanosecond) and the writer thread's CPU while it ran, summed by the
    statement's first words. What runs outside any wrapped statement (the COPY, Python) is
    the remainder of the import's totals."""

    def __init__(self) -> None:
        self.parts: dict[str, list[float]] = {}  # label -> [count, session s, thread s]
        self.pid = 0
        self.session = 0.0  # the imports' totals, seconds
        self.thread = 0.0

    @staticmethod
    def label(sql: str) -> str:
        words = re.sub(r"\s+", " ", sql).strip()
        words = re.sub(r"(_stage_\w+?_|\"s)\d+(_x\d+)?", r"\1N", words)
        return words[:90]

    def __call__(self, execute, sql, params, many, context):
        session, thread = _session_ns(self.pid), time.thread_time()
        try:
            return execute(sql, params, many, context)
        finally:
            part = self.parts.setdefault(self.label(sql), [0, 0.0, 0.0])
            part[0] += 1
            part[1] += (_session_ns(self.pid) - session) / 1e9
            part[2] += time.thread_time() - thread


def timed_run(import_id: int, profile: StatementProfile | None = None) -> Timing:
    """Run one queued import, timed (statement by statement with ``profile``)."""
    from django.db import connection

    from enseigne.contacts.importer import run_import

    session, thread = _session_cpu(), time.thread_time()
    start = time.perf_counter()
    if profile is not None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (profile.pid,) = cursor.fetchone()
        session_ns, thread_s = _session_ns(profile.pid), time.thread_time()
        with connection.execute_wrapper(profile):
            run_import(import_id)
        profile.session += (_session_ns(profile.pid) - session_ns) / 1e9
        profile.thread += time.thread_time() - thread_s
    else:
        run_import(import_id)
    wall = time.perf_counter() - start
    thread = time.thread_time() - thread
    session_after = _session_cpu()
    cpu = None if session is None or session_after is None else session_after - session + thread
    return Timing(wall, cpu)


def matching_cost_rows(pairs: list[tuple[Timing, Timing]], rows: int) -> list[tuple[str, str]]:
    """The table rows comparing (matched, baseline) import pairs: the median pair's figures."""

    def median(values: list[float]) -> float:
        return statistics.median_low(values)  # one pair's own figure, also for an even count

    walls = [m.wall / p.wall - 1 for m, p in pairs]
    matched, plain = pairs[walls.index(median(walls))]
    out = [
        (
            "import, matching on (the median pair)",
            f"{matched.wall:.1f} s = {rows / matched.wall:,.0f} rows/s",
        ),
        (
            "baseline: the same import, matching off",
            f"{plain.wall:.1f} s = {rows / plain.wall:,.0f} rows/s",
        ),
        (
            f"person matching costs the import, wall time (median of {len(pairs)} pairs)",
            f"{median(walls) * 100:+.1f} %"
            + (
                f" (pairs: {min(walls) * 100:+.1f} % to {max(walls) * 100:+.1f} %)"
                if len(pairs) > 1
                else ""
            ),
        ),
    ]
    if all(m.cpu and p.cpu for m, p in pairs):
        cpus = [m.cpu / p.cpu - 1 for m, p in pairs]  # type: ignore[operator]
        out.append(
            (
                "CPU on / off, µs a row, each pair in the run's order",
                ", ".join(
                    f"{m.cpu * 1e6 / rows:.0f}/{p.cpu * 1e6 / rows:.0f}"  # type: ignore[operator]
                    for m, p in pairs
                ),
            )
        )
        out.append(
            (
                "CPU of the writer thread + its database session, on / off (that pair)",
                f"{matched.cpu * 1e6 / rows:.0f} / {plain.cpu * 1e6 / rows:.0f} µs a row",  # type: ignore[operator]
            )
        )
        out.append(
            (
                "person matching costs that CPU",
                f"{median(cpus) * 100:+.1f} %"
                + (
                    f" (pairs: {min(cpus) * 100:+.1f} % to {max(cpus) * 100:+.1f} %)"
                    if len(pairs) > 1
                    else ""
                ),
            )
        )
    return out


def profile_rows(
    profiles: dict[str, StatementProfile], pairs: list[tuple[Timing, Timing]], rows: int
) -> list[tuple[str, ...]]:
    """``--profile``'s table: each statement's database and writer-thread CPU a row, on and
    off, largest difference first; the remainder is the COPY and the Python between statements."""
    scale = 1e6 / rows / len(pairs)
    out: list[tuple[str, ...]] = [
        ("statement", "calls on/off", "database on", "database off", "thread on", "thread off")
    ]
    labels = sorted(
        {*profiles["on"].parts, *profiles["off"].parts},
        key=lambda label: (
            -abs(
                sum(profiles["on"].parts.get(label, [0, 0, 0])[1:])
                - sum(profiles["off"].parts.get(label, [0, 0, 0])[1:])
            )
        ),
    )
    for label in labels:
        on, off = (profiles[side].parts.get(label, [0, 0.0, 0.0]) for side in ("on", "off"))
        if max(on[1], off[1], on[2], off[2]) * scale < 0.05:
            continue  # under 0.05 µs a row on either side (savepoints, catalogue reads)
        out.append(
            (
                label[:70],
                f"{on[0]}/{off[0]}",
                f"{on[1] * scale:.2f}",
                f"{off[1] * scale:.2f}",
                f"{on[2] * scale:.2f}",
                f"{off[2] * scale:.2f}",
            )
        )
    for name, attribute, index in (
        ("the rest of the session: COPY, COMMIT", "session", 1),
        ("the rest of the thread: Python between statements", "thread", 2),
    ):
        on, off = (
            getattr(profiles[side], attribute)
            - sum(v[index] for v in profiles[side].parts.values())
            for side in ("on", "off")
        )
        cells = (f"{on * scale:.2f}", f"{off * scale:.2f}")
        out.append(
            (name, "", *(cells if index == 1 else ("", "")), *(("", "") if index == 1 else cells))
        )
    out.append(
        (
            "total (session / thread)",
            "",
            f"{profiles['on'].session * scale:.2f}",
            f"{profiles['off'].session * scale:.2f}",
            f"{profiles['on'].thread * scale:.2f}",
            f"{profiles['off'].thread * scale:.2f}",
        )
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reimport", action="store_true", help="then import the same file again")
    parser.add_argument(
        "--identity",
        action="store_true",
        help="also import the file with person matching off, as the baseline",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="with --identity: how many baseline/matched pairs"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="with --identity: the CPU of each statement, matching on and off",
    )
    args = parser.parse_args()
    django_ready()
    from django.db import connection

    from enseigne.contacts.models import Contact, ContactImport
    from enseigne.contacts.validation import clean_email, clean_phone
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from enseigne.network.models import OrgNode

    load_before = os.getloadavg()
    stamp = int(time.time())
    units_made = iter(range(1_000_000))

    def fresh_unit() -> OrgNode:
        """A unit in a network of its own: nothing there holds the file's keys yet."""
        code = f"bench-import-{stamp}-{next(units_made)}"
        with db_scope(ALL):
            root = network.network_create(
                actor=None, name=code, code=code, legal_name="Bench", sending_domain="example.com"
            )
            return network.node_create(
                actor=None, parent=root, kind="unit", name=f"{code}-u", code=f"{code}-u"
            )

    with db_scope(ALL):
        network.builtin_roles_ensure()
    folder = Path(tempfile.mkdtemp())
    path = folder / "contacts.csv"
    bad = make_csv(path, args.rows)
    size_mb = path.stat().st_size / 1e6

    # Baseline 1: the validation alone, no database, on the first 100k rows.
    sample = min(args.rows, 100_000)
    import csv
    import itertools

    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(itertools.islice(csv.DictReader(handle, delimiter=";"), sample))
    start = time.perf_counter()
    for email, phone in ((row["email"], row["mobile"]) for row in rows):
        with contextlib.suppress(ValueError):
            clean_email(email)
        clean_phone(phone)
    validate_rate = sample / (time.perf_counter() - start)

    profiles = {"on": StatementProfile(), "off": StatementProfile()}

    def timed_import(unit: OrgNode, side: str = "on") -> tuple[ContactImport, Timing]:
        imp = queued_import(unit, path)
        timing = timed_run(imp.pk, profiles[side] if args.profile else None)
        with db_scope([unit.path]):
            imp.refresh_from_db()
        return imp, timing

    from django.conf import settings

    from enseigne.contacts import records

    product_hooks = settings.ENSEIGNE_RECORD_HOOKS

    def plain_import() -> Timing:
        settings.ENSEIGNE_RECORD_HOOKS = []
        records._hooks.cache_clear()
        try:
            return timed_import(fresh_unit(), "off")[1]
        finally:
            settings.ENSEIGNE_RECORD_HOOKS = product_hooks
            records._hooks.cache_clear()

    # The import itself, end to end (read, validate, dedup, write, consent, progress), and
    # with --identity the baseline beside it, alternately first and second.
    pairs: list[tuple[Timing, Timing]] = []  # (matched, baseline)
    for turn in range(args.repeat if args.identity else 1):
        plain_first = plain_import() if args.identity and turn % 2 == 0 else None
        unit = fresh_unit()
        imp, timing = timed_import(unit)
        if args.identity:
            pairs.append((timing, plain_first or plain_import()))
    elapsed = timing.wall
    with db_scope([unit.path]):
        landed = Contact.objects.filter(unit=unit).count()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The same file again: every row now meets its contact (the matching path).
    again, again_timing = timed_import(unit) if args.reimport else (None, None)
    again_elapsed = again_timing.wall if again_timing else 0.0

    # Baseline 2: the floor for any importer here: COPY of the raw rows (no validation, no
    # dedup, no indexes) into a temporary table, in one transaction.
    copy_rate = None
    if connection.vendor == "postgresql":
        import csv

        from django.db import transaction

        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, delimiter=";")
            next(reader)  # the header
            whole = [tuple(row) for row in reader]
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE bench_copy (prenom text, nom text, email text, mobile text, "
                "naissance text) ON COMMIT DROP"
            )
            with cursor.cursor.copy("COPY bench_copy FROM STDIN") as copy:
                for row in whole:
                    copy.write_row(row)
        copy_rate = len(whole) / (time.perf_counter() - start)
        del whole

    rows = [("measure", "value")]
    rows += [
        ("database", connection.vendor),
        ("rows in file", f"{args.rows:,} ({size_mb:.0f} MB), {bad:,} bad"),
        (
            "created / unchanged / rejected",
            f"{imp.created_count:,} / {imp.unchanged_count:,} / {imp.rejected_count:,}",
        ),
        ("contacts in unit afterwards", f"{landed:,}"),
        (
            "import, end to end (the last one)",
            f"{elapsed:.1f} s = {args.rows / elapsed:,.0f} rows/s",
        ),
    ]
    if pairs:
        rows += matching_cost_rows(pairs, args.rows)
        rows.append(
            (
                "machine load (1, 5, 15 min averages), start / end",
                " / ".join(
                    ", ".join(f"{v:.1f}" for v in load) for load in (load_before, os.getloadavg())
                ),
            )
        )
    if again:
        rows += [
            (
                "same file again: created / updated / unchanged",
                f"{again.created_count:,} / {again.updated_count:,} / {again.unchanged_count:,}",
            ),
            (
                "same file again, end to end",
                f"{again_elapsed:.1f} s = {args.rows / again_elapsed:,.0f} rows/s",
            ),
        ]
    rows += [
        ("baseline: validation only (no DB, first 100k rows)", f"{validate_rate:,.0f} rows/s"),
        (
            "baseline: bare COPY into a temp table (no checks)",
            f"{copy_rate:,.0f} rows/s" if copy_rate else "PostgreSQL only",
        ),
        ("peak memory (RSS)", f"{peak_mb:,.0f} MB"),
    ]
    table("Contact import", rows)
    if args.profile and pairs:
        table(
            f"Where the CPU goes, µs a row (sum of {len(pairs)} imports a side)",
            profile_rows(profiles, pairs, args.rows),
        )


if __name__ == "__main__":
    main()
