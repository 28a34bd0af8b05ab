"""Import benchmark: an N-row CSV with 2 % bad rows, validated and deduplicated.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/enseigne_bench DATABASE_APP_ROLE=enseigne_app \
        .venv/bin/python bench/import_csv.py --rows 1000000

Prints rows/s end to end and peak memory (taken after the first import), with
``--reimport`` the same file imported a second time (every row already there), beside two
baselines of the same run: the bare validation loop (clean_email + clean_phone, no
database) and the bare PostgreSQL COPY of the same rows into a temporary table.

``--identity`` also imports the file, first, into another unit with the record hooks off
(no person matching): the product's import (matching on) is then compared with it in the
same run (issue 20: at most 15 % slower). The matched run comes second, on the bigger
tables, so the difference it shows is not flattered.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import tempfile
import time
from pathlib import Path

from _setup import django_ready, table

# Real mailbox providers: example.com is a placeholder domain, which gives no matching key.
DOMAINS = ("orange.fr", "gmail.com", "free.fr", "laposte.net", "sfr.fr", "hotmail.fr")


def make_csv(path: Path, rows: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    bad = 0
    with path.open("w", encoding="utf-8") as out:
        out.write("prenom;nom;email;mobile;naissance\n")
        for i in range(rows):
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reimport", action="store_true", help="then import the same file again")
    parser.add_argument(
        "--identity",
        action="store_true",
        help="first import the file with person matching off, as the baseline",
    )
    args = parser.parse_args()
    django_ready()
    from django.db import connection

    from enseigne.contacts.importer import run_import
    from enseigne.contacts.models import Contact, ContactImport
    from enseigne.contacts.validation import clean_email, clean_phone
    from enseigne.lib.rowsecurity import ALL, db_scope
    from enseigne.network import services as network
    from enseigne.network.models import OrgNode

    with db_scope(ALL):
        network.builtin_roles_ensure()
        root = OrgNode.objects.filter(code="bench").first() or network.network_create(
            actor=None, name="Bench", code="bench", legal_name="Bench", sending_domain="example.com"
        )
        code = f"bench-import-{int(time.time())}"
        unit = network.node_create(actor=None, parent=root, kind="unit", name=code, code=code)
        plain_unit = network.node_create(
            actor=None, parent=root, kind="unit", name=f"{code}-plain", code=f"{code}-plain"
        )
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

    def timed_import(unit=unit) -> tuple[ContactImport, float]:
        imp = queued_import(unit, path)
        start = time.perf_counter()
        run_import(imp.pk)
        elapsed = time.perf_counter() - start
        with db_scope([unit.path]):
            imp.refresh_from_db()
        return imp, elapsed

    plain_elapsed = None
    if args.identity:
        from django.conf import settings

        from enseigne.contacts import records

        hooks = settings.ENSEIGNE_RECORD_HOOKS
        settings.ENSEIGNE_RECORD_HOOKS = []
        records._hooks.cache_clear()
        _plain, plain_elapsed = timed_import(plain_unit)
        settings.ENSEIGNE_RECORD_HOOKS = hooks
        records._hooks.cache_clear()

    # The import itself, end to end (read, validate, dedup, write, consent, progress).
    imp, elapsed = timed_import()
    with db_scope([unit.path]):
        landed = Contact.objects.filter(unit=unit).count()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The same file again: every row now meets its contact (the matching path).
    again, again_elapsed = timed_import() if args.reimport else (None, 0.0)

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
        ("import, end to end", f"{elapsed:.1f} s = {args.rows / elapsed:,.0f} rows/s"),
    ]
    if plain_elapsed:
        rows += [
            (
                "baseline: the same import, person matching off",
                f"{plain_elapsed:.1f} s = {args.rows / plain_elapsed:,.0f} rows/s",
            ),
            ("person matching costs", f"{(elapsed / plain_elapsed - 1) * 100:+.1f} %"),
        ]
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


if __name__ == "__main__":
    main()
