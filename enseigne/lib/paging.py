"""Pages of a long list without counting all of it.

Counting a million rows to print "1,000,000 contacts" above fifty of them costs more than
the page itself. ``BoundedPaginator`` counts at most ``limit`` + 1 rows: past the limit the
list says "more than 10,000" (``capped``) and offers the first ``limit`` rows' pages; a
search or a filter narrows it to an exact count.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

COUNT_LIMIT = 10_000


class BoundedPaginator(Paginator):
    def __init__(self, object_list, per_page, *, limit: int | None = None, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.limit = COUNT_LIMIT if limit is None else limit

    @cached_property
    def _bounded_count(self) -> int:
        # COUNT over a LIMIT subquery (a QuerySet's): the database stops at limit + 1 rows.
        # Unordered: any limit + 1 rows will do, and sorting them all first would not stop.
        rows = self.object_list.order_by()  # type: ignore[attr-defined]
        return rows[: self.limit + 1].count()

    @property
    def capped(self) -> bool:
        return self._bounded_count > self.limit

    @cached_property
    def count(self) -> int:
        return min(self._bounded_count, self.limit)
