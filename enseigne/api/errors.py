"""Every 4xx of the API in the one error shape (``enseigne.lib.errorshape``), translated.

Three ways an error reaches a caller, all ending here:
- an exception in an operation (validation, permission, not found, …): the handlers below;
- a response made before or around ninja (an unknown address, a method ninja does not
  route, a body over the size limit): :class:`ApiErrorMiddleware` answers or reshapes it;
- middleware that refuses early (bearer tokens, NUL characters) builds the shape itself.
Each operation documents these answers in the OpenAPI schema (:data:`ERROR_RESPONSES`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Router, Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from enseigne.lib.errorshape import ErrorCode, error_body, error_response, is_error_body

API_PREFIX = "/api/"


class ErrorDetail(Schema):
    code: ErrorCode
    message: str
    fields: dict[str, list[str]]


class ErrorOut(Schema):
    """Every 4xx answer: ``code`` is stable, ``message`` is in the caller's language."""

    error: ErrorDetail


# What each status documents in the schema (the 401, 413 and 429 come from the token
# and size checks in front of every operation, so every operation can answer them).
ERROR_STATUSES = (400, 401, 403, 404, 413, 422, 429)
ERROR_RESPONSES: dict[int, type[Schema]] = dict.fromkeys(ERROR_STATUSES, ErrorOut)


def document_errors(router: Router) -> Router:
    """Add the shared 4xx answers to each operation of ``router`` that does not declare its
    own (called once per router as the API is assembled, so no operation can miss them)."""
    for path_view in router.path_operations.values():
        for operation in path_view.operations:
            for status, schema in ERROR_RESPONSES.items():
                if status not in operation.response_models:
                    operation.response_models[status] = operation._create_response_model(schema)
    return router


