"""Per-buyer purchase summaries that segment conditions read instead of the order lines.

"Bought in category X in the last N days" over the raw rows probes every candidate's
orders, then each order's lines (random reads growing with the network). ``CategoryPurchase``
keeps one row per (buyer, category): the time of the buyer's latest sold line in it, so the
condition is an index range on (category, time) giving contact ids (docs/decisions.md,
"Purchase summaries for segments").

``commerce.order_hooks.orders_written`` keeps it in the writer's transaction, so a segment
counted after the commit sees the new lines: from the orders just written when the writer
names them (``orders_added``: the batch's own lines, whatever the buyers' history), else
from all the buyers' orders (``refresh``). Lines are never edited or removed (a return is a
new negative line, which leaves the sold line sold), so either only raises a row's time or
adds rows, and a row's time never goes down (which keeps two concurrent writers for one
buyer right). An erased record's rows go with it (Django's CASCADE; no database constraint,
see the model).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from enseigne.contacts.models import Contact

from .models import CategoryPurchase, Order, OrderLine

CHUNK = 500


def _upsert_sql(where: str) -> str:
    """The rows of the sold lines of the orders ``where`` selects (alias ``o``), upserted."""
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
        WHERE s.id IS NULL OR s.last_bought_at < g.last_bought_at OR s.unit_path <> g.unit_path
        ON CONFLICT (contact_id, category) DO UPDATE
        SET last_bought_at = {greatest}({summary}.last_bought_at, excluded.last_bought_at),
            unit_id = excluded.unit_id,
            unit_path = excluded.unit_path
    """  # noqa: S608 (table names from the models' metadata, values as parameters)


def _upsert_for(column: str, ids: Sequence[int]) -> None:
    """Upsert the rows of the orders whose ``column`` is in ``ids``: one statement on
    PostgreSQL (an array), chunks of placeholders elsewhere."""
    ids = sorted(set(ids))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if ids:
                cursor.execute(_upsert_sql(f"o.{column} = ANY(%s)"), [ids])
            return
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(_upsert_sql(f"o.{column} IN ({marks})"), chunk)


def refresh(contact_ids: Sequence[int]) -> None:
    """Recompute these buyers' summary rows from all their orders (inside the caller's scope)."""
    _upsert_for("contact_id", contact_ids)


def orders_added(order_ids: Sequence[int]) -> None:
    """Raise the summary rows by these orders' lines only (just written, inside the caller's
    scope): the buyers' earlier orders are in their rows already. Reading the buyers' whole
    history instead was a quarter of the statement at the bench's ~7 orders a buyer
    (bench/orders_ingest.py), and grows with the history."""
    _upsert_for("id", order_ids)


def rebuild() -> int:
    """Recompute every buyer's rows from all orders (the backfill; idempotent). Run it in a
    scope that sees every unit. Returns the number of summary rows."""
    with connection.cursor() as cursor:
        cursor.execute(_upsert_sql("o.contact_id IS NOT NULL"))
    return CategoryPurchase.objects.count()
