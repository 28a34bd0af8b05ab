"""No NUL character enters through HTTP: refused with the field's name, before any view.

PostgreSQL text cannot hold U+0000 ("invalid byte sequence", a 500 when it reaches the
database), and no legitimate form field, JSON string or query parameter has one. Checking
each form and schema would leave the next new field unguarded, so one middleware looks at
everything a request carries as text: the path, the query string, form fields, and JSON
bodies at any depth (``values.headline``, ``contacts[3].email``). File contents are bytes
and are not looked at (Django already drops unprintable characters from file names). A view that reads a raw body of its own (an MTA
posting a bounce) opts out with :func:`accepts_nul_bytes`.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _

from enseigne.lib.errorshape import ErrorCode, error_response

NUL = "\x00"


def nul_paths(value: object, path: str = "") -> list[str]:
    """Where ``value`` (parsed JSON) holds a NUL, in keys or strings, as dotted paths."""
    if isinstance(value, str):
        return [path or "body"] if NUL in value else []
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            key = str(key)
            child = f"{path}.{key}" if path else key
            if NUL in key:
                found.append(child)
            found.extend(nul_paths(item, child))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(nul_paths(item, f"{path}[{index}]"))
    return found


def nul_message(field: str) -> str:
    return _(
        "“%(field)s” contains a NUL character (\\0), which no text may hold: remove it and "
        "send again."
    ) % {"field": field.replace(NUL, "\\0")}


def refuse_nul(value: str, field: str) -> str:
    """The shared validator for text arriving by another way than HTTP (a file, a task)."""
    if NUL in value:
        raise ValidationError({field: nul_message(field)})
    return value


def accepts_nul_bytes(view: Callable) -> Callable:
    """Mark a view that reads its raw body itself and answers for what it stores."""
    view.accepts_nul_bytes = True  # type: ignore[attr-defined]
    return view


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _keep_body_readable(request: HttpRequest) -> None:
    """Parsing a multipart form consumes the stream, after which a view that reads
    ``request.body`` (a provider's webhook) fails. Below Django's in-memory limit the body
    is read first, and the form is parsed from that copy; an upload above it streams to its
    handlers as before (and ``request.body`` would refuse it anyway)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if length <= limit:
        request.body  # noqa: B018 - cached on the request


def _fields_with_nul(request: HttpRequest) -> list[str]:
    found: list[str] = []
    if NUL in request.path:
        found.append(_("the address"))
    for key, values in request.GET.lists():
        if NUL in key or any(NUL in v for v in values):
            found.append(key)
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        if request.content_type in _FORM_TYPES:
            _keep_body_readable(request)
            for key, values in request.POST.lists():
                if NUL in key or any(NUL in v for v in values):
                    found.append(key)
        elif (request.content_type or "").endswith("json"):  # application/json, …+json
            body = request.body
            # Cheap test first: a NUL reaches JSON only as an escape (or as a raw byte,
            # which is not JSON and is refused as a NUL all the same).
            if b"\\u0000" in body or b"\x00" in body:
                try:
                    found.extend(nul_paths(json.loads(body)))
                except ValueError:
                    if b"\x00" in body:
                        found.append("body")
    return found


class RefuseNulMiddleware:
    """Answer 400 (422 with the API's error shape on ``/api/``) naming every field with a NUL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view, args, kwargs) -> HttpResponse | None:
        if getattr(view, "accepts_nul_bytes", False):
            return None
        fields = _fields_with_nul(request)
        if not fields:
            return None
        shown = (field.replace(NUL, "\\0") for field in fields)
        messages = {field: [nul_message(field)] for field in dict.fromkeys(shown)}
        if request.path.startswith("/api/"):
            return error_response(
                422, ErrorCode.VALIDATION_FAILED, _("Some fields are not valid."), messages
            )
        text = "\n".join(m[0] for m in messages.values())
        return HttpResponse(text, status=400, content_type="text/plain; charset=utf-8")
