"""Each store's monthly net revenue per category (``CategoryRevenue``, ``StoreRevenue``): what
the store dashboard compares with the network's median store, without scanning every store's
lines on each page.

One rule for a row, one place: ``Tally.add`` reads an order (its time and its lines) into the
rows it adds to, both for the orders a writer has just recorded (``orders_tallied``, in the
writer's transaction: the batch API, the CSV import and the conversions endpoint all record
through ``services._write``) and for the rebuild from every order (``rebuild``). Lines are
never edited or removed (a return is a new negative line), so the rows only add up; an upsert
adds a batch's sums to them (``revenue = revenue + excluded.revenue``), which two writers at
once keep right: each adds its own orders, the database serialises the row.

The month is the store's (its time zone, ``network.selectors.unit_time_zone``): a sale at
00:30 on the 1st in Lyon is the new month's. Lines without a category are left out, as the
dashboard's shares are of categorised revenue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection

from enseigne.lib.rowsecurity import ALL, db_scope
from enseigne.network.models import OrgNode
from enseigne.network.selectors import unit_time_zone

from .models import CategoryRevenue, Order, OrderLine, StoreRevenue


def month_of(moment: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The first day of ``moment``'s month in ``zone``."""
    return moment.astimezone(zone).date().replace(day=1)


class _Months:
    """``month_of`` for many moments of one zone: a batch's orders mostly share a month, so
    the month's bounds are kept and a moment inside them costs two comparisons."""

    def __init__(self, zone: dt.tzinfo):
        self.zone = zone
        self.month = dt.date.min
        self.start = self.end = dt.datetime.min.replace(tzinfo=dt.UTC)

    def __call__(self, moment: dt.datetime) -> dt.date:
        if self.start <= moment < self.end:
            return self.month
        month = month_of(moment, self.zone)
        following = (month + dt.timedelta(days=32)).replace(day=1)
        self.month = month
        # In UTC: comparing with a moment in UTC (or a fixed offset) is then cheap.
        self.start = dt.datetime.combine(month, dt.time.min, self.zone).astimezone(dt.UTC)
        self.end = dt.datetime.combine(following, dt.time.min, self.zone).astimezone(dt.UTC)
        if not self.start <= moment < self.end:  # a zone whose midnight is skipped or doubled
            self.end = self.start
        return month


