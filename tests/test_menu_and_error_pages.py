"""The menu shows only what a role can open; 403, 404 and 500 pages speak the user's
language inside the normal layout; logs are one line per event, in UTC."""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from django.test import Client, RequestFactory
from django.utils import translation
from django.views import defaults

from enseigne.lib.logs import ExpectedRefusals, OneLineUtc
from enseigne.network.access import access_for
from enseigne.network.menu import MENU, menu_for

PERSONAS = ("hq_admin", "hq_marketer", "region_manager", "manager_a", "staff_a", "manager_b")
MENU_LINK = re.compile(r'class="(?:nav-link|dropdown-item)" href="([^"#]+)"')


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
def test_the_menu_shows_exactly_the_pages_the_role_can_open(world, client, persona):
    user = getattr(world, persona)
    client.force_login(user)
    page = client.get("/contacts/").content.decode()
    shown = set(MENU_LINK.findall(page))
    assert shown == {link.url for group in menu_for(access_for(user)) for link in group.links}
    for group in MENU:
        for entry in group.entries:
            url = menu_url(entry.url_name)
            status = client.get(url).status_code
            # A link shown opens (a store's results page redirects to its own unit's); a page
            # that answers 403 is never shown. (The network overview opens for one store too,
            # but its menu leaves it out: a store has its own home page.) HQ's customer base
            # does not exist for a store or a region: 404, never shown to them; nor do HQ's
            # journey designs.
            assert status in (200, 302, 403, 404), (persona, url, status)
            if url in shown:
                assert status in (200, 302), (persona, url, status)
            if status in (403, 404):
                assert url not in shown, (persona, url)
            if status == 404:
                assert (
                    url == "/hq/people/"
                    and persona != "hq_admin"
                    or (url == "/hq/journeys/" and persona not in ("hq_admin", "hq_marketer"))
                ), (persona, url)


def menu_url(name: str) -> str:
    from django.urls import reverse

    return reverse(name)


@pytest.mark.django_db
def test_who_sees_imports_and_administration(world, client):
    def urls(user):
        return {link.url for group in menu_for(access_for(user)) for link in group.links}

    assert "/imports/" in urls(world.manager_a)
    for user in (world.staff_a, world.hq_marketer, world.region_manager):
        assert "/imports/" not in urls(user)
    assert {"/hq/users/", "/hq/roles/", "/hq/audit/"} <= urls(world.hq_admin)
    assert not {"/hq/users/", "/hq/roles/", "/hq/audit/"} & urls(world.hq_marketer)


@pytest.mark.django_db
def test_the_menu_groups_pages_and_says_which_one_is_open(world, client):
    client.force_login(world.hq_admin)
    page = client.get("/segments/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    for group in ("Réseau", "Audience", "Contenus", "Campagnes"):
        assert f'data-bs-toggle="dropdown" aria-expanded="false">{group}</a>' in page
    assert '<a class="dropdown-item" href="/segments/" aria-current="page">Segments</a>' in page


@pytest.mark.django_db
def test_404_for_another_stores_object_is_a_page_of_the_product(world, client, caplog):
    client.force_login(world.manager_a)
    for url in (f"/campaigns/{uuid.uuid4()}/", "/nothing-here/", "/contacts/abc/"):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="fr")
        page = response.content.decode()
        assert response.status_code == 404, url
        assert "Page introuvable" in page and "Retour à l’accueil" in page
        assert 'class="navbar' in page and "manager.a@example.com" in page  # the layout, signed in
    english = client.get("/nothing-here/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Page not found" in english and "does not exist" in english


@pytest.mark.django_db
def test_403_says_what_happened_and_is_logged_without_a_traceback(world, client, caplog):
    client.force_login(world.staff_a)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/imports/", HTTP_ACCEPT_LANGUAGE="fr")
    page = response.content.decode()
    assert response.status_code == 403
    assert "Votre rôle ne donne pas accès à cette page" in page and 'class="navbar' in page
    refused = [r for r in caplog.records if r.name == "django.request"]
    assert refused and refused[0].levelno == logging.WARNING
    handler_filter = ExpectedRefusals()
    for record in refused:
        handler_filter.filter(record)
        assert record.exc_info is None and "Traceback" not in OneLineUtc().format(record)


def test_a_failed_request_keeps_its_traceback():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: /x", (), None
        )
        record.exc_info = sys.exc_info()
    record.status_code = 500
    ExpectedRefusals().filter(record)
    line = OneLineUtc().format(record)
    assert "\n" not in line and "Traceback" in line and "RuntimeError: boom" in line


