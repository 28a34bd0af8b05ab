"""Shared bench setup: Django on the configured DATABASE_URL, as the app role, scope ALL."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("HUEY_URL", "immediate:")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")


def django_ready() -> None:
    import django
    from django.core.management import call_command
    from django.db import connections

    from enseigne.lib.rowsecurity import set_role_switch

    django.setup()
    set_role_switch(False)
    call_command("migrate", interactive=False, verbosity=0)
    connections.close_all()
    set_role_switch(True)


def recreate_database(database: str) -> None:
    """Drop and create the scratch database a bench runs on (PostgreSQL URL or SQLite file)."""
    if database.startswith("postgres"):
        import psycopg

        admin, name = database.rsplit("/", 1)
        with psycopg.connect(f"{admin}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    else:
        path = Path(database.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def table(title: str, rows: list[tuple]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for index, row in enumerate(rows):
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)))
        if index == 0:
            print("  ".join("-" * w for w in widths))


def bench_network(code: str, units: int, domain: str = "example.com"):
    """A fresh network ``code`` with ``units`` stores U0, U1…; returns (root, stores)."""
    from enseigne.network import services as network

    root = network.network_create(
        actor=None, name="Bench", code=code, legal_name="Bench", sending_domain=domain
    )
    stores = [
        network.node_create(actor=None, parent=root, kind="unit", name=f"U{i}", code=f"{code}-u{i}")
        for i in range(units)
    ]
    return root, stores


def bench_users(root, store, roles):
    """The bench's HQ admin (on ``root``) and store manager (on ``store``), made once."""
    from enseigne.network import services as network
    from enseigne.network.models import Membership, User

    def user(email: str):
        return User.objects.filter(email=email).first() or network.user_create(
            actor=None, email=email, password="bench-password-1"
        )

    hq, manager = user("bench-hq@example.com"), user("bench-unit@example.com")
    if not Membership.objects.filter(user=hq).exists():
        network.membership_grant(actor=None, user=hq, node=root, role=roles["hq_admin"])
        network.membership_grant(actor=None, user=manager, node=store, role=roles["unit_manager"])
    return hq, manager
