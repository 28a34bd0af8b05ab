"""Reading an import file: whatever a spreadsheet or an old system wrote, as rows of text.

At upload the bytes become one canonical text file (UTF-8, ``\\n`` line ends, no NUL):
UTF-8 with or without BOM, UTF-16/32 with BOM (Excel's "Unicode text") or without
(guessed from the zero bytes), else Windows-1252; bare CR (old Mac) and mixed line ends;
a stray NUL byte dropped. Only a real spreadsheet or binary file is refused, saying what
it is and how to save it as CSV.

When the import runs, the file is read record by record. A quotation mark that opens a
field and is not closed where it should be would otherwise swallow every line up to the
next quotation mark (or the end of the file): such a line is refused with its number
and reading resumes on the next line, so only the lines the broken quote spans are lost.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from enseigne.contacts.validation import folded
from enseigne.lib.imports import check_upload_size

SEPARATORS = (";", ",", "\t", "|")
# A quoted field spanning more lines than this is a broken quote, not an address: it
# bounds the work a stray quotation mark can cause (each line is re-read at most once).
MAX_RECORD_LINES = 30


class NotText(ValueError):
    """The upload is not a text file; the message says what it is and what to do."""


_SAVE_AS_CSV = gettext_noop(
    "In Excel: File › Save as › “CSV UTF-8 (comma delimited)”. "
    "In LibreOffice: File › Save as › “Text CSV”."
)

# Leading bytes of the files people upload instead of a CSV.
_SIGNATURES = (
    (b"PK\x03\x04", "zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
    (b"%PDF", "pdf"),
    (b"\x89PNG", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF8", "image"),
    (b"\x1f\x8b", "gzip"),
)


def _what_binary(raw: bytes, file_name: str) -> str:
    kind = next((kind for magic, kind in _SIGNATURES if raw.startswith(magic)), "")
    suffix = Path(file_name).suffix.lower()
    if kind == "zip":
        head = raw[:2000]
        if b"xl/" in head or suffix in {".xlsx", ".xlsm"}:
            return _("an Excel workbook (.xlsx)")
        if b"opendocument.spreadsheet" in head or suffix == ".ods":
            return _("a LibreOffice/OpenDocument spreadsheet (.ods)")
        return _("a ZIP archive")
    return {
        "xls": _("an old-format Excel workbook (.xls)"),
        "pdf": _("a PDF document"),
        "image": _("an image"),
        "gzip": _("a compressed (gzip) file"),
    }.get(kind, _("a binary file"))


def _not_text(raw: bytes, file_name: str) -> NotText:
    return NotText(
        _("This file is %(what)s, not a CSV text file. Save it as CSV and upload that: %(how)s")
        % {"what": _what_binary(raw, file_name), "how": _(_SAVE_AS_CSV)}
    )


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _guess_encoding(raw: bytes) -> tuple[str, int]:
    """(encoding, BOM length) from the BOM, else from where the zero bytes fall."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:  # FF FE 00 00 is also UTF-16's BOM before a NUL: the decoding decides
                codecs.getincrementaldecoder(encoding)().decode(raw[len(bom) : len(bom) + 4096])
            except UnicodeDecodeError:
                continue
            return encoding, len(bom)
    sample = raw[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) // 2
        # "e\0m\0a\0": UTF-16 LE text has a zero in nearly every other byte (a NUL character
        # in it puts zeros on both sides); a few stray NULs in UTF-8 text do not make it so.
        if odd > 0.8 * half and even < 0.25 * odd:
            return "utf-16-le", 0
        if even > 0.8 * half and odd < 0.25 * even:
            return "utf-16-be", 0
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252", 0
    return "utf-8", 0


_CONTROLS = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r\f\v") + "\x7f"
_DROP_CONTROLS = str.maketrans("", "", "\x00")


