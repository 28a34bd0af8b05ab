"""CSV exports that a spreadsheet cannot turn into formulas (COMPLIANCE.md, Exports)."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator

_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"^\+[0-9 ]{6,20}$")


def _is_dangerous_start(text: str) -> bool:
    """A formula start, also in the forms a spreadsheet may fold to it: fullwidth and small
    ``＝ ＋ － ＠`` (NFKC), or hidden behind leading invisible characters (zero-width, BOM,
    bidi marks and isolates: Unicode format characters) or spaces."""
    if text.startswith(_DANGEROUS_START):
        return True
    if not text:
        return False
    if unicodedata.category(text[0]) == "Cf":
        return True  # nothing legitimate starts with an invisible character
    first = unicodedata.normalize("NFKC", text.lstrip()[:1])
    return first.startswith(_DANGEROUS_START) or first == "\u2212"  # the minus sign


def neutralise(value: object) -> str:
    """The one place exports make a cell safe (COMPLIANCE.md, Exports)."""
    text = "" if value is None else str(value)
    if _is_dangerous_start(text) and not _PHONE.match(text):
        # A leading apostrophe makes spreadsheets show the text as typed, never evaluate it.
        return "'" + text
    return text


# Excel opens a UTF-8 file as UTF-8 only when it starts with a byte-order mark, and a French
# Excel splits columns on ";" (the decimal separator is the comma). Both are the default; a
# user whose spreadsheet expects "," chooses it.
BOM = "\ufeff"
SEPARATORS = {"semicolon": ";", "comma": ","}
DEFAULT_SEPARATOR = "semicolon"


def csv_rows(
    header: Iterable[object], rows: Iterable[Iterable[object]], *, separator: str = ";"
) -> Iterator[bytes]:
    """Yield UTF-8 CSV chunks: the byte-order mark and the header, then each row, every cell
    neutralised. The header is read at once (lazy translations follow the caller's language)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, dialect="excel", delimiter=separator)
    writer.writerow([neutralise(cell) for cell in header])
    first = BOM + buffer.getvalue()

    def chunks() -> Iterator[bytes]:
        yield first.encode()
        for row in rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow([neutralise(cell) for cell in row])
            yield buffer.getvalue().encode()

    return chunks()
