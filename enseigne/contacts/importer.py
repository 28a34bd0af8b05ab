"""CSV import engine: validate, deduplicate within the unit, write in batches.

Each batch commits on its own, so progress is visible and a crashed import can simply be
run again: rows already written match their contact and create nothing. Existing
contacts are never damaged: only their empty fields are filled, tags are added, and
consent from a file is recorded only where the contact has no consent history for that
channel (an import never overrides an unsubscribe).

This module maps, reads and validates the file and runs the batches; writing one batch
is ``import_writer``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import polars as pl
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from enseigne.contacts.import_writer import BatchWriter, Chunk, Row, new_rejection, split_repeats
from enseigne.contacts.models import ContactImport, CustomAttribute, ImportRejection
from enseigne.contacts.services import unit_country
from enseigne.contacts.validation import (
    FieldError,
    clean_attribute,
    clean_birthday,
    clean_boolean,
    clean_email,
    clean_language,
    clean_phone,
)
from enseigne.lib.rowsecurity import ALL, db_scope

BASE_TARGETS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "language",
    "is_customer",
    "tags",
    "consent_email",
    "consent_sms",
)


def import_targets() -> list[str]:
    return [
        *BASE_TARGETS,
        *(f"attributes.{k}" for k in CustomAttribute.objects.values_list("key", flat=True)),
    ]


_GUESSES = {
    "email": {"email", "e-mail", "mail", "courriel", "adresse email", "adresse e-mail"},
    "phone": {"phone", "mobile", "telephone", "téléphone", "tel", "tél", "portable", "gsm"},
    "first_name": {"first_name", "firstname", "first name", "prenom", "prénom"},
    "last_name": {"last_name", "lastname", "last name", "nom", "name", "surname"},
    "birthday": {"birthday", "birthdate", "date de naissance", "naissance", "anniversaire"},
    "language": {"language", "langue", "lang"},
    "is_customer": {"customer", "client", "is_customer"},
    "tags": {"tags", "étiquettes", "etiquettes"},
    "consent_email": {"optin_email", "opt-in email", "consent_email", "consentement email"},
    "consent_sms": {"optin_sms", "opt-in sms", "consent_sms", "consentement sms"},
}


def guess_mapping(columns: list[str]) -> dict[str, str]:
    mapping = {}
    targets = import_targets()
    for column in columns:
        key = column.strip().lower()
        for target, names in _GUESSES.items():
            if key in names and target not in mapping.values():
                mapping[column] = target
                break
        else:
            if f"attributes.{key}" in targets:
                mapping[column] = f"attributes.{key}"
    return mapping


def sniff_separator(header_line: str) -> str:
    return max((";", ",", "\t", "|"), key=header_line.count)


def read_frame(path: str | Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The file as strings only: nothing is guessed, every value is validated by us."""
    with open(path, encoding="utf-8") as handle:
        header = handle.readline()
    return pl.read_csv(
        path,
        separator=sniff_separator(header),
        infer_schema=False,
        columns=columns,
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )


def count_rows(path: str | Path) -> int:
    """The file's data rows, read the way ``read_frame`` reads them (quoted line breaks
    included), without loading it: shown from the upload on, before the worker starts."""
    with open(path, encoding="utf-8") as handle:
        header = handle.readline()
    frame = pl.scan_csv(
        path,
        separator=sniff_separator(header),
        infer_schema=False,
        truncate_ragged_lines=True,
        raise_if_empty=False,
    )
    return int(frame.select(pl.len()).collect().item())


class RowValidator:
    def __init__(self, contact_import: ContactImport):
        self.mapping = {c: t for c, t in contact_import.mapping.items() if t}
        self.country = unit_country(contact_import.unit)
        keys = [t.split(".", 1)[1] for t in self.mapping.values() if t.startswith("attributes.")]
        self.attributes = {a.key: a for a in CustomAttribute.objects.filter(key__in=keys)}

    def validate(self, number: int, raw: dict) -> tuple[Row | None, list[tuple[str, str, str]]]:
        row = Row(number=number)
        errors: list[tuple[str, str, str]] = []
        for column, target in self.mapping.items():
            value = raw.get(column) or ""
            value = value.strip()
            if not value:
                continue
            try:
                if target == "email":
                    row.values["email"] = clean_email(value)
                elif target == "phone":
                    row.values["phone"] = clean_phone(value, self.country)
                elif target in {"first_name", "last_name"}:
                    row.values[target] = value[:100]
                elif target == "birthday":
                    row.values["birthday"] = clean_birthday(value)
                elif target == "language":
                    row.values["language"] = clean_language(value)
                elif target == "is_customer":
                    row.values["is_customer"] = clean_boolean(value)
                elif target == "tags":
                    row.tags = [
                        t
                        for t in (
                            p.strip().lower()[:50] for p in value.replace(";", ",").split(",")
                        )
                        if t
                    ]
                elif target in {"consent_email", "consent_sms"}:
                    row.consent[target.removeprefix("consent_")] = clean_boolean(value)
                elif target.startswith("attributes."):
                    key = target.split(".", 1)[1]
                    row.attributes[key] = clean_attribute(self.attributes[key], value)
            except FieldError as exc:
                errors.append((column, value[:200], str(exc)))
        if not errors and not row.values.get("email") and not row.values.get("phone"):
            errors.append(("", "", _("no email address and no phone number: nothing to contact")))
        return (None if errors else row), errors


