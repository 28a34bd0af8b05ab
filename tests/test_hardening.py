"""Production hardening: login throttling, API token guessing, HTTPS behind a proxy, the
content-security policy of application pages, the API docs and security.txt."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client
from django.utils import timezone

from enseigne.lib.client_ip import client_ip
from enseigne.network.tokens import token_create
from tests.factories import PASSWORD, build_world

ROOT = Path(__file__).resolve().parent.parent
ATTACKER = "203.0.113.7"
UNKNOWN = "0.0.0.0"  # noqa: S104 (what client_ip answers without a usable address)
COLLEAGUE = "198.51.100.20"


@pytest.fixture
def world(db):
    return build_world()


def _login(client, email, password, address=ATTACKER, **extra):
    return client.post(
        "/login/", {"username": email, "password": password}, REMOTE_ADDR=address, **extra
    )


def _fail(client, email, times, address=ATTACKER, **extra):
    return [_login(client, email, "wrong-" + str(i), address, **extra) for i in range(times)]


# --- login throttling -------------------------------------------------------------------


def test_the_fifth_wrong_password_locks_the_pair_out_with_when_to_retry(world, client, settings):
    email = world.manager_a.email
    answers = _fail(client, email, 5)
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
    locked = answers[-1]
    body = locked.content.decode()
    assert "Too many wrong passwords for this e-mail address from your network." in body
    retry = timezone.localtime(timezone.now() + dt.timedelta(minutes=15))
    assert f"Try again at {retry:%H:%M} (in 15 minutes)" in body
    assert 14 * 60 <= int(locked["Retry-After"]) <= 15 * 60
    # The right password is refused too while the pair is locked out: no session.
    right = _login(client, email, PASSWORD)
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


def test_the_lockout_message_is_french_for_a_french_browser(world, client):
    answers = _fail(client, world.manager_a.email, 5, HTTP_ACCEPT_LANGUAGE="fr")
    body = answers[-1].content.decode()
    assert "Trop de mots de passe erronés pour cette adresse e-mail depuis votre réseau" in body
    assert "(dans 15 minutes)" in body


def test_a_lockout_does_not_reach_the_colleague_or_other_accounts(world, client):
    _fail(client, world.manager_a.email, 6)
    # The real user, from their own connection, logs in.
    colleague = Client()
    assert _login(colleague, world.manager_a.email, PASSWORD, COLLEAGUE).status_code == 302
    # The attacker's address may still log in to another account it knows the password of.
    other = Client()
    assert _login(other, world.manager_b.email, PASSWORD, ATTACKER).status_code == 302


@pytest.mark.parametrize(
    "variant",
    [
        str.upper,
        lambda e: "  " + e + " ",
        lambda e: e.replace("manager", "MANAGER"),
        lambda e: e.title(),
    ],
    ids=["upper", "spaces", "part-upper", "title"],
)
def test_spelling_the_email_differently_counts_against_the_same_account(world, client, variant):
    email = world.manager_a.email
    _fail(client, email, 4)
    assert _login(client, variant(email), "wrong").status_code == 429
    assert _login(client, email, PASSWORD).status_code == 429


def test_changing_user_agent_or_forged_forwarded_for_does_not_reset_the_count(world, client):
    email = world.manager_a.email
    for i in range(4):
        _login(
            client,
            email,
            "wrong",
            HTTP_USER_AGENT=f"Agent/{i}",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        )
    # No proxy is declared: X-Forwarded-For is the client's own writing.
    assert _login(client, email, "wrong", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 429


def test_behind_a_declared_proxy_the_client_address_is_the_proxys_last_entry(
    world, client, settings
):
    settings.PROXY_COUNT = 1
    proxy = "10.0.0.1"
    email = world.manager_a.email
    for i in range(5):
        # Whatever the attacker writes on the left, the proxy appended the real address.
        _login(client, email, "wrong", proxy, HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, {ATTACKER}")
    assert _login(client, email, PASSWORD, proxy, HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 429
    # Everyone reaches the app from the proxy's address; the colleague is not locked out.
    colleague = Client()
    answer = _login(colleague, email, PASSWORD, proxy, HTTP_X_FORWARDED_FOR=COLLEAGUE)
    assert answer.status_code == 302


def test_a_successful_login_resets_the_count(world, client):
    email = world.manager_a.email
    _fail(client, email, 4)
    assert _login(client, email, PASSWORD).status_code == 302
    client.post("/logout/")
    assert [a.status_code for a in _fail(client, email, 4)] == [200] * 4
    assert _login(client, email, PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off_and_more_tries_do_not_extend_it(world, client):
    email = world.manager_a.email
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        _fail(client, email, 5)
    with time_machine.travel(start + dt.timedelta(minutes=10), tick=False):
        again = _fail(client, email, 3)
        assert {a.status_code for a in again} == {429}
        # Still the first lockout's time: trying on does not push it back.
        retry = timezone.localtime(start + dt.timedelta(minutes=15))
        assert f"Try again at {retry:%H:%M} (in 5 minutes)" in again[-1].content.decode()
    with time_machine.travel(start + dt.timedelta(minutes=15, seconds=1), tick=False):
        assert _login(client, email, PASSWORD).status_code == 302


@pytest.mark.parametrize(
    "username",
    [
        "a" * 10_000 + "@example.com",
        "manager.a\x00@example.com",
        "\x00",
        "",
        "😀@example.com",
        "' OR 1=1 --",
        "<script>alert(1)</script>@example.com",
    ],
    ids=["huge", "nul-inside", "nul-only", "empty", "emoji", "sql", "html"],
)
def test_hostile_usernames_answer_a_form_error_never_a_500(world, client, username):
    for _ in range(6):
        answer = _login(client, username, "wrong")
        assert answer.status_code in (200, 429)
        assert b"<script>alert(1)</script>" not in answer.content
    assert all(len(a.username or "") <= 255 for a in AccessAttempt.objects.all())
    assert all("\x00" not in (a.username or "") for a in AccessAttempt.objects.all())


def test_successful_logins_leave_no_address_log(world, client):
    from axes.models import AccessLog

    assert _login(client, world.manager_a.email, PASSWORD).status_code == 302
    assert AccessLog.objects.count() == 0


# --- API tokens ---------------------------------------------------------------------------


def test_guessing_api_tokens_is_cut_off_per_address(world, client, settings):
    settings.TOKEN_FAILURE_LIMIT = 5
    _, key = token_create(user=world.manager_a)
    for i in range(5):
        answer = client.get(
            "/api/v1/units", HTTP_AUTHORIZATION=f"Bearer ens_guess{i}", REMOTE_ADDR=ATTACKER
        )
        assert answer.status_code == 401
    blocked = client.get(
        "/api/v1/units", HTTP_AUTHORIZATION="Bearer ens_guess9", REMOTE_ADDR=ATTACKER
    )
    assert blocked.status_code == 429
    assert blocked["Retry-After"] == str(settings.TOKEN_FAILURE_WINDOW)
    # Even a right guess is not evaluated from that address during the window.
    right = client.get("/api/v1/units", HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=ATTACKER)
    assert right.status_code == 429
    other = client.get("/api/v1/units", HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=COLLEAGUE)
    assert other.status_code == 200
    with time_machine.travel(
        timezone.now() + dt.timedelta(seconds=settings.TOKEN_FAILURE_WINDOW + 1)
    ):
        again = client.get(
            "/api/v1/units", HTTP_AUTHORIZATION=f"Bearer {key}", REMOTE_ADDR=ATTACKER
        )
        assert again.status_code == 200


@pytest.mark.parametrize(
    ("remote", "forwarded", "count", "expected"),
    [
        ("203.0.113.7", "", 0, "203.0.113.7"),
        ("203.0.113.7", "1.1.1.1", 0, "203.0.113.7"),
        ("10.0.0.1", "1.1.1.1, 203.0.113.7", 1, "203.0.113.7"),
        ("10.0.0.1", "1.1.1.1, 203.0.113.7, 10.0.0.2", 2, "203.0.113.7"),
        ("10.0.0.1", "", 1, "10.0.0.1"),
        ("10.0.0.1", "not-an-address", 1, "10.0.0.1"),
        ("10.0.0.1", " , ,", 1, "10.0.0.1"),
        ("10.0.0.1", "203.0.113.7", 2, "10.0.0.1"),
        ("10.0.0.1", "[2001:db8::1]:443", 1, "2001:db8::1"),
        ("10.0.0.1", "2001:DB8:0::1", 1, "2001:db8::1"),
        ("", "", 0, UNKNOWN),
        ("garbage", "", 0, UNKNOWN),
    ],
)
def test_client_ip_trusts_forwarded_for_only_as_far_as_declared(
    rf, settings, remote, forwarded, count, expected
):
    settings.PROXY_COUNT = count
    request = rf.get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


# --- HTTPS ----------------------------------------------------------------------------------


def test_https_redirect_and_hsts_trust_the_proxy_header_only_when_declared(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = None
    forged = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert forged.status_code == 301
    assert forged["Location"] == "https://testserver/login/"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    proxied = Client().get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert proxied.status_code == 200
    assert proxied["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


# --- content-security policy ------------------------------------------------------------------


class _InlineCode(HTMLParser):
    """Collects what a strict script policy would block: inline scripts, on… handlers,
    javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script":
            kind = (attributes.get("type") or "").lower()
            if "src" not in attributes and kind not in ("application/json", "application/ld+json"):
                self._in_script = True
        for name, value in attrs:
            if re.fullmatch(r"on[a-z]+", name):
                self.found.append(f"<{tag} {name}=…>")
            url = (value or "").strip().lower().replace("\t", "")
            if name in ("href", "src", "action", "formaction") and url.startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value}>")
            if name.startswith("hx-on"):
                self.found.append(f"<{tag} {name}=…> (htmx runs it through eval)")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append(f"inline <script>{data.strip()[:40]}…")


