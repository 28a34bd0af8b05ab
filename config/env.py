"""Small typed readers for environment configuration; they fail loudly."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is None:
            raise ImproperlyConfigured(f"Environment variable {name} is required.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}.")


def _env_number(name: str, default, convert, what: str):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return convert(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be {what}, got {value!r}.") from exc


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Translate a DATABASE_URL into a Django DATABASES entry.

    sqlite:////abs/path.sqlite3 (or sqlite:///relative) and postgres://user:pw@host:port/name.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if path.startswith("//"):
            path = path[1:]
        elif path.startswith("/"):
            path = path[1:] or ":memory:"
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of
                # failing with "database is locked" half-way through a transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                    "PRAGMA foreign_keys=ON; PRAGMA busy_timeout=20000;"
                ),
            },
            "TEST": {"NAME": ""},
        }
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        options: dict[str, object] = {}
        for key, values in parse_qs(parsed.query).items():
            options[key] = values[-1]
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use sqlite:// or postgres://)."
    )


def email_from_url(url: str) -> dict:
    """EMAIL_URL: smtp://user:pw@host:port (smtps:// for TLS), console:, locmem:, file:///dir."""
    parsed = urlparse(url)
    if parsed.scheme in {"smtp", "smtps", "submission"}:
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": parsed.hostname or "localhost",
            "EMAIL_PORT": parsed.port or (465 if parsed.scheme == "smtps" else 25),
            "EMAIL_HOST_USER": unquote(parsed.username or ""),
            "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
            "EMAIL_USE_SSL": parsed.scheme == "smtps",
            "EMAIL_USE_TLS": parsed.scheme == "submission" or query.get("tls") == "1",
            "EMAIL_TIMEOUT": 30,
        }
    if parsed.scheme == "console":
        return {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if parsed.scheme == "esp":
        if not parsed.path.startswith("anymail.backends."):
            raise ImproperlyConfigured(
                "EMAIL_URL esp: needs an anymail backend, e.g. esp:anymail.backends.mailgun.EmailBackend"
            )
        return {"EMAIL_BACKEND": parsed.path}
    if parsed.scheme == "locmem":
        return {"EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    if parsed.scheme == "file":
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "EMAIL_FILE_PATH": unquote(parsed.path),
        }
    raise ImproperlyConfigured(
        f"EMAIL_URL scheme {parsed.scheme!r} is not supported (smtp, smtps, submission, console, locmem, file, esp)."
    )


def huey_from_url(url: str, *, name: str) -> dict:
    """HUEY_URL: sqlite:///path (embedded), redis://host:port/db (production), immediate: (tests)."""
    parsed = urlparse(url)
    if parsed.scheme == "immediate":
        return {"huey_class": "huey.MemoryHuey", "name": name, "immediate": True}
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        path = path[1:] if path.startswith("//") else path.lstrip("/")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return {
            "huey_class": "huey.SqliteHuey",
            "name": name,
            "filename": path,
            "immediate": False,
            "consumer": {"workers": 2, "worker_type": "thread"},
        }
    if parsed.scheme in {"redis", "rediss"}:
        return {
            "huey_class": "huey.PriorityRedisHuey",
            "name": name,
            "url": url,
            "immediate": False,
            "consumer": {"workers": 4, "worker_type": "thread"},
        }
    raise ImproperlyConfigured(
        f"HUEY_URL scheme {parsed.scheme!r} is not supported (sqlite://, redis://, immediate:)."
    )
