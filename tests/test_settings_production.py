"""Production refuses to start on settings that would send unlawful or broken mail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each check starts Django in a subprocess

ROOT = Path(__file__).resolve().parent.parent


def _load(tmp_path, **env):
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENSEIGNE_", "DATABASE_", "EMAIL_", "HUEY_"))
    }
    environ.update(
        {
            "ENSEIGNE_MODE": "production",
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "m.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
            "HUEY_URL": f"sqlite:///{tmp_path}/q.sqlite3",
            "EMAIL_URL": "smtp://127.0.0.1:25",
            "SMS_URL": "console:",
            "ENSEIGNE_DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **env,
        }
    )
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.BASE_URL)",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
    )


def test_production_needs_an_https_base_url(tmp_path):
    ok = _load(tmp_path, ENSEIGNE_BASE_URL="https://marketing.example.com")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "https://marketing.example.com"
    plain = _load(tmp_path, ENSEIGNE_BASE_URL="http://marketing.example.com")
    assert plain.returncode != 0
    assert "ENSEIGNE_BASE_URL must be the public https:// address in production" in plain.stderr
    missing = _load(tmp_path)
    assert missing.returncode != 0 and "ENSEIGNE_BASE_URL" in missing.stderr


# The production environment README's deployment section documents.
DOCUMENTED = {
    "SECRET_KEY": "k3-Vq9!rT7zLx2#pW8mN4&bH6yJc1@sD5fG0uE-aQwErTyUiOpAsDfGh",
    "ENSEIGNE_BASE_URL": "https://marketing.example.com",
    "ENSEIGNE_PROXY_COUNT": "1",
    "ENSEIGNE_SECURITY_CONTACT": "mailto:security@example.com",
}


def _run(tmp_path, code, **env):
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ENSEIGNE_", "DATABASE_", "EMAIL_", "HUEY_", "SECURE_"))
    }
    environ.update(
        {
            "ENSEIGNE_MODE": "production",
            "ALLOWED_HOSTS": "marketing.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
            "HUEY_URL": f"sqlite:///{tmp_path}/q.sqlite3",
            "EMAIL_URL": "smtp://127.0.0.1:25",
            "SMS_URL": "console:",
            "ENSEIGNE_DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **DOCUMENTED,
            **env,
        }
    )
    return subprocess.run(  # noqa: S603 (our own interpreter and manage.py)
        [sys.executable, *code], cwd=ROOT, env=environ, capture_output=True, text=True
    )


def test_deploy_check_is_clean_with_the_documented_production_environment(tmp_path):
    result = _run(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "DEBUG"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_deploy_check_speaks_up_when_https_is_turned_off(tmp_path):
    result = _run(
        tmp_path,
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
    )
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


PRINT = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
    "s.SECURE_HSTS_PRELOAD, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_SECURE, "
    "s.CSRF_COOKIE_SECURE, s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)"
)


def test_production_defaults_are_https_only_and_the_proxy_header_is_opt_in(tmp_path):
    behind = _run(tmp_path, ["-c", PRINT])
    assert behind.returncode == 0, behind.stderr
    assert behind.stdout.split("\n")[0] == (
        "True 31536000 True False ('HTTP_X_FORWARDED_PROTO', 'https') True True 5 0:15:00"
    )
    direct = _run(tmp_path, ["-c", PRINT], ENSEIGNE_PROXY_COUNT="0")
    assert direct.stdout.split("\n")[0] == "True 31536000 True False None True True 5 0:15:00"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENSEIGNE_PROXY_COUNT", "-1", "ENSEIGNE_PROXY_COUNT must be 0 or more"),
        ("ENSEIGNE_LOGIN_FAILURE_LIMIT", "0", "ENSEIGNE_LOGIN_FAILURE_LIMIT"),
        ("ENSEIGNE_LOGIN_COOLOFF_MINUTES", "0", "ENSEIGNE_LOGIN_COOLOFF_MINUTES"),
        ("ENSEIGNE_SECURITY_CONTACT", "security@example.com", "mailto:"),
        ("ENSEIGNE_SECURITY_TXT_EXPIRES", "next year", "YYYY-MM-DD"),
    ],
)
def test_bad_hardening_settings_refuse_to_start(tmp_path, name, value, message):
    result = _run(tmp_path, ["-c", PRINT], **{name: value})
    assert result.returncode != 0
    assert message in result.stderr


@pytest.mark.parametrize(
    ("env", "origins"),
    [
        ({}, []),
        (
            {"ENSEIGNE_ASSET_BUCKET": "lib", "ENSEIGNE_ASSET_CUSTOM_DOMAIN": "media.example.com"},
            ["https://media.example.com"],
        ),
        (
            {
                "ENSEIGNE_ASSET_BUCKET": "lib",
                "ENSEIGNE_ASSET_ENDPOINT_URL": "https://s3.fr-par.scw.cloud",
            },
            ["https://s3.fr-par.scw.cloud", "https://lib.s3.fr-par.scw.cloud"],
        ),
        ({"ENSEIGNE_ASSET_BUCKET": "lib"}, ["https://lib.s3.amazonaws.com"]),
        (
            {"ENSEIGNE_CSP_IMG_SRC": "https://a.example, https://b.example"},
            ["https://a.example", "https://b.example"],
        ),
    ],
)
def test_library_images_on_s3_are_allowed_by_the_policy(tmp_path, env, origins):
    code = (
        "import django; django.setup(); from django.conf import settings as s; print(s.CSP_IMG_SRC)"
    )
    result = _run(tmp_path, ["-c", code], **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(["'self'", "data:", "blob:", *origins])
