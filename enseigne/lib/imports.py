"""What every CSV import (contacts, orders) shows the same way: its progress, the columns it
left out, and its row-by-row report grouped by kind. Imports no app: each importer's model
and problem rows are passed in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.utils.translation import gettext as _

REPORT_LINES_SHOWN = 20


def check_upload_size(size: int) -> None:
    """Every import's one size limit, with an error that names it (the page checks the
    upload's size before reading it; the importer checks what it is handed)."""
    if size > settings.IMPORT_MAX_BYTES:
        raise ValidationError(
            {
                "file": _("The file is larger than %(size)s MB.")
                % {"size": settings.IMPORT_MAX_BYTES // 1_000_000}
            }
        )


class ImportProgress:
    """Mixed into an import model with ``status`` (``done``/``failed`` when finished),
    ``total_rows``, ``processed_rows``, ``columns`` and ``mapping``."""

    status: str
    total_rows: int | None
    processed_rows: int
    columns: list[str]
    mapping: dict[str, str]

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == "done" else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))

    @property
    def is_finished(self) -> bool:
        return self.status in {"done", "failed"}

    @property
    def ignored_columns(self) -> list[str]:
        """The file's columns mapped to no field: their values were not imported."""
        mapped = {column for column, target in self.mapping.items() if target}
        return [column for column in self.columns if column not in mapped]


def import_report(finished: bool, lines: QuerySet, kinds: Iterable[tuple[str, Any, Any]]) -> dict:
    """A finished import's report by kind, in the order of ``kinds`` (kind, heading, what to
    do): the first lines of each and how many there are. ``lines`` are the import's problem
    rows, with ``kind``, ``row_number``, ``field``, ``value`` and ``reason``."""
    if not finished:
        return {"report": []}
    counts = dict(lines.values_list("kind").annotate(n=Count("id")).order_by())
    report = [
        {
            "kind": kind,
            "heading": heading,
            "note": note,
            "count": counts[kind],
            "lines": lines.filter(kind=kind)[:REPORT_LINES_SHOWN],
        }
        for kind, heading, note in kinds
        if counts.get(kind)
    ]
    return {"report": report, "report_counts": counts}
