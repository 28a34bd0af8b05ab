from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext as _

from enseigne.lib.client_ip import client_ip
from enseigne.lib.errorshape import ErrorCode, error_response
from enseigne.lib.rowsecurity import db_scope
from enseigne.network.access import access_for
from enseigne.network.tokens import Refusal, resolve, token_allows


def _count_failure(key: str) -> None:
    # The window runs from the first failure: incr keeps the key's expiry.
    if not cache.add(key, 1, timeout=settings.TOKEN_FAILURE_WINDOW):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=settings.TOKEN_FAILURE_WINDOW)


class BearerTokenMiddleware:
    """``Authorization: Bearer <token>`` authenticates an API call as the token's user.

    Resolved here, before the scope is set, so an API request runs under exactly its
    user's scope. A bearer request never uses the session cookie (no CSRF exposure).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            # Tokens carry 256 random bits, so guessing one is hopeless; the limit keeps a
            # client that tries anyway (or a broken integration) from costing a query a call.
            failures_key = f"bearer-failures:{client_ip(request)}"
            if cache.get(failures_key, 0) >= settings.TOKEN_FAILURE_LIMIT:
                response = error_response(
                    429,
                    ErrorCode.TOO_MANY_REQUESTS,
                    _("Too many invalid API tokens from this address. Try again later."),
                )
                response["Retry-After"] = str(settings.TOKEN_FAILURE_WINDOW)
                return response
            resolved = resolve(header[7:].strip())
            if resolved.refusal is Refusal.EXPIRED:
                return error_response(
                    401,
                    ErrorCode.TOKEN_EXPIRED,
                    _("This API token has expired: create a new one on your profile page."),
                )
            if resolved.token is None:
                _count_failure(failures_key)
                return error_response(
                    401, ErrorCode.TOKEN_INVALID, _("Invalid or revoked API token.")
                )
            # The scopes are checked here, once, for every address a token can reach.
            if not token_allows(resolved.token, request.method or "GET", request.path):
                return error_response(
                    403,
                    ErrorCode.TOKEN_SCOPE,
                    _("This API token's scope does not allow this call (%(scopes)s).")
                    % {"scopes": ", ".join(resolved.token.scopes)},
                )
            user = resolved.token.user
            request.user = user
            request._dont_enforce_csrf_checks = True  # no cookie involved
            request.authenticated_by_token = True
        return self.get_response(request)


class ScopeMiddleware:
    """Runs each signed-in request inside a transaction whose RLS scope is the user's org paths."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if not request.user.is_authenticated:
            # No transaction and no scope: row-level security shows such a request nothing, and
            # the public endpoints (clicks, opens, unsubscribes) set the scope they need. A click
            # then costs no database round trip at all.
            return self.get_response(request)
        with db_scope(access_for(request.user).paths):
            return self.get_response(request)