def test_log_lines_are_one_line_in_utc_iso_8601():
    record = logging.LogRecord("enseigne", logging.INFO, __file__, 1, "two\nlines", (), None)
    record.created = 1_764_748_800.25  # 2025-12-03 08:00:00.250 UTC
    record.msecs = 250
    line = OneLineUtc().format(record)
    assert line.startswith("2025-12-03T08:00:00.250Z INFO enseigne ")
    assert line.endswith("two\\nlines") and "\n" not in line


def test_the_worker_logs_each_line_once():
    from django.conf import settings

    huey = settings.LOGGING["loggers"]["huey"]
    assert huey["propagate"] is False and huey["handlers"] == ["console"]
    assert logging.getLogger("huey").handlers  # so Huey's consumer adds no handler of its own


def test_the_worker_writes_one_line_per_task():
    """Huey's "Executing …" line is dropped; the "… executed in" line and failures stay."""
    huey = logging.getLogger("huey")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineUtc())
    huey.addHandler(handler)
    try:
        huey.info("Executing %s", "enseigne.delivery.tasks.sending_tick: 1")
        huey.info("%s executed in %0.3fs", "enseigne.delivery.tasks.sending_tick: 1", 0.008)
        huey.warning("Task %s timed out after %ss.", "2", 30)
        huey.error("Executing %s", "not Huey's line, kept")
    finally:
        huey.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert [line.split(" ", 5)[5] for line in lines] == [
        "enseigne.delivery.tasks.sending_tick: 1 executed in 0.008s",
        "Task 2 timed out after 30s.",
        "Executing not Huey's line, kept",
    ]


@pytest.mark.django_db
def test_500_and_expired_form_pages_in_both_languages(world):
    request = RequestFactory().get("/boom/")
    for language, words in (
        ("fr", "Un problème est survenu de notre côté"),
        ("en", "Something went wrong on our side"),
    ):
        with translation.override(language):
            response = defaults.server_error(request)
        assert response.status_code == 500 and words in response.content.decode()
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.manager_a)
    expired = client.post("/segments/new/", {"name": "x"}, HTTP_ACCEPT_LANGUAGE="fr")
    assert expired.status_code == 403
    assert "Le formulaire a expiré" in expired.content.decode()


@pytest.mark.slow  # starts the real server
def test_the_servers_own_lines_are_one_line_utc_like_the_apps(tmp_path):
    """`enseigne serve`'s startup and access lines use the same format as every other line
    (granian's were in local time with "+0100"), and the access line leaves out the query."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "ENSEIGNE_DATA_DIR": str(tmp_path), "TZ": "Europe/Paris"}
    env.pop("DATABASE_URL", None)
    env.pop("DATABASE_APP_ROLE", None)
    out = tmp_path / "serve.log"
    with out.open("w") as sink:
        server = subprocess.Popen(  # noqa: S603 (this interpreter, the project's command)
            [sys.executable, "-m", "enseigne.cli", "serve", "--port", str(port), "--workers", "1"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login/?next=secret-token")  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(10)
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ ")
    assert lines and all(stamp.match(line) for line in lines), lines
    access = [line for line in lines if "GET /login/" in line]
    assert len(access) == 1 and " 200 " in access[0] and "secret-token" not in access[0], lines
