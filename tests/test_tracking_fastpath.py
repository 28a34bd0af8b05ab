"""The WSGI fast path for clicks and opens answers like Django's views and falls back to them."""

from __future__ import annotations

import io
import random
import re

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from enseigne.delivery import events
from enseigne.delivery.channels.locmem import transport as locmem
from enseigne.tracking import services
from enseigne.tracking.fastpath import TrackingFastPath
from tests.test_tracking import BROWSER, SALE, SHOP, _clicks, _html, _mutate, _sent


@pytest.fixture
def recorded(monkeypatch, settings):
    """Batched writing on (the fast path's case), the batch itself caught here."""
    settings.EVENTS_FLUSH_MS = 200
    rows = []
    monkeypatch.setattr(events, "record", rows.append)
    locmem.outbox.clear()
    services.forget_links()
    yield rows
    services.forget_links()
    locmem.outbox.clear()


APP = TrackingFastPath(WSGIHandler())


def call(path: str, method: str = "GET", agent: str = BROWSER):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "HTTP_HOST": "testserver",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "HTTP_USER_AGENT": agent,
        "REMOTE_ADDR": "203.0.113.9",
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(headers)

    # As Django's test client does: the request cycle must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        answer["body"] = b"".join(APP(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer


def test_a_known_link_is_answered_before_django_with_the_same_headers(world, recorded):
    _sent(world, 1)
    path = _clicks(_html(locmem.outbox[0]))[0]
    cold = call(path)  # this process has not read the link: Django's view answers, and reads it
    warm = call(path)
    assert cold["status"] == warm["status"] == 302
    assert cold["headers"]["Location"] == warm["headers"]["Location"] == SALE
    assert "Content-Language" in cold["headers"] and "Content-Language" not in warm["headers"]
    for name in (
        "Cache-Control",
        "Referrer-Policy",
        "X-Content-Type-Options",
        "X-Frame-Options",
        "Cross-Origin-Opener-Policy",
    ):
        assert warm["headers"][name] == cold["headers"][name], name
    assert [(r[1], r[7]) for r in recorded] == [(4, recorded[0][7])] * 2  # two clicks, same link
    assert call(path, "HEAD")["status"] == 302 and len(recorded) == 2  # HEAD never counts
    call(path, agent="python-requests/2.31")
    assert recorded[-1][8] is True  # flagged as a machine


@pytest.mark.slow  # thousands of requests
def test_mutated_tokens_fall_back_to_django_and_go_nowhere(world, recorded):
    _sent(world, 3)
    genuine = [p for m in locmem.outbox for p in _clicks(_html(m))]
    for path in genuine:
        call(path)  # warm: every link is known, so a mutation cannot hide behind a cold cache
    recorded.clear()
    rng = random.Random(7)
    tried = set()
    while len(tried) < 2_000:
        token = rng.choice(genuine)[3:]
        candidate = "/c/" + _mutate(token, rng, "0123456789abcdef-_.%/")
        if candidate in genuine or candidate in tried:
            continue
        tried.add(candidate)
        answer = call(candidate)
        assert answer["status"] == 404 or answer["headers"].get("Location") in (SALE, SHOP), (
            candidate
        )
        assert answer["status"] == 404, candidate
    assert recorded == []


def test_the_pixel_takes_the_fast_path_once_its_unit_is_known(world, recorded):
    _sent(world, 1)
    (path,) = re.findall(r'src="http://127\.0\.0\.1:8000(/o/[^"]+\.gif)"', _html(locmem.outbox[0]))
    cold, warm = call(path), call(path)
    assert cold["status"] == warm["status"] == 200
    assert cold["body"] == warm["body"] and warm["body"].startswith(b"GIF89a")
    assert (
        warm["headers"]["Content-Type"] == "image/gif" and "Content-Language" not in warm["headers"]
    )
    assert call(path, "HEAD")["body"] == b""
    assert len(recorded) == 2


def test_without_batching_django_answers_everything(world, recorded, settings):
    _sent(world, 1)
    path = _clicks(_html(locmem.outbox[0]))[0]
    call(path)
    settings.EVENTS_FLUSH_MS = 0
    assert "Content-Language" in call(path)["headers"]
