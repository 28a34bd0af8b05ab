"""Per-buyer purchase summaries that segment conditions read instead of the order lines.

"Bought in category X in the last N days" over the raw rows probes every candidate's
orders, then each order's lines (random reads growing with the network). ``CategoryPurchase``
keeps one row per (buyer, category): the time of the buyer's latest sold line in it, so the
condition is an index range on (category, time) giving contact ids (docs/decisions.md,
"Purchase summaries for segments").

``orders_written`` is an order hook (settings ``ENSEIGNE_ORDER_HOOKS``): the writer calls it
in its transaction with the buyers it wrote for, and their rows are recomputed from all
their orders there and then, so a segment counted after the commit sees the new lines.
Lines are never edited or removed (a return is a new negative line, which leaves the sold
line sold), so recomputing only raises a row's time or adds rows (and a row's time never
goes down, which keeps two concurrent writers for one buyer right). An erased record's rows
go with it (foreign key, CASCADE).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from enseigne.contacts.models import Contact

from .models import CategoryPurchase, Order, OrderLine

CHUNK = 500


def _upsert_sql(where: str) -> str:
    quote = connection.ops.quote_name
    summary = quote(CategoryPurchase._meta.db_table)
    orders, lines = quote(Order._meta.db_table), quote(OrderLine._meta.db_table)
    contacts = quote(Contact._meta.db_table)
    # Never back in time: two writers for one buyer at once each see only their own new
    # order; the later commit must not lower what the earlier one wrote.
    greatest = "GREATEST" if connection.vendor == "postgresql" else "MAX"
    # The latest sold line per (buyer, category as UPPER spells it). Only rows that are new
    # or changed reach the INSERT: ON CONFLICT locks (writes) every row it meets, even one
    # its WHERE then leaves alone, which tripled the hook's time on buyers with history.
    return f"""
        INSERT INTO {summary} (contact_id, unit_id, unit_path, category, last_bought_at)
        SELECT g.contact_id, g.unit_id, g.unit_path, g.category, g.last_bought_at
        FROM (
            SELECT c.id AS contact_id, c.unit_id AS unit_id, c.unit_path AS unit_path,
                   UPPER(l.category) AS category, MAX(o.occurred_at) AS last_bought_at
            FROM {orders} o
            JOIN {lines} l ON l.order_id = o.id
            JOIN {contacts} c ON c.id = o.contact_id
            WHERE {where} AND NOT l.is_return AND l.category <> ''
            GROUP BY c.id, c.unit_id, c.unit_path, UPPER(l.category)
        ) g
        LEFT JOIN {summary} s ON s.contact_id = g.contact_id AND s.category = g.category
        WHERE s.id IS NULL OR s.last_bought_at <> g.last_bought_at OR s.unit_path <> g.unit_path
        ON CONFLICT (contact_id, category) DO UPDATE
        SET last_bought_at = {greatest}({summary}.last_bought_at, excluded.last_bought_at),
            unit_id = excluded.unit_id,
            unit_path = excluded.unit_path
    """  # noqa: S608 (table names from the models' metadata, values as parameters)


def refresh(contact_ids: Sequence[int]) -> None:
    """Recompute these buyers' summary rows from their orders (inside the caller's scope)."""
    ids = sorted(set(contact_ids))
    with connection.cursor() as cursor:
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            if connection.vendor == "postgresql":
                cursor.execute(_upsert_sql("o.contact_id = ANY(%s)"), [chunk])
            else:
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(_upsert_sql(f"o.contact_id IN ({marks})"), chunk)


def rebuild() -> int:
    """Recompute every buyer's rows from all orders (the backfill; idempotent). Run it in a
    scope that sees every unit. Returns the number of summary rows."""
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql("o.contact_id IS NOT NULL"))
    return CategoryPurchase.objects.count()


def orders_written(contact_ids: list[int]) -> None:
    """The order hook: recompute the summaries of the buyers just written for."""
    refresh(contact_ids)