def decode_upload(raw: bytes, file_name: str = "") -> str:
    """The upload as canonical text (``\\n`` line ends, no NUL), or NotText."""
    if any(raw.startswith(magic) for magic, _kind in _SIGNATURES):
        raise _not_text(raw, file_name)
    encoding, skip = _guess_encoding(raw)
    text = raw[skip:].decode(encoding, errors="replace")
    # A stray NUL or two (a bad export, a truncated copy) is noise; text whose sample is
    # full of control characters is not a text file at all.
    sample = text[:65536]
    controls = sum(sample.count(c) for c in _CONTROLS)
    if controls > max(8, len(sample) // 100) or "\ufffd" * 8 in sample:
        raise _not_text(raw, file_name)
    text = text.translate(_DROP_CONTROLS)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def sniff_separator(header_line: str) -> str:
    return max(SEPARATORS, key=header_line.count)


@dataclass(slots=True)
class FileRow:
    """One row of the file: its first line's number and its fields, or None when refused."""

    line: int
    fields: list[str] | None
    text: str = ""  # a refused line as it was written


class _Lines:
    """The file's lines for csv.reader, remembering those of the current record; lines put
    back are read again. Stops early (as if the file ended) when a record grows too long."""

    def __init__(self, handle) -> None:
        self.source = handle
        self.number = 0  # of the last line read from the file
        self.pending: list[tuple[int, str]] = []  # put back, last first
        self.record: list[tuple[int, str]] = []
        self.capped = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        if len(self.record) >= MAX_RECORD_LINES:
            self.capped = True
            raise StopIteration
        if self.pending:
            entry = self.pending.pop()
        else:
            line = next(self.source)
            self.number += 1
            entry = (self.number, line)
        self.record.append(entry)
        return entry[1]


def read_rows(path: str | Path) -> tuple[list[str], Iterator[FileRow]]:
    """(the header's fields, the data rows). Blank lines are skipped: they are not rows."""
    handle = open(path, encoding="utf-8", newline="")  # noqa: SIM115 (the generator closes it)
    lines = _Lines(handle)
    first = ""
    for first in lines:
        lines.record.clear()  # blank lines before the header are no record
        if first.strip():
            break
    separator, header = parse_header(first)
    return header, _rows(handle, lines, separator, len(header))


def is_row(fields: list[str], line: str) -> bool:
    """A line of spaces, or nothing, is blank: not a row (a line of separators is one, and
    so is ``""``, a quoted empty value)."""
    return bool(fields) and (len(fields) > 1 or bool(line.strip(" \r\n")))


def count_rows(path: str | Path) -> int | None:
    """The data rows of a stored upload, counted at the csv module's speed so the progress
    has its total from the upload on (a million rows in about a second). Exact for a
    well-formed file; where a broken quote spans lines the import's own reading, which
    refuses those lines one by one, sets the final count at its end."""
    with open(path, encoding="utf-8", newline="") as handle:
        header = next((line for line in handle if line.strip()), "")
        try:
            last = ""

            def lines():
                nonlocal last
                for last in handle:  # noqa: B007, UP028 (is_row reads the last line)
                    yield last

            reader = csv.reader(lines(), delimiter=sniff_separator(header))
            return sum(1 for row in reader if is_row(row, last))
        except csv.Error:
            return None


def parse_header(line: str) -> tuple[str, list[str]]:
    """(the separator, the column names) of the file's first non-blank line."""
    separator = sniff_separator(line)
    fields = next(csv.reader([line], delimiter=separator), [])
    return separator, [name.strip() for name in fields]


def first_line(text: str) -> str:
    return next((line for line in text.split("\n", 50) if line.strip()), "")


def _rows(handle, lines: _Lines, separator: str, width: int) -> Iterator[FileRow]:
    with handle:
        while True:
            reader = csv.reader(lines, delimiter=separator)
            for fields in reader:
                record = lines.record
                if len(record) == 1:
                    lines.record = []
                    if is_row(fields, record[0][1]):
                        yield FileRow(record[0][0], fields)
                    continue
                # A quoted field spans lines: an address or a note, or a broken quote.
                quotes = sum(line.count('"') for _number, line in record)
                if not lines.capped and len(fields) == width and quotes % 2 == 0:
                    lines.record = []
                    yield FileRow(record[0][0], fields)
                    continue
                # The first line opened a quote that does not close where it should:
                # refuse it and read again from the next line.
                lines.record, lines.capped = [], False
                lines.pending.extend(reversed(record[1:]))
                yield FileRow(record[0][0], None, record[0][1].rstrip("\n"))
                break
            else:
                if not lines.record:
                    return
                # The file ended inside the record (an unterminated quote on a last line
                # is taken as closed there: it lost nothing).
                record, lines.record = lines.record, []
                if len(record) > 1:
                    lines.pending.extend(reversed(record[1:]))
                    yield FileRow(record[0][0], None, record[0][1].rstrip("\n"))


def clean_mapping(
    mapping: Mapping[str, str], columns: Collection[str], targets: Collection[str]
) -> dict[str, str]:
    """An import's column → field mapping, checked: each named column exists in the file,
    each field is one of ``targets`` and is mapped once; unmapped columns are dropped. One
    rule for every importer (contacts, orders); each adds its own required fields."""
    clean: dict[str, str] = {}
    for column, target in mapping.items():
        if not target:
            continue
        if column not in columns:
            raise ValidationError(
                {"mapping": _("The file has no column “%(column)s”.") % {"column": column}}
            )
        if target not in targets:
            raise ValidationError(
                {
                    "mapping": _("Unknown field “%(field)s” for column “%(column)s”.")
                    % {"field": target, "column": column}
                }
            )
        if target in clean.values():
            raise ValidationError(
                {"mapping": _("Two columns are mapped to “%(field)s”.") % {"field": target}}
            )
        clean[column] = target
    return clean


@dataclass(frozen=True)
class StoredUpload:
    """An uploaded CSV file kept as UTF-8 text for the worker, and what its first line says."""

    path: str
    columns: list[str]
    sha256: str
    total_rows: int | None
    file_name: str

    def import_fields(self) -> dict:
        """The fields every import model (``lib.imports.ImportProgress``) keeps of its file."""
        return {
            "file_name": self.file_name[:255],
            "file_path": self.path,
            "file_sha256": self.sha256,
            "columns": self.columns,
            "total_rows": self.total_rows,
        }


def store_upload(content: bytes, file_name: str, prefix: str) -> StoredUpload:
    """Every import's first step: decode the upload (any encoding a spreadsheet writes),
    check its first line names distinct columns, store it as UTF-8 with ``\n`` line ends
    under ``MEDIA_ROOT/imports``. A ``ValidationError`` on ``file`` says what is wrong."""
    try:
        text = decode_upload(content, file_name)
    except NotText as exc:
        raise ValidationError({"file": str(exc)}) from None
    header = first_line(text)
    if not header.strip():
        raise ValidationError(
            {"file": _("The file is empty or its first line (the column names) is blank.")}
        )
    _separator, columns = parse_header(header)
    if len(set(columns)) != len(columns):
        raise ValidationError({"file": _("Two columns have the same name in the first line.")})
    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}{uuid.uuid4()}.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return StoredUpload(
        path=str(path),
        columns=columns,
        sha256=hashlib.sha256(content).hexdigest(),
        total_rows=count_rows(path),
        file_name=file_name,
    )


