"""PostgreSQL row-level security: the second wall behind scoped selectors.

Every unit-owned table carries a ``unit_path`` column (the unit's materialised path in
the org tree). A policy lets a row through only when that path starts with one of the
paths in the transaction-local setting ``enseigne.scope``; ``*`` means the whole
network (system work: demo seeding, the import worker acting for one unit uses that
unit's path). No setting means no rows: safe by default.
"""

from __future__ import annotations

import os
import threading
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


def role_switch_enabled() -> bool:
    return _role_switch["enabled"]


def switch_to_app_role(sender, connection, **kwargs) -> None:  # noqa: ARG001
    role = settings.DATABASE_APP_ROLE
    if connection.vendor != "postgresql" or not role or not _role_switch["enabled"]:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('role', %s, false)", [role])


# Background tasks are system work (the sending pipeline, the scheduler, rollups, bounces):
# while one runs, its connection's session-level scope is ALL, so a read the task makes
# outside its own ``db_scope`` still finds the campaign it works on. A task that narrows
# (an import acting for one unit) sets a transaction-local scope, which wins.
_task = threading.local()


def _set_session_scope(connection, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, false)", [SETTING, value])


def system_scope_for_new_connection(sender, connection, **kwargs) -> None:  # noqa: ARG001
    system_process = os.environ.get("ENSEIGNE_DB_SYSTEM_SCOPE") == "1"
    if connection.vendor == "postgresql" and (system_process or getattr(_task, "running", False)):
        _set_session_scope(connection, ALL)


def task_started(task) -> None:  # noqa: ARG001 (Huey's pre_execute hook)
    _task.running = True
    if connection.vendor != "postgresql":
        return
    # An immediate queue runs the task on the caller's connection: keep its scope to restore.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(%s, true), set_config(%s, %s, false)", [SETTING, SETTING, ALL]
        )
        _task.previous = cursor.fetchone()[0] or ""


def task_finished(task, value, exc) -> None:  # noqa: ARG001 (Huey's post_execute hook)
    _task.running = False
    if connection.vendor == "postgresql" and connection.connection is not None:
        _set_session_scope(connection, getattr(_task, "previous", ""))
    _task.previous = ""


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


SCOPE_PREFIXES_FUNCTION = """
CREATE OR REPLACE FUNCTION enseigne_scope_prefixes() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT left(s.p, i.n)), ARRAY[]::text[])
  FROM unnest(string_to_array(
         nullif(nullif(coalesce(current_setting('enseigne.scope', true), ''), ''), '*'), ','
       )) AS s(p),
       generate_series(1, length(s.p)) AS i(n)
$$;
"""


# Whether the scope holds a network root (HQ): org tree rows are not unit-owned (no RLS).
SCOPE_HOLDS_ROOT_FUNCTION = """
CREATE OR REPLACE FUNCTION enseigne_scope_holds_root() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce(current_setting('enseigne.scope', true), '') = '*' OR EXISTS (
    SELECT 1 FROM network_orgnode
    WHERE depth = 1
      AND path = ANY (string_to_array(current_setting('enseigne.scope', true), ','))
  )
$$;
"""


class CreateScopePrefixesFunction(Operation):
    """``enseigne_scope_prefixes()``: every prefix of every path in the scope, i.e. the scope's
    nodes and all their ancestors (for rows an ancestor owns that reach down to its units);
    ``enseigne_scope_holds_root()``: whether the scope holds a network root."""

    reduces_to_sql = True
    reversible = True

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(SCOPE_PREFIXES_FUNCTION)
            schema_editor.execute(SCOPE_HOLDS_ROOT_FUNCTION)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute("DROP FUNCTION IF EXISTS enseigne_scope_prefixes()")
            schema_editor.execute("DROP FUNCTION IF EXISTS enseigne_scope_holds_root()")

    def describe(self):
        return "Create the enseigne_scope_prefixes() and enseigne_scope_holds_root() RLS helpers"


def unit_row_security_sql(
    quoted_table: str,
    *,
    shared_rows: bool = False,
    column: str = "unit_path",
    inherited_rows: bool = False,
    root_rows: bool = False,
    hq_only: bool = False,
) -> list[str]:
    """The statements that enable and force RLS on a table, with the unit-scope policy.

    ``inherited_rows``: a row owned by a node is also readable (never writable) by scopes
    below that node: HQ's national campaigns and templates reach every unit, which selectors
    then narrow. ``root_rows``: rows whose path is '' belong to the whole brand and only a
    scope holding a network root (HQ) reads or writes them (the audit log's user and role
    changes).
    """
    # The scalar subquery makes the patterns an InitPlan: computed once per query,
    # not once per row. Org paths are digits only, so LIKE needs no escaping.
    condition = f"{column}::text LIKE ANY ((SELECT enseigne_scope_patterns())::text[])"
    inherited = f"{column}::text = ANY ((SELECT enseigne_scope_prefixes())::text[])"
    if shared_rows:
        condition = f"({column} = '' OR {condition})"
    statements = [
        f"ALTER TABLE {quoted_table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {quoted_table} FORCE ROW LEVEL SECURITY",
    ]
    if root_rows:
        condition = f"(({column} = '' AND (SELECT enseigne_scope_holds_root())) OR {condition})"
    if hq_only:
        # Rows about a unit's records that the unit itself must not read (which other units
        # share its customers): only a scope holding the network root, or the system.
        condition = "(SELECT enseigne_scope_holds_root())"
    statements.append(
        f"CREATE POLICY unit_scope ON {quoted_table} USING ({condition}) WITH CHECK ({condition})"
    )
    if inherited_rows:
        statements.append(
            f"CREATE POLICY inherited_read ON {quoted_table} FOR SELECT USING ({inherited})"
        )
    return statements


