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