def guess_table(guesses: Mapping[str, Collection[str]]) -> dict[str, str]:
    """A field per header name (``{field: names}``), names compared as ``folded`` does:
    without case, accents or punctuation ("Tél." is "tel")."""
    return {folded(name): target for target, names in guesses.items() for name in names}


def guess_by_name(columns: list[str], table: Mapping[str, str]) -> dict[str, str]:
    """Each column's proposed field from its name (``guess_table``), a field once."""
    mapping: dict[str, str] = {}
    for column in columns:
        target = table.get(folded(column))
        if target is not None and target not in mapping.values():
            mapping[column] = target
    return mapping


def import_create(
    model: Any,
    actor: Any,
    upload: tuple[str, bytes],
    guess: Callable[[StoredUpload], dict[str, str]],
    **owner: Any,
) -> Any:
    """Every import's first step: the upload (its name and content) checked for size and
    stored (``store_upload``, named after the model), the import created with its owner
    (its unit or node and ``unit_path``), its importer and the mapping ``guess`` proposes."""
    file_name, content = upload
    check_upload_size(len(content))
    stored = store_upload(content, file_name, prefix=f"{model._meta.model_name}-")
    return model.objects.create(
        created_by=actor, mapping=guess(stored), **owner, **stored.import_fields()
    )