def _inline_code(html: str) -> list[str]:
    parser = _InlineCode()
    parser.feed(html)
    return parser.found


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in policy.split(";") if part.strip())
    return {words[0]: words[1:] for words in parts}


def test_no_template_has_inline_script_or_handlers():
    offenders = {}
    for template in (ROOT / "templates").rglob("*.html"):
        found = _inline_code(template.read_text())
        text = template.read_text()
        found += [m.group(0) for m in re.finditer(r"\bon[a-z]+\s*=\s*[\"']", text)]
        if found:
            offenders[str(template.relative_to(ROOT))] = found
    assert offenders == {}


MAIN_PAGES = [
    ("anon", "/login/"),
    ("manager_a", "/contacts/"),
    ("manager_a", "/contacts/new/"),
    ("manager_a", "/imports/"),
    ("manager_a", "/segments/"),
    ("manager_a", "/segments/new/"),
    ("manager_a", "/campaigns/"),
    ("manager_a", "/campaigns/calendar/"),
    ("manager_a", "/brand/templates/"),
    ("manager_a", "/brand/assets/"),
    ("manager_a", "/results/"),
    ("manager_a", "/gallery/"),
    ("manager_a", "/outbox/"),
    ("hq_admin", "/hq/"),
    ("hq_admin", "/hq/users/"),
    ("hq_admin", "/hq/roles/"),
    ("hq_admin", "/hq/audit/"),
    ("hq_admin", "/campaigns/rules/"),
    ("manager_a", "/api/v1/docs"),
]


