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

import itertools
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from enseigne.contacts.fields import ATTRIBUTE_PREFIX, field_label
from enseigne.contacts.import_reader import FileRow, read_rows
from enseigne.contacts.import_writer import BatchWriter, Chunk, Row, new_rejection, split_repeats
from enseigne.contacts.models import ContactImport, CustomAttribute, ImportRejection
from enseigne.contacts.services import unit_country
from enseigne.contacts.validation import (
    FieldError,
    clean_attribute,
    clean_birthday,
    clean_boolean,
    clean_country,
    clean_email,
    clean_language,
    clean_phone,
    folded,
)
from enseigne.lib.imports import (
    import_checkpoint,
    import_done,
    import_run,
    import_unreadable,
    reasons_as_source,
)
from enseigne.lib.imports import import_give_up as give_up
from enseigne.lib.rowsecurity import db_scope

BASE_TARGETS = (
    "email",
    "phone",
    "country",
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
    return [key for key, _label in import_target_choices()]


def import_target_choices() -> list[tuple[str, str]]:
    """The contact fields a column can fill: (key kept in the mapping, label people read)."""
    attributes = CustomAttribute.objects.order_by("key").values_list("key", "label")
    return [
        *((key, field_label(key)) for key in BASE_TARGETS),
        *((f"{ATTRIBUTE_PREFIX}{key}", label) for key, label in attributes),
    ]


# Header names each field is proposed for, compared without case, accents or
# punctuation ("Tél." is "tel", "E-mail" is "e mail").
_GUESSES = {
    "email": {"email", "e-mail", "mail", "courriel", "adresse email", "adresse e-mail",
              "adresse mail", "email address", "e-mail address"},
    "phone": {"phone", "mobile", "telephone", "téléphone", "tel", "tél", "portable", "gsm",
              "téléphone portable", "téléphone mobile", "tél portable", "tél mobile",
              "numéro de téléphone", "numéro de portable", "numéro mobile", "n° de téléphone",
              "mobile phone", "cell phone", "cellphone", "phone number", "mobile number"},
    "country": {"country", "pays", "country code", "code pays", "pays iso", "iso country"},
    "first_name": {"first_name", "firstname", "first name", "prenom", "prénom", "given name"},
    "last_name": {"last_name", "lastname", "last name", "nom", "name", "surname",
                  "nom de famille", "family name"},
    "birthday": {"birthday", "birthdate", "date de naissance", "naissance", "anniversaire",
                 "date of birth"},
    "language": {"language", "langue", "lang"},
    "is_customer": {"customer", "client", "is_customer"},
    "tags": {"tags", "étiquettes", "etiquettes"},
    "consent_email": {"optin_email", "opt-in email", "consent_email", "consentement email"},
    "consent_sms": {"optin_sms", "opt-in sms", "consent_sms", "consentement sms"},
}  # fmt: skip
_GUESS_BY_NAME = {folded(name): target for target, names in _GUESSES.items() for name in names}


def guess_mapping(columns: list[str], samples: list[list[str]] | None = None) -> dict[str, str]:
    """Each column's proposed field, from its header; a column the header does not place
    whose first values (``samples``: the first rows) are all countries is the country."""
    mapping = {}
    targets = import_targets()
    for column in columns:
        target = _GUESS_BY_NAME.get(folded(column))
        if target is not None:
            if target not in mapping.values():
                mapping[column] = target
        elif f"attributes.{column.strip().lower()}" in targets:
            mapping[column] = f"attributes.{column.strip().lower()}"
    if samples and "country" not in mapping.values():
        for index, column in enumerate(columns):
            if column not in mapping and _all_countries(
                row[index] for row in samples if index < len(row)
            ):
                mapping[column] = "country"
                break
    return mapping


def _all_countries(values) -> bool:
    seen = [v for v in (value.strip() for value in values) if v]
    if len(seen) < 3:  # too few to tell a country column from chance
        return False
    try:
        for value in seen:
            clean_country(value)
    except FieldError:
        return False
    return True


Problem = tuple[str, str, str]  # (column, value, reason)


class RowValidator:
    def __init__(self, contact_import: ContactImport):
        # In the file's column order: a row's report lines read left to right (a JSON
        # mapping comes back from PostgreSQL with its keys sorted).
        order = {column: index for index, column in enumerate(contact_import.columns)}
        self.mapping = {
            c: t
            for c, t in sorted(contact_import.mapping.items(), key=lambda i: order.get(i[0], 0))
            if t
        }
        self.country = unit_country(contact_import.unit)
        self.country_column = next((c for c, t in self.mapping.items() if t == "country"), None)
        keys = [t.split(".", 1)[1] for t in self.mapping.values() if t.startswith("attributes.")]
        self.attributes = {a.key: a for a in CustomAttribute.objects.filter(key__in=keys)}

    def validate(self, number: int, raw: dict) -> tuple[Row | None, list[Problem]]:
        """(the row, the values left out of it), or (None, why the row is refused).

        A bad value is left out and reported; the row is refused only when it leaves no
        valid email address and no valid phone number to reach the person by."""
        row = Row(number=number)
        problems: list[Problem] = []
        contact_problems: list[Problem] = []
        country: str | None = self.country
        if self.country_column is not None:
            value = (raw.get(self.country_column) or "").strip()
            if value:
                try:
                    country = clean_country(value)
                except FieldError as exc:
                    # Nor is it the unit's country: a national number is read with no
                    # country, so only international ones (+41…) get through.
                    country = None
                    problems.append((self.country_column, value[:200], str(exc)))
        for column, target in self.mapping.items():
            value = raw.get(column) or ""
            value = value.strip()
            if not value or target == "country":
                continue
            try:
                if target == "email":
                    row.values["email"] = clean_email(value)
                elif target == "phone":
                    row.values["phone"] = clean_phone(value, country)
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
                if target in {"consent_email", "consent_sms"}:
                    # An unreadable answer is not a yes, whatever the file declares.
                    row.consent[target.removeprefix("consent_")] = False
                problem = (column, value[:200], str(exc))
                (contact_problems if target in {"email", "phone"} else problems).append(problem)
        if row.values.get("email") or row.values.get("phone"):
            return row, contact_problems + problems
        if not contact_problems:
            contact_problems.append(
                ("", "", _("no email address and no phone number: nothing to contact"))
            )
        return None, contact_problems + problems


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


def run_import(import_id: int) -> ContactImport:
    """Run (or resume) one import; safe to call twice (``lib.imports.import_run``)."""
    return import_run(ContactImport, import_id, _run_claimed, "unit__profile")


# What a failed import says (lib.imports.import_give_up fills in where it stopped).
_STOPPED = gettext_lazy(
    "Stopped by an unexpected error at line %(line)s. The lines before it were imported; "
    "the ones from there on were not. Start the import again, or tell your administrator "
    "if it happens again."
)


def import_give_up(import_id: int) -> None:
    """Mark an import that failed its last attempt as failed, saying where it stopped.

    Each batch committed with its progress, so everything before that line is in the base
    and nothing after it was touched; the user sees that, not an endless progress bar.
    """
    give_up(ContactImport, import_id, _STOPPED)


def _broken_quote(contact_import: ContactImport, file_row: FileRow) -> ImportRejection:
    return new_rejection(
        contact_import,
        file_row.line,
        "",
        file_row.text,
        _(
            "a quotation mark opened on this line does not close where it should, so the line "
            "cannot be split into columns: check its quotation marks"
        ),
    )


def _line_count(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


def _run_claimed(contact_import: ContactImport) -> ContactImport:
    import_id = contact_import.pk
    scope = [contact_import.unit_path]
    try:
        header, file_rows = read_rows(contact_import.file_path)
    except (UnicodeDecodeError, OSError) as exc:
        import_unreadable(contact_import, exc)
        return contact_import
    batch_rows = settings.IMPORT_BATCH_ROWS
    if contact_import.total_rows is None:  # not counted at upload: the lines, for progress
        estimate = _line_count(contact_import.file_path) - 1
        with db_scope(scope):
            ContactImport.objects.filter(pk=import_id).update(total_rows=max(estimate, 0))
    validator = RowValidator(contact_import)
    writer = BatchWriter(contact_import)
    position = {name: index for index, name in reversed(list(enumerate(header)))}
    columns = [(column, position.get(column)) for column in validator.mapping]
    file_rows = itertools.islice(file_rows, contact_import.processed_rows, None)  # resume

    language = translation.get_language()
    copy_fresh = (
        connection.vendor == "postgresql"
    )  # read here: the helper thread opens no connection

    refused, skipped = ImportRejection.Kind.REFUSED, ImportRejection.Kind.FIELD_SKIPPED

    def validate_chunk() -> Chunk:
        translation.activate(language)  # the helper thread's own language (thread-local)
        valid: list[Row] = []
        rejections: list[ImportRejection] = []
        height = 0
        # The helper thread is the only reader of the file, one chunk after the other. The
        # checks' reasons are kept as their source text and parameters, so that the report
        # reads in each reader's language (``lib.imports``), not the importer's.
        with reasons_as_source():
            for file_row in itertools.islice(file_rows, batch_rows):
                height += 1
                fields = file_row.fields
                if fields is None:
                    rejections.append(_broken_quote(contact_import, file_row))
                    continue
                width = len(fields)
                raw = {c: fields[i] for c, i in columns if i is not None and i < width}
                row, problems = validator.validate(file_row.line, raw)
                kind = refused if row is None else skipped
                rejections.extend(
                    new_rejection(contact_import, file_row.line, c, v, r, kind)
                    for c, v, r in problems
                )
                if row is not None:
                    valid.append(row)
        fresh, repeats = split_repeats(valid)
        writer.prepare(fresh)  # what the record hooks would do on the writer's thread
        fresh_copy = writer.fresh_copy(fresh) if fresh and copy_fresh else ""
        return Chunk(height, fresh, repeats, rejections, fresh_copy)

    # Validation is pure Python and touches no database: the next chunk is validated in a
    # helper thread while this one waits for PostgreSQL to write the current chunk.
    offset = contact_import.processed_rows
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-validate") as pool,
        _quick_handover(),
    ):
        upcoming = pool.submit(validate_chunk)
        while (chunk := upcoming.result()).height:
            upcoming = pool.submit(validate_chunk)  # the next chunk, while this one is written
            height, rejections = chunk.height, chunk.rejections
            with db_scope(scope), transaction.atomic():
                result = writer.write_chunk(chunk)
                rejections.extend(result.rejections)
                ImportRejection.objects.bulk_create(rejections, batch_size=2000)
                import_checkpoint(
                    ContactImport,
                    import_id,
                    {"processed_rows": offset},
                    processed_rows=offset + height,
                    created_count=F("created_count") + result.created,
                    updated_count=F("updated_count") + result.updated,
                    unchanged_count=F("unchanged_count") + result.unchanged,
                    rejected_count=F("rejected_count")
                    + len({r.row_number for r in rejections if r.kind == refused}),
                )
            offset += height
    import_done(contact_import, offset)
    return contact_import