@dataclass
class Tally:
    """Sums to add, by (unit, month, category) and by (unit, month): lists, not objects, as
    a batch of 1,000 orders adds to them 4,000 times (``bench/orders_ingest.py``).

    ``categories`` values: [spelling, revenue, orders, squares, cross]; ``stores`` values:
    [revenue, orders, squares]."""

    categories: dict[tuple[int, dt.date, str], list] = field(default_factory=dict)
    stores: dict[tuple[int, dt.date], list] = field(default_factory=dict)
    paths: dict[int, str] = field(default_factory=dict)
    _keys: dict[str, str] = field(default_factory=dict)  # a spelling's key, computed once

    def add(
        self,
        unit_id: int,
        unit_path: str,
        month: dt.date,
        lines: Iterable[tuple[str, Decimal]],
    ) -> None:
        """One order of the month: its lines as (category, net amount)."""
        keys = self._keys
        amounts: dict[str, Decimal] = {}
        spellings: dict[str, str] = {}
        for category, amount in lines:
            if not category:
                continue
            key = keys.get(category)
            if key is None:
                key = keys[category] = category.upper()
            if key in amounts:
                amounts[key] += amount
            else:
                amounts[key] = amount
                spellings[key] = category
        if not amounts:
            return
        self.paths[unit_id] = unit_path
        whole = sum(amounts.values())
        x = float(whole)
        store = self.stores.get((unit_id, month))
        if store is None:
            self.stores[(unit_id, month)] = [whole, 1, x * x]
        else:
            store[0] += whole
            store[1] += 1
            store[2] += x * x
        categories = self.categories
        for key, amount in amounts.items():
            y = float(amount)
            sums = categories.get((unit_id, month, key))
            if sums is None:
                categories[(unit_id, month, key)] = [spellings[key], amount, 1, y * y, x * y]
            else:
                sums[1] += amount
                sums[2] += 1
                sums[3] += y * y
                sums[4] += x * y

    def write(self) -> None:
        """Add the sums to the rows (one statement a table; rows in key order, so that two
        writers at once lock them in the same order)."""
        if not self.stores:
            return
        quote = connection.ops.quote_name
        table = quote(CategoryRevenue._meta.db_table)
        rows = sorted(self.categories.items())
        with connection.cursor() as cursor:
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
                params: list = []
                for (unit_id, month, key), (spelling, *sums) in chunk:
                    params += [unit_id, self.paths[unit_id], month, key, spelling[:120], *sums]
                cursor.execute(
                    f"""INSERT INTO {table} (unit_id, unit_path, month, category, spelling,
                        revenue, orders, squares, {quote("cross")}) VALUES {values}
                        ON CONFLICT (unit_id, month, category) DO UPDATE SET
                        revenue = {table}.revenue + excluded.revenue,
                        orders = {table}.orders + excluded.orders,
                        squares = {table}.squares + excluded.squares,
                        {quote("cross")} = {table}.{quote("cross")} + excluded.{quote("cross")}
                    """,  # noqa: S608 (table names from the models, values as parameters)
                    params,
                )
            table = quote(StoreRevenue._meta.db_table)
            stores = sorted(self.stores.items())
            for start in range(0, len(stores), 500):
                chunk_s = stores[start : start + 500]
                values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(chunk_s))
                params = []
                for (unit_id, month), sums in chunk_s:
                    params += [unit_id, self.paths[unit_id], month, *sums]
                cursor.execute(
                    f"""INSERT INTO {table} (unit_id, unit_path, month, revenue, orders, squares)
                        VALUES {values}
                        ON CONFLICT (unit_id, month) DO UPDATE SET
                        revenue = {table}.revenue + excluded.revenue,
                        orders = {table}.orders + excluded.orders,
                        squares = {table}.squares + excluded.squares
                    """,  # noqa: S608
                    params,
                )


def orders_tallied(
    unit: OrgNode, orders: Iterable[tuple[dt.datetime, Iterable[tuple[str, Decimal]]]]
) -> None:
    """Add the orders just written for ``unit`` (their time and lines as (category, net
    amount)) to its rows; call inside the writer's transaction."""
    months = _Months(ZoneInfo(unit_time_zone(unit)))
    tally = Tally()
    for occurred_at, lines in orders:
        tally.add(unit.pk, unit.path, months(occurred_at), lines)
    tally.write()


def rebuild() -> int:
    """Recompute every row from all orders (the backfill; idempotent), store by store, in a
    scope that sees every unit. Returns the number of category rows."""
    with db_scope(ALL):
        CategoryRevenue.objects.all().delete()
        StoreRevenue.objects.all().delete()
        units = OrgNode.objects.filter(
            pk__in=Order.objects.values("unit_id").distinct()
        ).select_related("profile")
        for unit in units:
            months = _Months(ZoneInfo(unit_time_zone(unit)))
            tally = Tally()
            current: int | None = None
            month = dt.date.min
            lines: list[tuple[str, Decimal]] = []
            rows = (
                OrderLine.objects.filter(order__unit=unit)
                .exclude(category="")
                .order_by("order_id")
                .values_list("order_id", "order__occurred_at", "category", "amount")
            )
            for order_id, occurred_at, category, amount in rows.iterator(chunk_size=5000):
                if order_id != current:
                    if lines:
                        tally.add(unit.pk, unit.path, month, lines)
                    current, month, lines = order_id, months(occurred_at), []
                lines.append((category, amount))
            if lines:
                tally.add(unit.pk, unit.path, month, lines)
            tally.write()
        return CategoryRevenue.objects.count()
