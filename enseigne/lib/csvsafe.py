"""CSV exports that a spreadsheet cannot turn into formulas (COMPLIANCE.md, Exports)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"^\+[0-9 ]{6,20}$")


def neutralise(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_DANGEROUS_START) and not _PHONE.match(text):
        # A leading apostrophe makes spreadsheets show the text as typed, never evaluate it.
        return "'" + text
    return text


def csv_rows(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Yield CSV text chunks: the header then each row, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(cell) for cell in header])
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralise(cell) for cell in row])
        yield buffer.getvalue()
