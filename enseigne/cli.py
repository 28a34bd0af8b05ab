"""The ``enseigne`` console entry point: demo, serve, worker and every Django command."""

from __future__ import annotations

import os
import sys

# Commands that change the schema run as the database owner, not the RLS-bound app role.
OWNER_COMMANDS = {"migrate", "flush", "sqlflush", "createcachetable", "event_partitions"}
# Commands that are the system's own work for the whole network (sending): their connections
# default to scope ALL, as a queue worker's tasks do (rowsecurity.task_started).
SYSTEM_COMMANDS = {"send_campaign", "worker", "run_huey"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    command = argv[1] if len(argv) > 1 else "help"
    if command in OWNER_COMMANDS:
        os.environ["ENSEIGNE_DB_AS_OWNER"] = "1"
    if command in SYSTEM_COMMANDS:
        os.environ["ENSEIGNE_DB_SYSTEM_SCOPE"] = "1"
    from django.core.management import execute_from_command_line

    execute_from_command_line(["enseigne", *argv[1:]])


if __name__ == "__main__":
    main()