@pytest.mark.parametrize(("persona", "path"), MAIN_PAGES)
def test_main_pages_carry_the_policy_and_no_inline_code(world, client, persona, path):
    if persona != "anon":
        client.force_login(getattr(world, persona))
    answer = client.get(path, follow=True)
    assert answer.status_code == 200, path
    directives = _directives(answer["Content-Security-Policy"])
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["base-uri"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["default-src"] == ["'self'"]
    assert "'unsafe-eval'" not in answer["Content-Security-Policy"]
    assert _inline_code(answer.content.decode()) == []


def test_unit_home_and_unit_previews_keep_their_policies(world, client):
    from tests.test_authorization_matrix import Objects

    objects = Objects(world)
    client.force_login(world.manager_a)
    home = client.get(f"/units/{world.unit_a.public_id}/")
    assert _directives(home["Content-Security-Policy"])["script-src"] == ["'self'"]
    assert _inline_code(home.content.decode()) == []
    # A unit's message preview: its own stricter policy, not the application's.
    preview = client.get(f"/campaigns/{objects.campaign['a'].public_id}/message/")
    assert preview.status_code == 200
    policy = _directives(preview["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert "script-src" not in policy  # so default-src 'none' forbids every script
    assert "sandbox" in policy
    assert preview["Content-Security-Policy"].count("Content-Security-Policy") == 0


def test_report_only_mode_sends_the_policy_under_the_report_only_header(client, settings):
    settings.CSP_REPORT_ONLY = True
    answer = client.get("/login/")
    assert "Content-Security-Policy" not in answer
    assert "script-src 'self'" in answer["Content-Security-Policy-Report-Only"]


# --- API docs -----------------------------------------------------------------------------


def test_api_docs_are_for_signed_in_users_and_use_vendored_assets(world, client):
    anonymous = client.get("/api/v1/docs")
    assert anonymous.status_code == 302
    assert anonymous["Location"] == "/login/?next=/api/v1/docs"
    assert client.get("/api/v1/openapi.json").status_code == 401
    client.force_login(world.staff_a)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in sources
    assert "/static/vendor/swagger-ui/swagger-ui.css" in sources
    assert all(s.startswith("/static/") for s in sources), sources
    assert 'data-openapi-url="/api/v1/openapi.json"' in html
    for name in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert (ROOT / "static" / "vendor" / "swagger-ui" / name).stat().st_size > 100_000
        assert client.get(f"/static/vendor/swagger-ui/{name}").status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_api_docs_answer_a_bearer_token(world, client):
    _, key = token_create(user=world.manager_a)
    answer = client.get("/api/v1/openapi.json", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert answer.status_code == 200
    assert "/api/v1/units" in answer.json()["paths"]


# --- security.txt -------------------------------------------------------------------------


def test_security_txt_follows_rfc_9116(client, settings):
    settings.SECURITY_CONTACT = ["mailto:security@example.com", "https://example.com/report"]
    settings.SECURITY_TXT_EXPIRES = dt.date(2099, 6, 30)
    settings.BASE_URL = "https://marketing.example.com"
    answer = client.get("/.well-known/security.txt")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/plain; charset=utf-8"
    assert answer.content.decode().splitlines() == [
        "Contact: mailto:security@example.com",
        "Contact: https://example.com/report",
        "Expires: 2099-06-30T23:59:59Z",
        "Preferred-Languages: fr, en",
        "Canonical: https://marketing.example.com/.well-known/security.txt",
    ]
    assert "script-src 'self'" in answer["Content-Security-Policy"]


def test_security_txt_expiry_rolls_ahead_when_unset_and_is_absent_without_contact(client, settings):
    settings.SECURITY_TXT_EXPIRES = None
    now = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
    with time_machine.travel(now, tick=False):
        body = client.get("/.well-known/security.txt").content.decode()
    assert "Expires: 2027-06-01T09:00:00Z" in body.splitlines()
    settings.SECURITY_CONTACT = []
    assert client.get("/.well-known/security.txt").status_code == 404


def test_a_failed_attempt_keeps_no_password(world, client):
    _fail(client, world.manager_a.email, 3)
    attempt = AccessAttempt.objects.get()
    assert attempt.failures_since_start == 3
    assert "wrong-" not in attempt.post_data + attempt.get_data
    assert attempt.username == world.manager_a.email
