"""The planner's statistics after a bulk load.

A seeded or loaded database has no statistics until autovacuum gets round to it: meanwhile
PostgreSQL plans on guesses (nested loops over tables it thinks empty). Whoever loads in
bulk (the demo seed, the benches' networks) refreshes them at once, as the schema owner:
the app role owns no table and may not ``ANALYZE`` one.
"""

from __future__ import annotations

from django.db import connections

from enseigne.lib.rowsecurity import role_switch_enabled, set_role_switch


def analyze(using: str = "default") -> None:
    """``ANALYZE`` every table, on a connection of its own, outside any transaction."""
    connection = connections[using]
    restore = role_switch_enabled()
    set_role_switch(False)
    connection.close()
    try:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    finally:
        connection.close()
        set_role_switch(restore)
