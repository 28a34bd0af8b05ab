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


@dataclass
class _Sums:
    spelling: str = ""
    revenue: Decimal = Decimal(0)
    orders: int = 0
    squares: float = 0.0
    cross: float = 0.0


@dataclass
class Tally:
    """Sums to add, by (unit, month, category) and by (unit, month)."""

    categories: dict[tuple[int, dt.date, str], _Sums] = field(default_factory=dict)
    stores: dict[tuple[int, dt.date], _Sums] = field(default_factory=dict)
    paths: dict[int, str] = field(default_factory=dict)

    def add(
        self,
        unit_id: int,
        unit_path: str,
        month: dt.date,
        lines: Iterable[tuple[str, Decimal]],
    ) -> None:
        """One order of the month: its lines as (category, net amount)."""
        amounts: dict[str, Decimal] = {}
        spellings: dict[str, str] = {}
        for category, amount in lines:
            if not category:
                continue
            key = category.upper()
            amounts[key] = amounts.get(key, Decimal(0)) + amount
            spellings.setdefault(key, category)
        if not amounts:
            return
        self.paths[unit_id] = unit_path
        whole = sum(amounts.values(), Decimal(0))
        x = float(whole)
        store = self.stores.setdefault((unit_id, month), _Sums())
        store.revenue += whole
        store.orders += 1
        store.squares += x * x
        for key, amount in amounts.items():
            sums = self.categories.get((unit_id, month, key))
            if sums is None:
                sums = self.categories[(unit_id, month, key)] = _Sums(spellings[key])
            y = float(amount)
            sums.revenue += amount
            sums.orders += 1
            sums.squares += y * y
            sums.cross += x * y

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
                for (unit_id, month, key), s in chunk:
                    params += [unit_id, self.paths[unit_id], month, key, s.spelling[:120],
                               s.revenue, s.orders, s.squares, s.cross]  # fmt: skip
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
                for (unit_id, month), s in chunk_s:
                    params += [unit_id, self.paths[unit_id], month, s.revenue, s.orders, s.squares]
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
    zone = ZoneInfo(unit_time_zone(unit))
    tally = Tally()
    for occurred_at, lines in orders:
        tally.add(unit.pk, unit.path, month_of(occurred_at, zone), lines)
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
            zone = ZoneInfo(unit_time_zone(unit))
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
                    current, month, lines = order_id, month_of(occurred_at, zone), []
                lines.append((category, amount))
            if lines:
                tally.add(unit.pk, unit.path, month, lines)
            tally.write()
        return CategoryRevenue.objects.count()