class UnitRowSecurity(Operation):
    """Enable and force RLS on a unit-owned table, with a policy on ``unit_path``.

    ``shared_rows``: rows whose unit_path is '' belong to the whole brand (e.g. a
    brand-wide suppression) and are visible to every scope. ``column``: the path column
    when it is not ``unit_path`` (a campaign's owner, a template's share). For
    ``inherited_rows``, ``root_rows`` and ``hq_only`` see ``unit_row_security_sql``.
    """

    reduces_to_sql = True
    reversible = True

    def __init__(
        self,
        table: str,
        shared_rows: bool = False,
        column: str = "unit_path",
        inherited_rows: bool = False,
        root_rows: bool = False,
        hq_only: bool = False,
    ):
        self.table = table
        self.hq_only = hq_only
        self.shared_rows = shared_rows
        self.column = column
        self.inherited_rows = inherited_rows
        self.root_rows = root_rows

    def deconstruct(self):
        kwargs: dict[str, object] = {"shared_rows": self.shared_rows}
        if self.column != "unit_path":
            kwargs["column"] = self.column
        if self.inherited_rows:
            kwargs["inherited_rows"] = True
        if self.root_rows:
            kwargs["root_rows"] = True
        if self.hq_only:
            kwargs["hq_only"] = True
        return (self.__class__.__name__, [self.table], kwargs)

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in unit_row_security_sql(
            schema_editor.quote_name(self.table),
            shared_rows=self.shared_rows,
            column=schema_editor.quote_name(self.column),
            inherited_rows=self.inherited_rows,
            root_rows=self.root_rows,
            hq_only=self.hq_only,
        ):
            schema_editor.execute(statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        table = schema_editor.quote_name(self.table)
        schema_editor.execute(f"DROP POLICY IF EXISTS inherited_read ON {table}")
        schema_editor.execute(f"DROP POLICY IF EXISTS unit_scope ON {table}")
        schema_editor.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        schema_editor.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

    def describe(self):
        return f"Row-level security on {self.table}"


class AppendOnlyGrants(Operation):
    """The application role may INSERT and SELECT the table, never UPDATE or DELETE it: a
    ledger the database itself keeps append-only (erasure goes through an owner function)."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, table: str):
        self.table = table

    def deconstruct(self):
        return (self.__class__.__name__, [self.table], {})

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        role = settings.DATABASE_APP_ROLE
        if schema_editor.connection.vendor != "postgresql" or not role:
            return
        table, quoted = schema_editor.quote_name(self.table), schema_editor.quote_name(role)
        schema_editor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {quoted}")
        schema_editor.execute(f"GRANT SELECT, INSERT ON {table} TO {quoted}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        role = settings.DATABASE_APP_ROLE
        if schema_editor.connection.vendor != "postgresql" or not role:
            return
        table, quoted = schema_editor.quote_name(self.table), schema_editor.quote_name(role)
        schema_editor.execute(f"GRANT UPDATE, DELETE ON {table} TO {quoted}")

    def describe(self):
        return f"Append-only grants on {self.table}"


ERASE_CONSENT_FUNCTION = """
CREATE OR REPLACE FUNCTION enseigne_erase_consent_events(erased_contact bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE removed integer;
BEGIN
  -- Runs as the owner, so it applies the caller's scope itself: one contact, in scope.
  DELETE FROM contacts_consentevent
   WHERE contact_id = erased_contact
     AND unit_path::text LIKE ANY (enseigne_scope_patterns());
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END
$$;
"""


class CreateEraseConsentFunction(Operation):
    """The one way the app role removes consent events: a contact's, when it is erased (GDPR
    art. 17), through an owner-role function that keeps the caller's scope."""

    reduces_to_sql = True
    reversible = True
    signature = "enseigne_erase_consent_events(bigint)"

    def state_forwards(self, app_label, state):
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT current_schema()")
            schema = cursor.fetchone()[0]
        schema_editor.execute(
            ERASE_CONSENT_FUNCTION.format(schema=schema_editor.quote_name(schema))
        )
        schema_editor.execute(f"REVOKE ALL ON FUNCTION {self.signature} FROM PUBLIC")
        role = settings.DATABASE_APP_ROLE
        if role:
            quoted = schema_editor.quote_name(role)
            schema_editor.execute(f"GRANT EXECUTE ON FUNCTION {self.signature} TO {quoted}")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {self.signature}")

    def describe(self):
        return "Create the owner-role function that erases one contact's consent events"


def erase_consent_events(contact_id: int) -> int | None:
    """Delete one contact's consent events through the owner function (PostgreSQL); None on
    SQLite, where the caller deletes them itself (no grants there)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT enseigne_erase_consent_events(%s)", [contact_id])
        return cursor.fetchone()[0]
