"""One way to page a list endpoint: ``limit`` and ``offset`` in, ``count`` and ``results`` out.

An out-of-range ``limit`` or a negative ``offset`` is refused (422 naming the parameter), not
quietly clamped: an integration that asks for 1,000 rows and gets 500 would believe it has
them all. Pages follow the selector's order with the primary key last, so two pages never
share or skip a row when several rows sort alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db.models import QuerySet
from ninja import Field, Schema

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageParams(Schema):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Rows per page (1–500).")
    offset: int = Field(0, ge=0, le=2**31 - 1, description="Rows to skip.")


_pages: dict[type, type[Schema]] = {}


def page_of(item: type[Schema]) -> type[Schema]:
    """The page schema of ``item`` (``ContactOut`` → ``ContactOutPage``), made once."""
    if item not in _pages:
        name = f"{item.__name__.removesuffix('Out')}Page"
        _pages[item] = type(
            name,
            (Schema,),
            {"__annotations__": {"count": int, "results": list[item]}, "__module__": __name__},
        )
    return _pages[item]


def paginate(
    rows: QuerySet, params: PageParams, to_out: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    ordering = list(rows.query.order_by or rows.model._meta.ordering or [])
    if "pk" not in ordering and "-pk" not in ordering:
        rows = rows.order_by(*ordering, "pk")
    page: Iterable[Any] = rows[params.offset : params.offset + params.limit]
    return {
        "count": rows.count(),
        "results": [to_out(row) for row in page] if to_out else list(page),
    }
