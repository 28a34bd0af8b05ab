import pytest
from django.conf import settings
from django.db import connection, connections

from enseigne.lib.rowsecurity import ALL, db_scope, set_role_switch

# Migrations and test-database creation run as the schema owner; the tests themselves
# run as the unprivileged application role, so PostgreSQL's RLS policies really apply.
set_role_switch(False)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    if connection.vendor == "postgresql" and settings.DATABASE_APP_ROLE:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            # Flushing between transactional tests needs TRUNCATE, which the production app
            # role never gets (TRUNCATE ignores RLS). Tests only.
            cursor.execute(
                f"GRANT TRUNCATE ON ALL TABLES IN SCHEMA public TO {connection.ops.quote_name(settings.DATABASE_APP_ROLE)}"
            )
    connections.close_all()
    set_role_switch(True)
    yield
    # Dropping the test database is the owner's job again.
    set_role_switch(False)
    connections.close_all()


@pytest.fixture(autouse=True)
def _system_scope(request):
    """Unit tests act as the system (scope ALL); requests inside set their own scope."""
    names = request.fixturenames
    marker = request.node.get_closest_marker("django_db")
    transactional = marker is not None and marker.kwargs.get("transaction", False)
    if "transactional_db" in names or "live_server" in names or transactional:
        request.getfixturevalue("transactional_db")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('enseigne.scope', '*', false)")
        yield
        return
    if request.node.get_closest_marker("django_db") or "db" in names:
        request.getfixturevalue("db")
        with db_scope(ALL):
            yield
        return
    yield


@pytest.fixture
def world(db):
    from tests.factories import build_world

    return build_world()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttling counters live in the cache: one test's failed tokens never slow the next."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts in the default language: a request through the test client leaves the
    language it activated (LocaleMiddleware does not undo it), which would turn the next
    test's service messages French."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """The test client's POST, whose work queued after commit runs then (Huey is immediate
    in tests): a page that starts an import has run it when the response is back."""

    def posting(url, data=None, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data or {}, **headers)

    return posting
