"""Enseigne settings: every value comes from the environment (see .env.example)."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import (
    database_from_url,
    email_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    huey_from_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# "embedded" runs everything on one machine with SQLite and safe generated secrets;
# "production" refuses to start without explicit secrets and servers.
ENSEIGNE_MODE = env_str("ENSEIGNE_MODE", "embedded")
if ENSEIGNE_MODE not in {"embedded", "production"}:
    raise ImproperlyConfigured("ENSEIGNE_MODE must be 'embedded' or 'production'.")
EMBEDDED = ENSEIGNE_MODE == "embedded"

DATA_DIR = Path(env_str("ENSEIGNE_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    if not EMBEDDED:
        return env_str("SECRET_KEY")
    explicit = env_str("SECRET_KEY", "")
    if explicit:
        return explicit
    # The embedded demo keeps a generated key in its data directory; never a constant.
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if EMBEDDED else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The public address: unsubscribe links and e-mail images use it. In production it is
# required and must be https (List-Unsubscribe must be an https URL, RFC 8058).
BASE_URL = env_str("ENSEIGNE_BASE_URL", "http://127.0.0.1:8000" if EMBEDDED else None)
if not EMBEDDED and not BASE_URL.startswith("https://"):
    raise ImproperlyConfigured(
        f"ENSEIGNE_BASE_URL must be the public https:// address in production, got {BASE_URL!r}: "
        "unsubscribe links (List-Unsubscribe) must be https."
    )

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "treebeard",
    "rules.apps.AutodiscoverRulesConfig",
    "huey.contrib.djhuey",
    "axes",
    "enseigne.lib",
    "enseigne.network",
    "enseigne.contacts",
    "enseigne.identity",
    "enseigne.brand",
    "enseigne.commerce",
    "enseigne.rfm",
    "enseigne.personas",
    "enseigne.campaigns",
    "enseigne.delivery",
    "enseigne.tracking",
    "enseigne.journeys",
    "enseigne.analytics",
    "enseigne.api",
    "enseigne.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # After the locale (its answers are translated), before anything reads a body.
    "enseigne.api.errors.ApiErrorMiddleware",
    # After the locale (its refusal is translated), before CSRF reads the form.
    "enseigne.lib.textinput.RefuseNulMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "enseigne.network.middleware.BearerTokenMiddleware",
    "enseigne.network.middleware.ScopeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "enseigne.lib.csp.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "enseigne.network.context_processors.navigation",
            ],
        },
    }
]

DATABASES = {
    "default": database_from_url(
        env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'enseigne.sqlite3'}")
    )
}
# Row-level security: the role the application acts as on PostgreSQL. When set, each
# connection runs SET ROLE to it, so an owner login can still run migrations while the
# application itself is subject to the policies. Leave empty when DATABASE_URL already
# logs in as the unprivileged application role.
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "network.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a (username, address) pair that is locked out before any password check.
    "enseigne.network.login_throttle.LoginThrottleBackend",
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "enseigne" / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = "/media/"
# Library uploads: larger files are refused before they are decoded.
ASSET_MAX_UPLOAD_BYTES = env_int("ENSEIGNE_ASSET_MAX_BYTES", 10 * 1024 * 1024)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Production: library files on S3-compatible storage (AWS, Scaleway, OVH, MinIO…). The
# objects are public-read because recipients' mail clients load the images; file names
# are random. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
ASSET_BUCKET = env_str("ENSEIGNE_ASSET_BUCKET", "")
if ASSET_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ASSET_BUCKET,
            "endpoint_url": env_str("ENSEIGNE_ASSET_ENDPOINT_URL", "") or None,
            "region_name": env_str("ENSEIGNE_ASSET_REGION", "") or None,
            "custom_domain": env_str("ENSEIGNE_ASSET_CUSTOM_DOMAIN", "") or None,
            "default_acl": "public-read",
            "querystring_auth": False,
            "file_overwrite": False,
        },
    }
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not EMBEDDED)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# HTTPS (production defaults; the embedded demo runs on plain http://127.0.0.1).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not EMBEDDED)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if EMBEDDED else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not EMBEDDED)
# Preloading is a commitment browsers keep for months after it is withdrawn: the deployer
# opts in. Off, Django's deploy check would warn (security.W021) about a choice, not a fault.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Reverse proxies in front of the app (nginx, a load balancer…): how many add themselves to
# X-Forwarded-For and set X-Forwarded-Proto. 0 (the default) trusts neither header, since a
# client can send them itself: the scheme is the connection's, the address is REMOTE_ADDR.
PROXY_COUNT = env_int("ENSEIGNE_PROXY_COUNT", 0)
if PROXY_COUNT < 0:
    raise ImproperlyConfigured("ENSEIGNE_PROXY_COUNT must be 0 or more.")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PROXY_COUNT else None


# Content-Security-Policy of application pages (enseigne.lib.csp). Message previews send a
# stricter one of their own (enseigne.brand.views.sandboxed). Library images on S3 come from
# the bucket's origin (derived below); ENSEIGNE_CSP_IMG_SRC adds other image origins.
def _asset_origins() -> list[str]:
    if not ASSET_BUCKET:
        return []
    domain = env_str("ENSEIGNE_ASSET_CUSTOM_DOMAIN", "")
    if domain:
        return [f"https://{domain}"]
    endpoint = urlparse(env_str("ENSEIGNE_ASSET_ENDPOINT_URL", ""))
    if endpoint.netloc:
        # Path-style (endpoint/bucket/key) or virtual-hosted (bucket.endpoint/key) URLs.
        base = f"{endpoint.scheme}://"
        return [base + endpoint.netloc, base + f"{ASSET_BUCKET}.{endpoint.netloc}"]
    return [f"https://{ASSET_BUCKET}.s3.amazonaws.com"]


CSP_IMG_SRC = [
    "'self'",
    "data:",
    "blob:",
    *_asset_origins(),
    *env_list("ENSEIGNE_CSP_IMG_SRC", []),
]
CSP_REPORT_ONLY = env_bool("ENSEIGNE_CSP_REPORT_ONLY", False)

# Login throttling (django-axes, see docs/decisions.md): after LOGIN_FAILURE_LIMIT wrong
# passwords for one e-mail from one address, that pair waits LOGIN_COOLOFF_MINUTES. Counted
# per (e-mail, address), so someone guessing a colleague's password locks only themself out.
AXES_ENABLED = env_bool("ENSEIGNE_LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = env_int("ENSEIGNE_LOGIN_FAILURE_LIMIT", 5)
LOGIN_COOLOFF_MINUTES = env_int("ENSEIGNE_LOGIN_COOLOFF_MINUTES", 15)
if AXES_FAILURE_LIMIT < 1 or LOGIN_COOLOFF_MINUTES < 1:
    raise ImproperlyConfigured(
        "ENSEIGNE_LOGIN_FAILURE_LIMIT and ENSEIGNE_LOGIN_COOLOFF_MINUTES must be 1 or more."
    )
AXES_COOLOFF_TIME = dt.timedelta(minutes=LOGIN_COOLOFF_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The time a locked-out user is told stays true: more tries during the lockout do not move it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The login form and authenticate() call it "username" (it holds the e-mail).
AXES_USERNAME_FORM_FIELD = "username"
AXES_USERNAME_CALLABLE = "enseigne.network.login_throttle.username_of"
AXES_CLIENT_IP_CALLABLE = "enseigne.lib.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "enseigne.network.login_throttle.lockout_response"
# No log of successful logins (addresses are personal data); failed attempts are kept only
# for their cool-off (deleted at the next login after it).
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ACCESS_FAILURE_LOG = False
AXES_VERBOSE = False
# API bearer tokens: an address that sends TOKEN_FAILURE_LIMIT unknown tokens within
# TOKEN_FAILURE_WINDOW seconds gets 429 for every bearer call until the window ends.
TOKEN_FAILURE_LIMIT = env_int("ENSEIGNE_TOKEN_FAILURE_LIMIT", 20)
TOKEN_FAILURE_WINDOW = env_int("ENSEIGNE_TOKEN_FAILURE_WINDOW", 300)

# /.well-known/security.txt (RFC 9116): where to report a vulnerability. Contacts are
# mailto: or https: URIs; without one the file is not served (404). Expires is a date the
# deployer commits to review the file by (RFC 9116 wants it under a year away); unset, it
# rolls 180 days ahead.
SECURITY_CONTACT = env_list("ENSEIGNE_SECURITY_CONTACT", [])
for _contact in SECURITY_CONTACT:
    if not _contact.startswith(("mailto:", "https://", "tel:")):
        raise ImproperlyConfigured(
            f"ENSEIGNE_SECURITY_CONTACT entries must be mailto:, https:// or tel: URIs, got {_contact!r}."
        )
_expires = env_str("ENSEIGNE_SECURITY_TXT_EXPIRES", "")
try:
    SECURITY_TXT_EXPIRES = dt.date.fromisoformat(_expires) if _expires else None
except ValueError as exc:
    raise ImproperlyConfigured(
        f"ENSEIGNE_SECURITY_TXT_EXPIRES must be a date (YYYY-MM-DD), got {_expires!r}."
    ) from exc
SECURITY_TXT_LANGUAGES = env_str("ENSEIGNE_SECURITY_TXT_LANGUAGES", "fr, en")
SECURITY_TXT_POLICY = env_str("ENSEIGNE_SECURITY_TXT_POLICY", "")

EMAIL_URL = env_str("EMAIL_URL", "smtp://127.0.0.1:8025" if EMBEDDED else None)
_email = email_from_url(EMAIL_URL)
globals().update(_email)
# ESPs through django-anymail: EMAIL_URL=esp:anymail.backends.mailgun.EmailBackend and the
# provider's settings as ANYMAIL_<NAME> variables (e.g. ANYMAIL_MAILGUN_API_KEY).
ANYMAIL = {
    name[len("ANYMAIL_") :]: value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_")
}

# Who learns of contact records written, in the writer's transaction (enseigne.contacts.records):
# identity links each new record to its person there.
ENSEIGNE_RECORD_HOOKS = [
    "enseigne.identity.linking.hooks",
    # HQ-only rows about a record not linked yet, which a store's erasure cannot see.
    "enseigne.rfm.hooks.erased_person_scores",
    "enseigne.personas.services.erased_person_personas",
]
# Who learns of orders written, in the writer's transaction (enseigne.commerce.order_hooks,
# which keeps commerce's own purchase summaries first): RFM updates those buyers' scores once
# it commits.
ENSEIGNE_ORDER_HOOKS = [
    "enseigne.rfm.hooks.orders_written",
]
# Who offers the segment builder conditions on what customers did (contacts.segments
# .ExtraField): each provider gets the fields declared before it (identity lifts them to
# the person).
ENSEIGNE_SEGMENT_FIELDS = [
    "enseigne.campaigns.segment_fields.fields",
    "enseigne.commerce.segment_fields.fields",
    "enseigne.rfm.segment_fields.fields",
    "enseigne.personas.segment_fields.fields",
    "enseigne.delivery.segment_fields.fields",
    "enseigne.identity.segment_fields.fields",
    "enseigne.rfm.segment_fields.network_fields",
    "enseigne.personas.segment_fields.network_fields",
    "enseigne.delivery.segment_fields.network_fields",
]
# What later apps add to a record's GDPR export (the store's and HQ's per-person file).
ENSEIGNE_RECORD_EXPORT_PARTS = [
    "enseigne.commerce.record_export.orders",
    "enseigne.rfm.record_export.scores",
    "enseigne.personas.record_export.persona",
    "enseigne.tracking.record_export.purchases_and_messages",
]
# Who answers "which person is this record?" for the contacts API (HQ, one controller mode).
ENSEIGNE_PERSON_LOOKUP = "enseigne.identity.selectors.person_public_id"
# A matching key (e-mail, phone) held by more records than this links none of them: a shop's
# phone typed on every card or a test address would otherwise make one person of strangers.
ENSEIGNE_IDENTITY_SHARED_KEY_CAP = env_int("ENSEIGNE_IDENTITY_SHARED_KEY_CAP", 10)
# HQ's people figures: a cross-shopping cell under this many people shows "< N", not its count.
ENSEIGNE_SMALL_COUNT_THRESHOLD = env_int("ENSEIGNE_SMALL_COUNT_THRESHOLD", 5)

# Campaign sending (see docs/deploying.md in the README's engineer section).
SMTP_CONCURRENCY = env_int("ENSEIGNE_SMTP_CONCURRENCY", 4)
EMAIL_RATE = env_int("ENSEIGNE_EMAIL_RATE", 0)  # messages/s for the SMTP relay or ESP, 0 = no limit
# SMS: outbox: (embedded demo: shown in the Outbox page), console:, file:///dir,
# https://provider/endpoint (generic JSON POST), smpp://system_id:password@host:port
SMS_URL = env_str("SMS_URL", "outbox:" if EMBEDDED else None)
SMS_HTTP_TOKEN = env_str("SMS_HTTP_TOKEN", "")
SMS_RATE = env_int("ENSEIGNE_SMS_RATE", 0)
SEND_BATCH_SIZE = env_int("ENSEIGNE_SEND_BATCH_SIZE", 1000)
SEND_CHUNK_SIZE = env_int("ENSEIGNE_SEND_CHUNK_SIZE", 250)
# A claimed row's lease: a runner renews its leases every third of it, so a dead runner's
# rows are free again within this many seconds.
SEND_LEASE_SECONDS = env_int("ENSEIGNE_SEND_LEASE_SECONDS", 30)
# How many runners (worker processes or threads, on any host) share one campaign at once.
SEND_RUNNERS_PER_CAMPAIGN = env_int("ENSEIGNE_SEND_RUNNERS_PER_CAMPAIGN", 8)
# Messages each SMTP connection may have "in flight" (marked before their DATA, outcome not
# yet durable): the most a crash can leave unknown is a runner's connections x this
# (docs/benchmarks.md: depth 2, 4, 8 sent 444, 641, 808 msg/s on one loaded worker).
SEND_INFLIGHT_DEPTH = env_int("ENSEIGNE_SEND_INFLIGHT_DEPTH", 8)
# SQLite (one writer): messages per hand-off chunk, the most a crash can leave unknown there.
SEND_SQLITE_INFLIGHT = env_int("ENSEIGNE_SEND_SQLITE_INFLIGHT", 32)
SEND_MAX_ATTEMPTS = env_int("ENSEIGNE_SEND_MAX_ATTEMPTS", 6)
SEND_RETRY_SECONDS = env_int("ENSEIGNE_SEND_RETRY_SECONDS", 60)
# SQLite only: once the worker has held the single write lock for SEND_SQLITE_HOLD_MS of
# hand-offs, it pauses SEND_SQLITE_YIELD_MS so other writers (unsubscribes, the UI) get it.
SEND_SQLITE_YIELD_MS = env_int("ENSEIGNE_SEND_SQLITE_YIELD_MS", 120)
SEND_SQLITE_HOLD_MS = env_int("ENSEIGNE_SEND_SQLITE_HOLD_MS", 400)
# A message whose connection dropped after end-of-data may or may not have left:
# "at_most_once" never sends it again (default), "retry" sends it again and logs it.
AMBIGUOUS_POLICY = env_str("ENSEIGNE_AMBIGUOUS_POLICY", "at_most_once")
if AMBIGUOUS_POLICY not in {"at_most_once", "retry"}:
    raise ImproperlyConfigured("ENSEIGNE_AMBIGUOUS_POLICY must be 'at_most_once' or 'retry'.")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Enseigne <no-reply@enseigne.localhost>")
# Bounce reports: a Maildir the MTA delivers bounces+…@ to (read every minute), besides the
# stdin command and the inbound URL (`enseigne process_bounces --print-url`).
BOUNCE_MAILDIR = env_str("ENSEIGNE_BOUNCE_MAILDIR", "")
# Spam complaints per message sent, per campaign: warn at 0.1 %, pause at 0.3 % (Gmail and
# Yahoo's bulk-sender rule), once the campaign has sent enough for a rate to mean something.
COMPLAINT_WARN_RATE = env_float("ENSEIGNE_COMPLAINT_WARN_RATE", 0.001)
COMPLAINT_PAUSE_RATE = env_float("ENSEIGNE_COMPLAINT_PAUSE_RATE", 0.003)
COMPLAINT_MIN_SENT = env_int("ENSEIGNE_COMPLAINT_MIN_SENT", 1000)

# Opens and clicks are written in batches by a thread of each web process: every
# EVENTS_FLUSH_MS, or as soon as EVENTS_BATCH wait (0 = write each event in its request).
EVENTS_FLUSH_MS = env_int("ENSEIGNE_EVENTS_FLUSH_MS", 200)
EVENTS_BATCH = env_int("ENSEIGNE_EVENTS_BATCH", 2000)
# Click tracking rewrites the links of e-mails; the open pixel is added to their HTML.
TRACK_CLICKS = env_bool("ENSEIGNE_TRACK_CLICKS", True)
TRACK_OPENS = env_bool("ENSEIGNE_TRACK_OPENS", True)

HUEY = huey_from_url(
    env_str("HUEY_URL", f"sqlite:///{DATA_DIR / 'huey.sqlite3'}" if EMBEDDED else None),
    name="enseigne",
)

# Import limits: a store manager's file, not a data warehouse dump.
IMPORT_MAX_BYTES = env_int("ENSEIGNE_IMPORT_MAX_BYTES", 200 * 1024 * 1024)
IMPORT_BATCH_ROWS = env_int("ENSEIGNE_IMPORT_BATCH_ROWS", 20_000)
CONTACTS_PAGE_SIZE = 50

# One line per event, in UTC (ISO 8601), through one handler: Huey's consumer adds its own
# handler only to a "huey" logger that has none, which printed every worker line twice.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"line": {"()": "enseigne.lib.logs.OneLineUtc"}},
    "filters": {
        "expected_refusals": {"()": "enseigne.lib.logs.ExpectedRefusals"},
        "one_line_per_task": {"()": "enseigne.lib.logs.OneLinePerTask"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["expected_refusals"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
        "huey": {
            "handlers": ["console"],
            "filters": ["one_line_per_task"],
            "level": env_str("LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}
