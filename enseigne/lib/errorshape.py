"""The one shape of every 4xx the JSON API answers, declared here and nowhere else.

``{"error": {"code": "<stable_snake_code>", "message": "<text in the caller's language>",
"fields": {"<field>": ["<text>", ...]}}}``. ``code`` is what an integration branches on (it
never changes with the language); ``message`` is for a person; ``fields`` names each refused
field (empty when the refusal is not about a field). It lives in ``lib`` because middleware
that answers before the API (NUL refusal, bearer tokens) speaks it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from django.http import JsonResponse


class ErrorCode(StrEnum):
    BAD_REQUEST = "bad_request"
    VALIDATION_FAILED = "validation_failed"
    AUTHENTICATION_REQUIRED = "authentication_required"
    TOKEN_INVALID = "token_invalid"  # noqa: S105 (a code, not a secret)
    TOKEN_EXPIRED = "token_expired"  # noqa: S105
    PERMISSION_DENIED = "permission_denied"
    TOKEN_SCOPE = "token_scope"  # noqa: S105
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    BODY_TOO_LARGE = "body_too_large"
    TOO_MANY_REQUESTS = "too_many_requests"


def error_body(
    code: ErrorCode, message: str, fields: Mapping[str, Sequence[str]] | None = None
) -> dict:
    return {
        "error": {
            "code": str(code),
            "message": str(message),
            "fields": {name: [str(m) for m in msgs] for name, msgs in (fields or {}).items()},
        }
    }


def error_response(
    status: int,
    code: ErrorCode,
    message: str,
    fields: Mapping[str, Sequence[str]] | None = None,
) -> JsonResponse:
    return JsonResponse(error_body(code, message, fields), status=status)


def is_error_body(data: object) -> bool:
    """Whether parsed JSON already has the shape (the catch-all leaves those alone)."""
    return (
        isinstance(data, dict)
        and set(data) == {"error"}
        and isinstance(data["error"], dict)
        and {"code", "message", "fields"} <= set(data["error"])
    )
