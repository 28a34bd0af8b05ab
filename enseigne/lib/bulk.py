"""Insert many rows at once: COPY through a staging table on PostgreSQL, bulk_create elsewhere.

PostgreSQL refuses ``COPY FROM`` into a table with row-level security, so the rows are
copied into a temporary table (no policy, dropped straight after) and moved with one
``INSERT … SELECT``. The target table's policy still checks every moved row (its
``WITH CHECK`` side), so this path cannot write outside the current scope either.
On other databases the same call is Django's ``bulk_create``.
"""

from __future__ import annotations

import datetime
import gc
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connection, models

_stage_names = itertools.count()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a batch is read and written, on again after.

    A batch of 1,000 orders holds ~20,000 containers (the JSON's dicts, the cleaned rows,
    the answer) until it is answered: they outlive the young generations, and every two or
    three batches their count set off a full collection of the whole process (Django and
    all), a third of the batch's CPU time (bench/orders_ingest.py). They have no cycles and
    go with their last reference, so nothing waits for the collector; any cycle made
    meanwhile is collected at its next run. Process-wide: a thread that finds it paused
    leaves it to the one that paused it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def bulk_insert(
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[Sequence],
    *,
    ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> list[tuple]:
    """Insert ``rows`` (tuples in the order of ``fields``); return ``returning`` per new row.

    Give every value the model would otherwise default (timestamps, UUIDs): no model
    instance is built on PostgreSQL, so no Python-side default or ``auto_now`` runs.
    Rows skipped by ``ignore_conflicts`` return nothing; the order of the returned
    tuples is not the order of ``rows``.
    """
    model_fields = [_column(model, name) for name in fields]
    if connection.vendor == "postgresql":
        return _copy_insert(model, model_fields, rows, ignore_conflicts, returning)
    if connection.vendor == "sqlite" and not returning:
        _sqlite_insert(model, model_fields, rows, ignore_conflicts)
        return []
    objects = [
        model(**{f.attname: value for f, value in zip(model_fields, row, strict=True)})
        for row in rows
    ]
    created = model._default_manager.bulk_create(
        objects, batch_size=2000, ignore_conflicts=ignore_conflicts
    )
    if not returning or ignore_conflicts:
        return []
    attnames = [_column(model, name).attname for name in returning]
    return [tuple(getattr(obj, name) for name in attnames) for obj in created]


def _column(model: type[models.Model], name: str) -> models.Field:
    """The concrete field ``name``: a reverse relation or generic key has no column to fill."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field


def _sqlite_insert(model, model_fields, rows, ignore_conflicts) -> None:
    """One prepared INSERT run over every row: no model instances, about 5× bulk_create's speed."""
    quote = connection.ops.quote_name
    verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
    sql = (
        f"{verb} INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in model_fields)}) "
        f"VALUES ({', '.join(['%s'] * len(model_fields))})"
    )
    adapters = [_sqlite_adapter(f) for f in model_fields]
    prepared = (
        [
            value if adapt is None or value is None else adapt(value)
            for adapt, value in zip(adapters, row, strict=True)
        ]
        for row in rows
    )
    with connection.cursor() as cursor:
        while chunk := list(itertools.islice(prepared, 10_000)):
            cursor.executemany(sql, chunk)


_PLAIN = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.AutoField,
)


def _sqlite_adapter(field):
    """How a value of ``field`` goes to SQLite: None when as it is (the common, fast case)."""
    ops = connection.ops
    if isinstance(field, models.ForeignKey):
        return (
            None
            if isinstance(field.target_field, _PLAIN)
            else (lambda value: field.get_db_prep_save(value, connection))
        )
    if isinstance(field, models.DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(field, models.DateField):
        return ops.adapt_datefield_value
    if isinstance(field, models.DecimalField):
        return lambda value: ops.adapt_decimalfield_value(
            value, field.max_digits, field.decimal_places
        )
    if isinstance(field, _PLAIN):
        return None
    return lambda value: field.get_db_prep_save(value, connection)


def _copy_insert(model, model_fields, rows, ignore_conflicts, returning) -> list[tuple]:
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    columns = ", ".join(quote(f.column) for f in model_fields)
    stage = quote(f"_stage_{model._meta.db_table}_{next(_stage_names)}")
    json_positions = [i for i, f in enumerate(model_fields) if isinstance(f, models.JSONField)]
    # Every identifier below comes from the model's metadata and is quoted; values only
    # travel through COPY.
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {stage} AS SELECT {columns} FROM {table} WITH NO DATA"  # noqa: S608
        )
        with cursor.cursor.copy(f"COPY {stage} ({columns}) FROM STDIN") as copy:
            for row in rows:
                if json_positions:
                    row = list(row)
                    for i in json_positions:
                        if row[i] is not None:
                            row[i] = json.dumps(row[i])
                copy.write_row(row)
        sql = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage}"  # noqa: S608
        if ignore_conflicts:
            sql += " ON CONFLICT DO NOTHING"
        if returning:
            sql += " RETURNING " + ", ".join(
                quote(model._meta.get_field(n).column) for n in returning
            )
        cursor.execute(sql)
        result = cursor.fetchall() if returning else []
        cursor.execute(f"DROP TABLE {stage}")
    return result


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text_row(values: Iterable) -> str:
    """One line of PostgreSQL's COPY text format (no connection needed, so any thread can
    build a batch while another one talks to the database).

    Takes None, str, bool, int, date and lists of str (a text array).
    """
    return "\t".join(_copy_text_value(value) for value in values) + "\n"


def _copy_text_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        items = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in value)
        return ("{" + ",".join(items) + "}").translate(_COPY_ESCAPES)
    raise TypeError(f"no COPY text form for {type(value).__name__}")


def insert_select(model: type[models.Model], fields: Sequence[str], source: models.QuerySet) -> int:
    """``INSERT INTO model (fields) SELECT …`` from ``source``, a ``values_list`` whose
    columns are in the order of ``fields``: the rows never travel through Python. Returns
    the number of rows inserted. Row-level security checks each row as any insert."""
    select, params = source.query.sql_with_params()
    columns = ", ".join(connection.ops.quote_name(_column(model, name).column) for name in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) {select}", params)  # noqa: S608
        return cursor.rowcount
