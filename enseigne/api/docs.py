"""The API's documentation page: Swagger UI from static/vendor, for signed-in users only.

django-ninja's own page loads Swagger UI from a CDN and an init script; ours serves the
vendored files (no third party sees who reads the docs, and the page keeps the
application's script policy). The schema and the page answer only a signed-in user or a
bearer token: anonymous browsers go to the login page, anonymous API clients get 401.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from ninja.openapi.docs import DocsBase

from enseigne.api.errors import status_error


class VendoredSwagger(DocsBase):
    def render_page(self, request: HttpRequest, api, **kwargs) -> HttpResponse:
        return render(
            request,
            "api/docs.html",
            {"api": api, "openapi_url": self.get_openapi_url(api, kwargs)},
        )


def signed_in_only(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.resolver_match and request.resolver_match.url_name == "openapi-json":
            return JsonResponse(status_error(401), status=401)
        return redirect_to_login(request.get_full_path())

    return wrapper
