"""Test settings: the production settings with in-process queue and mail, fast hashing."""

from config.settings import *  # noqa: F403

HUEY = {"huey_class": "huey.MemoryHuey", "name": "enseigne-test", "immediate": True}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LANGUAGE_CODE = "en"
IMPORT_BATCH_ROWS = 50  # small batches so tests cross batch boundaries
EMAIL_URL = "locmem:"
SMS_URL = "locmem:"
SEND_RETRY_SECONDS = 0
EVENTS_FLUSH_MS = 0  # each event written in its request, so a test reads it at once
SECURITY_CONTACT = ["mailto:security@enseigne.example"]
