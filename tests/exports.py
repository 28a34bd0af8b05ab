"""Reading a CSV download the way a spreadsheet does (enseigne/lib/csvexport.py)."""

from __future__ import annotations

import csv
import io

BOM = b"\xef\xbb\xbf"


def export_body(response) -> bytes:
    return b"".join(response.streaming_content)


def export_rows(response, separator: str = ";") -> list[list[str]]:
    """Every row of the download, header first; it must start with the byte-order mark."""
    body = export_body(response)
    assert body.startswith(BOM), body[:20]
    text = body.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), dialect="excel", delimiter=separator))


def export_dicts(response, separator: str = ";") -> list[dict[str, str]]:
    header, *rows = export_rows(response, separator)
    return [dict(zip(header, row, strict=True)) for row in rows]