# Pydantic's messages are English only: the common ones are said again in our catalogue,
# with the constraint they carry (``ctx``); the rare ones fall back to a generic sentence.
_PYDANTIC_MESSAGES: dict[str, Callable[[dict], str]] = {
    "missing": lambda ctx: _("This field is required."),
    "string_too_long": lambda ctx: _("At most %(max)s characters.") % {"max": ctx["max_length"]},
    "string_too_short": lambda ctx: _("At least %(min)s characters.") % {"min": ctx["min_length"]},
    "greater_than_equal": lambda ctx: _("Must be at least %(min)s.") % {"min": ctx["ge"]},
    "less_than_equal": lambda ctx: _("Must be at most %(max)s.") % {"max": ctx["le"]},
    "greater_than": lambda ctx: _("Must be more than %(min)s.") % {"min": ctx["gt"]},
    "less_than": lambda ctx: _("Must be less than %(max)s.") % {"max": ctx["lt"]},
    "string_type": lambda ctx: _("Must be text."),
    "int_parsing": lambda ctx: _("Must be a whole number."),
    "int_type": lambda ctx: _("Must be a whole number."),
    "int_from_float": lambda ctx: _("Must be a whole number."),
    "bool_parsing": lambda ctx: _("Must be true or false."),
    "bool_type": lambda ctx: _("Must be true or false."),
    "uuid_parsing": lambda ctx: _("Must be an identifier (UUID)."),
    "uuid_type": lambda ctx: _("Must be an identifier (UUID)."),
    "datetime_parsing": lambda ctx: _("Must be a date and time (ISO 8601)."),
    "datetime_from_date_parsing": lambda ctx: _("Must be a date and time (ISO 8601)."),
    "datetime_type": lambda ctx: _("Must be a date and time (ISO 8601)."),
    "date_parsing": lambda ctx: _("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_parsing": lambda ctx: _("Must be a date (YYYY-MM-DD)."),
    "date_from_datetime_inexact": lambda ctx: _("Must be a date (YYYY-MM-DD)."),
    "date_type": lambda ctx: _("Must be a date (YYYY-MM-DD)."),
    "decimal_parsing": lambda ctx: _("Must be a number."),
    "decimal_type": lambda ctx: _("Must be a number."),
    "float_parsing": lambda ctx: _("Must be a number."),
    "float_type": lambda ctx: _("Must be a number."),
    "finite_number": lambda ctx: _("Must be a number."),
    "decimal_max_digits": lambda ctx: _("At most %(max)s digits.") % {"max": ctx["max_digits"]},
    "decimal_max_places": lambda ctx: (
        _("At most %(max)s digits after the decimal point.") % {"max": ctx["decimal_places"]}
    ),
    "decimal_whole_digits": lambda ctx: (
        _("At most %(max)s digits before the decimal point.") % {"max": ctx["whole_digits"]}
    ),
    "dict_type": lambda ctx: _("Must be a JSON object."),
    "model_attributes_type": lambda ctx: _("Must be a JSON object."),
    "model_type": lambda ctx: _("Must be a JSON object."),
    "list_type": lambda ctx: _("Must be a list."),
    "json_invalid": lambda ctx: _("The body is not valid JSON."),
    "enum": lambda ctx: _("Must be one of: %(choices)s.") % {"choices": ctx["expected"]},
    "literal_error": lambda ctx: _("Must be one of: %(choices)s.") % {"choices": ctx["expected"]},
    "too_long": lambda ctx: _("At most %(max)s items.") % {"max": ctx["max_length"]},
}

_SOURCES = {"body", "query", "path", "form", "file", "header", "cookie"}


def _field_name(loc: list | tuple, body_params: frozenset[str] = frozenset()) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _SOURCES:
        source, parts = parts[0], parts[1:]
        # A JSON body is one parameter (``payload``); its fields are what the caller named.
        if source == "body" and len(parts) > 1:
            parts = parts[1:]
        elif source == "body":
            return "body"
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() and name else (f".{part}" if name else part)
    return name or "body"


def _pydantic_message(error: dict) -> str:
    translate = _PYDANTIC_MESSAGES.get(error.get("type", ""))
    if translate is not None:
        try:
            return translate(error.get("ctx") or {})
        except (KeyError, TypeError):
            pass
    return _("This value is not valid.")


def _fields_of_ninja_error(exc: NinjaValidationError) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        fields.setdefault(_field_name(error.get("loc", ())), []).append(_pydantic_message(error))
    return fields


def _fields_of_django_error(exc: DjangoValidationError) -> tuple[str, dict[str, list[str]]]:
    if hasattr(exc, "error_dict"):
        fields = {name: [str(m) for m in msgs] for name, msgs in exc.message_dict.items()}
    else:
        fields = {"__all__": [str(m) for m in exc.messages]}
    general = fields.pop("__all__", [])
    message = " ".join(general) if general else _("Some fields are not valid.")
    return message, fields


_STATUS_DEFAULTS: dict[int, tuple[ErrorCode, Callable[[], str]]] = {
    400: (ErrorCode.BAD_REQUEST, lambda: _("The request could not be read.")),
    401: (
        ErrorCode.AUTHENTICATION_REQUIRED,
        lambda: _("Authentication required: send the header Authorization: Bearer <token>."),
    ),
    403: (ErrorCode.PERMISSION_DENIED, lambda: _("Your role does not allow this.")),
    404: (ErrorCode.NOT_FOUND, lambda: _("Not found, or not visible to you.")),
    405: (ErrorCode.METHOD_NOT_ALLOWED, lambda: _("This address does not accept this method.")),
    413: (ErrorCode.BODY_TOO_LARGE, lambda: _("The request body is too large.")),
    422: (ErrorCode.VALIDATION_FAILED, lambda: _("Some fields are not valid.")),
    429: (ErrorCode.TOO_MANY_REQUESTS, lambda: _("Too many requests. Try again later.")),
}


def status_error(status: int) -> dict:
    code, message = _STATUS_DEFAULTS.get(status, (ErrorCode.BAD_REQUEST, _STATUS_DEFAULTS[400][1]))
    return error_body(code, message())


def install(api: NinjaAPI) -> None:
    """Register the handlers that turn each exception into the shape."""

    def respond(request: HttpRequest, status: int, body: dict) -> HttpResponse:
        return api.create_response(request, body, status=status)

    @api.exception_handler(NinjaValidationError)
    def ninja_validation(request, exc: NinjaValidationError):
        return respond(
            request,
            422,
            error_body(
                ErrorCode.VALIDATION_FAILED,
                _("Some fields are not valid."),
                _fields_of_ninja_error(exc),
            ),
        )

    @api.exception_handler(DjangoValidationError)
    def django_validation(request, exc: DjangoValidationError):
        message, fields = _fields_of_django_error(exc)
        return respond(request, 422, error_body(ErrorCode.VALIDATION_FAILED, message, fields))

    @api.exception_handler(PermissionDenied)
    def permission_denied(request, exc):
        return respond(request, 403, status_error(403))

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return respond(request, 404, status_error(404))

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request, exc):
        return respond(request, 404, status_error(404))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        return respond(request, 401, status_error(401))

    @api.exception_handler(HttpError)
    def http_error(request, exc: HttpError):
        return respond(request, exc.status_code, status_error(exc.status_code))


def _body_limit(request: HttpRequest) -> int | None:
    """The largest body the API reads: Django's in-memory limit for JSON and forms; for
    an upload, the largest file an upload takes (imports) plus the form's own fields."""
    memory = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if memory is None:
        return None
    if (request.content_type or "").startswith("multipart/"):
        return max(settings.IMPORT_MAX_BYTES, settings.ASSET_MAX_UPLOAD_BYTES) + memory
    return memory


class ApiErrorMiddleware:
    """Under ``/api/``: refuse a body over the limit with a JSON 413 before anything reads it
    (Django would answer its HTML 400), and give any other 4xx made outside an operation
    (unknown address, unrouted method) the shape. Placed after the locale middleware, so
    messages follow ``Accept-Language``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        limit = _body_limit(request)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            return error_response(
                413,
                ErrorCode.BODY_TOO_LARGE,
                _("The request body is too large: at most %(limit)s bytes.") % {"limit": limit},
            )
        response = self.get_response(request)
        if 400 <= response.status_code < 500 and not _has_shape(response):
            reshaped = error_response(response.status_code, *_code_and_message(response))
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    reshaped[header] = response[header]
            return reshaped
        return response


def _code_and_message(response: HttpResponse) -> tuple[ErrorCode, str]:
    body = status_error(response.status_code)["error"]
    return ErrorCode(body["code"]), body["message"]


def _has_shape(response: HttpResponse) -> bool:
    if getattr(response, "streaming", False):
        return True  # nothing of ours streams an error; leave it untouched
    if "json" not in response.get("Content-Type", ""):
        return False
    try:
        return is_error_body(json.loads(response.content))
    except ValueError:
        return False
