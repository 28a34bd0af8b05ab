"""The v1 JSON API, assembled from each app's router. Bearer tokens only."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.security import HttpBearer

from enseigne.api import errors
from enseigne.api.docs import VendoredSwagger, signed_in_only
from enseigne.brand.api import router as brand_router
from enseigne.campaigns.api import router as campaigns_router
from enseigne.commerce.api import router as commerce_router
from enseigne.contacts.api import router as contacts_router
from enseigne.delivery.api import router as delivery_router
from enseigne.identity.api import router as identity_router
from enseigne.network.api import router as network_router
from enseigne.tracking.api import router as tracking_router


class TokenAuth(HttpBearer):
    """The token was resolved by BearerTokenMiddleware (so the RLS scope is already set);
    here we only insist that it was a token, not a browser session."""

    def __call__(self, request: HttpRequest):
        if getattr(request, "authenticated_by_token", False) and request.user.is_authenticated:
            return request.user
        return None

    def authenticate(self, request, token):  # pragma: no cover - __call__ decides
        return None


api = NinjaAPI(
    title="Enseigne API",
    version="1",
    auth=TokenAuth(),
    urls_namespace="api",
    docs=VendoredSwagger(),
    docs_decorator=signed_in_only,
    description="Distributed marketing: units, contacts, consent, imports, assets, templates, campaigns, conversions, orders. "
    "Authenticate with `Authorization: Bearer <token>`: create a token on your profile page "
    "(or `enseigne create_token <email> --scope … --expires DAYS`); its scopes narrow what your "
    'role allows. Every 4xx answers `{"error": {"code", "message", "fields"}}` '
    "(`code` stable, `message` in the `Accept-Language` language, `fields` per refused field). "
    'Lists take `limit` (1–500) and `offset` and answer `{"count", "results"}`.',
)
for router in (
    network_router,
    contacts_router,
    identity_router,
    brand_router,
    commerce_router,
    campaigns_router,
    delivery_router,
    tracking_router,
):
    api.add_router("/", errors.document_errors(router))
errors.install(api)
