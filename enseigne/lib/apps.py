import hashlib

from django.apps import AppConfig


class LibConfig(AppConfig):
    name = "enseigne.lib"
    label = "lib"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from enseigne.lib import lookups  # noqa: F401  (registers field__any)
        from enseigne.lib.rowsecurity import switch_to_app_role

        # Infrastructure hook (not business behaviour): every PostgreSQL connection acts
        # as the unprivileged application role so row-level security applies.
        connection_created.connect(switch_to_app_role, dispatch_uid="enseigne-app-role")
        connection_created.connect(
            register_sqlite_functions, dispatch_uid="enseigne-sqlite-functions"
        )
        # Background tasks act as the system (rowsecurity.task_started explains why).
        from huey.contrib.djhuey import HUEY

        from enseigne.lib.rowsecurity import (
            system_scope_for_new_connection,
            task_finished,
            task_started,
        )

        connection_created.connect(
            system_scope_for_new_connection, dispatch_uid="enseigne-task-scope"
        )
        HUEY.pre_execute(name="enseigne-system-scope")(task_started)
        HUEY.post_execute(name="enseigne-system-scope")(task_finished)


def _sha256_hex(value):
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def register_sqlite_functions(sender, connection, **kwargs) -> None:  # noqa: ARG001
    """SQL functions PostgreSQL gets from migrations (``enseigne_sha256``, ``enseigne_fold``), for SQLite."""
    if connection.vendor == "sqlite":
        from enseigne.lib.folding import fold

        connection.connection.create_function("enseigne_sha256", 1, _sha256_hex, deterministic=True)
        connection.connection.create_function("enseigne_fold", 1, fold, deterministic=True)
