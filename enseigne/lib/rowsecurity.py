"""PostgreSQL row-level security: the second wall behind scoped selectors.

Every unit-owned table carries a ``unit_path`` column (the unit's materialised path in
the org tree). A policy lets a row through only when that path starts with one of the
paths in the transaction-local setting ``enseigne.scope``; ``*`` means the whole
network (system work: demo seeding, the import worker acting for one unit uses that
unit's path). No setting means no rows: safe by default.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.db.migrations.operations.base import Operation

ALL = "*"
SETTING = "enseigne.scope"

# Disabled while migrations or test-database setup run as the schema owner.
_role_switch = {"enabled": os.environ.get("ENSEIGNE_DB_AS_OWNER") != "1"}


def set_role_switch(enabled: bool) -> None:
    _role_switch["enabled"] = enabled


def switch_to_app_role(sender, connection, **kwargs) -> None:  # noqa: ARG001
    role = settings.DATABASE_APP_ROLE
    if connection.vendor != "postgresql" or not role or not _role_switch["enabled"]:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('role', %s, false)", [role])


def scope_value(paths: Iterable[str] | str) -> str:
    if paths == ALL:
        return ALL
    return ",".join(sorted(set(paths)))


@contextmanager
def db_scope(paths: Iterable[str] | str) -> Iterator[None]:
    """Run the block in a transaction whose RLS scope is ``paths`` (or ALL).

    Nested use restores the outer scope on exit, so a test or a request inside a
    larger transaction does not leak its scope outwards. A no-op on SQLite, which has
    no row-level security (the selectors are the wall there).
    """
    if connection.vendor != "postgresql":
        yield
        return
    value = scope_value(paths)
    outer = connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting(%s, true), set_config(%s, %s, true)",
                [SETTING, SETTING, value],
            )
            previous = cursor.fetchone()[0]
        try:
            yield
        finally:
            if (
                outer
                and previous is not None
                and previous != value
                and not connection.needs_rollback
            ):
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config(%s, %s, true)", [SETTING, previous])


SCOPE_FUNCTION = """
CREATE OR REPLACE FUNCTION enseigne_scope_patterns() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE coalesce(current_setting('enseigne.scope', true), '')
    WHEN '' THEN ARRAY[]::text[]
    WHEN '*' THEN ARRAY['%%']
    ELSE ARRAY(SELECT p || '%%' FROM unnest(string_to_array(current_setting('enseigne.scope', true), ',')) AS s(p))
  END
$$;
"""


class CreateScopeFunction(Operation):
    reduces_to_sql = True
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(SCOPE_FUNCTION)
        role = settings.DATABASE_APP_ROLE
        if role:
            quoted = schema_editor.quote_name(role)
            literal = _literal(role)
            schema_editor.execute(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {literal}) "  # noqa: S608
                f"THEN EXECUTE 'CREATE ROLE ' || quote_ident({literal}) || ' NOLOGIN NOSUPERUSER NOBYPASSRLS'; "
                "END IF; END $$;"
            )
            schema_editor.execute(f"GRANT {quoted} TO CURRENT_USER")
            schema_editor.execute(f"GRANT USAGE ON SCHEMA public TO {quoted}")
            schema_editor.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}"
            )
            schema_editor.execute(
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}"
            )
            schema_editor.execute(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {quoted}"
            )
            schema_editor.execute(
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {quoted}"
            )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute("DROP FUNCTION IF EXISTS enseigne_scope_patterns()")

    def describe(self):
        return "Create the enseigne_scope_patterns() RLS helper and grant the app role"


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def unit_row_security_sql(quoted_table: str, *, shared_rows: bool = False) -> list[str]:
    """The statements that enable and force RLS on a table, with the unit-scope policy."""
    # The scalar subquery makes the patterns an InitPlan: computed once per query,
    # not once per row. Org paths are digits only, so LIKE needs no escaping.
    condition = "unit_path::text LIKE ANY ((SELECT enseigne_scope_patterns())::text[])"
    if shared_rows:
        condition = f"(unit_path = '' OR {condition})"
    return [
        f"ALTER TABLE {quoted_table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted_table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY unit_scope ON {quoted_table} USING ({condition}) WITH CHECK ({condition})",
    ]


class UnitRowSecurity(Operation):
    """Enable and force RLS on a unit-owned table, with a policy on ``unit_path``.

    ``shared_rows``: rows whose unit_path is '' belong to the whole brand (e.g. a
    brand-wide suppression) and are visible to every scope.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(self, table: str, shared_rows: bool = False):
        self.table = table
        self.shared_rows = shared_rows

    def deconstruct(self):
        return (self.__class__.__name__, [self.table], {"shared_rows": self.shared_rows})

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in unit_row_security_sql(
            schema_editor.quote_name(self.table), shared_rows=self.shared_rows
        ):
            schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self.table)
        schema_editor.execute(f"DROP POLICY IF EXISTS unit_scope ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Row-level security on {self.table}"