@contextmanager
def _quick_handover(interval: float = 0.001) -> Iterator[None]:
    """Let a thread waiting for the GIL have it within ``interval`` seconds (CPython: 5 ms).

    The writer spends most of a batch waiting for PostgreSQL with the GIL released, then
    needs it back for a moment, dozens of times per batch, from the validation thread,
    which holds it while it works. With the default interval those hand-overs cost about
    a sixth of a large import's time (bench/import_csv.py, 400k rows: 20.1k -> 23.4k rows/s).
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


_UNFINISHED = (ContactImport.Status.QUEUED, ContactImport.Status.RUNNING)


def run_import(import_id: int) -> ContactImport:
    """Run (or resume) one import; safe to call twice."""
    with db_scope(ALL):
        claimed = ContactImport.objects.filter(pk=import_id, status__in=_UNFINISHED).update(
            status=ContactImport.Status.RUNNING, started_at=timezone.now()
        )
        contact_import = ContactImport.objects.select_related("unit__profile").get(pk=import_id)
    if not claimed:
        return contact_import
    with translation.override(contact_import.language or settings.LANGUAGE_CODE):
        return _run_claimed(contact_import)


def import_give_up(import_id: int) -> None:
    """Mark an import that failed its last attempt as failed, saying where it stopped.

    Each batch committed with its progress, so everything before that line is in the base
    and nothing after it was touched; the user sees that, not an endless progress bar.
    """
    with db_scope(ALL):
        contact_import = ContactImport.objects.filter(pk=import_id, status__in=_UNFINISHED).first()
        if contact_import is None:
            return
        with translation.override(contact_import.language or settings.LANGUAGE_CODE):
            error = _(
                "Stopped by an unexpected error at line %(line)s. The lines before it were imported; "
                "the ones from there on were not. Start the import again, or tell your administrator "
                "if it happens again."
            ) % {"line": contact_import.processed_rows + 2}
        _failed(import_id, error)


def _failed(import_id: int, error: str) -> None:
    ContactImport.objects.filter(pk=import_id).update(
        status=ContactImport.Status.FAILED, error=error, finished_at=timezone.now()
    )


def _run_claimed(contact_import: ContactImport) -> ContactImport:
    import_id = contact_import.pk
    scope = [contact_import.unit_path]
    try:
        frame = read_frame(contact_import.file_path)
    except (pl.exceptions.PolarsError, UnicodeDecodeError, OSError) as exc:
        with db_scope(scope):
            _failed(import_id, _("The file could not be read as CSV: %(detail)s") % {"detail": exc})
        contact_import.refresh_from_db()
        return contact_import
    batch_rows = settings.IMPORT_BATCH_ROWS
    with db_scope(scope):
        ContactImport.objects.filter(pk=import_id).update(total_rows=frame.height)
    validator = RowValidator(contact_import)
    writer = BatchWriter(contact_import)
    columns = list(validator.mapping)

    language = translation.get_language()
    copy_fresh = (
        connection.vendor == "postgresql"
    )  # read here: the helper thread opens no connection

    def validate_chunk(offset: int) -> Chunk:
        translation.activate(language)  # the helper thread's own language (thread-local)
        chunk = frame.slice(offset, batch_rows).select(columns)
        valid: list[Row] = []
        rejections: list[ImportRejection] = []
        for index, raw in enumerate(chunk.iter_rows(named=True)):
            number = offset + index + 2  # line 1 is the header
            row, errors = validator.validate(number, raw)
            if row is None:
                rejections.extend(
                    new_rejection(contact_import, number, c, v, r) for c, v, r in errors
                )
            else:
                valid.append(row)
        fresh, repeats = split_repeats(valid)
        fresh_copy = writer.fresh_copy(fresh) if fresh and copy_fresh else ""
        return Chunk(chunk.height, fresh, repeats, rejections, fresh_copy)

    # Validation is pure Python and touches no database: the next chunk is validated in a
    # helper thread while this one waits for PostgreSQL to write the current chunk.
    offsets = range(contact_import.processed_rows, frame.height, batch_rows)
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-validate") as pool,
        _quick_handover(),
    ):
        upcoming = pool.submit(validate_chunk, offsets[0]) if offsets else None
        for position, offset in enumerate(offsets):
            chunk = upcoming.result()
            if position + 1 < len(offsets):
                upcoming = pool.submit(validate_chunk, offsets[position + 1])
            height, rejections = chunk.height, chunk.rejections
            with db_scope(scope), transaction.atomic():
                result = writer.write_chunk(chunk)
                rejections.extend(result.rejections)
                ImportRejection.objects.bulk_create(rejections, batch_size=2000)
                ContactImport.objects.filter(pk=import_id).update(
                    processed_rows=offset + height,
                    created_count=F("created_count") + result.created,
                    updated_count=F("updated_count") + result.updated,
                    unchanged_count=F("unchanged_count") + result.unchanged,
                    rejected_count=F("rejected_count") + len({r.row_number for r in rejections}),
                )
    with db_scope(scope):
        ContactImport.objects.filter(pk=import_id).update(
            status=ContactImport.Status.DONE,
            finished_at=timezone.now(),
            processed_rows=frame.height,
        )
        contact_import.refresh_from_db()
    return contact_import
