"""The error family every interface renders the same way (API JSON, CLI lines, UI messages).

``TallyError(message, *, code, hint, location, details)``: ``UserError`` subclasses are shown
to the user with their stable ``code``; ``InternalError`` never is (500, logged).
"""

from __future__ import annotations

import logging
from typing import Any, TypedDict

logger = logging.getLogger("tally.errors")


class ErrorBody(TypedDict):
    code: str
    message: str
    hint: str | None
    location: str | None
    details: Any


class TallyError(Exception):
    """Base of every error Tally raises on purpose."""

    http_status = 500
    default_code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        location: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.hint = hint
        self.location = location
        self.details = details

    def as_body(self) -> ErrorBody:
        """The JSON shape under ``{"error": …}``."""
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "location": self.location,
            "details": self.details,
        }

    def cli_lines(self) -> list[str]:
        """``path.yml:12: error[code]: message`` then an indented hint line."""
        prefix = f"{self.location}: " if self.location else ""
        lines = [f"{prefix}error[{self.code}]: {self.message}"]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return lines


class UserError(TallyError):
    """Caused by the user's input; shown verbatim."""

    http_status = 400
    default_code = "bad_request"


class DefinitionError(UserError):
    default_code = "invalid_definition"


class QueryError(UserError):
    default_code = "bad_query"


class ReviewError(UserError):
    default_code = "review_error"


class ConflictError(ReviewError):
    http_status = 409
    default_code = "conflict"


class PermissionDenied(UserError):
    http_status = 403
    default_code = "permission_denied"


class NotFound(UserError):
    http_status = 404
    default_code = "not_found"


class WarehouseError(UserError):
    http_status = 502
    default_code = "warehouse_error"


class InternalError(TallyError):
    """A bug or an impossible state; never shown verbatim."""


class CompileError(InternalError):
    default_code = "compile_error"


def _first_field_error(
    detail: Any, codes: Any, path: str = ""
) -> tuple[str | None, str, str | None]:
    """(field path, message, code) of the first leaf error in DRF's nested error structure."""
    if isinstance(detail, dict) and detail:
        key = next(iter(detail))
        sub_codes = codes.get(key) if isinstance(codes, dict) else None
        return _first_field_error(detail[key], sub_codes, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        sub_codes = codes[0] if isinstance(codes, list) and codes else codes
        return _first_field_error(detail[0], sub_codes, path)
    return (path or None, str(detail), codes if isinstance(codes, str) else None)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Any:
    """DRF exception handler: every error becomes ``{"error": {code, message, hint, …}}``."""
    from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
    from django.core.exceptions import ValidationError as DjangoValidationError
    from django.http import Http404
    from rest_framework import exceptions as drf
    from rest_framework.response import Response
    from rest_framework.views import exception_handler

    if isinstance(exc, UserError):
        return Response({"error": exc.as_body()}, status=exc.http_status)
    if isinstance(exc, TallyError):
        logger.error("internal error %s: %s", exc.code, exc.message, exc_info=exc)
        body = InternalError("internal error; it has been logged", code=exc.code).as_body()
        return Response({"error": body}, status=500)
    if isinstance(exc, DjangoValidationError):
        exc = drf.ValidationError(
            detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, drf.APIException)
    detail = response.data
    code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
    if isinstance(exc, drf.ValidationError):
        # The first field error names the field, its message and its code (invalid_choice,
        # min_value…), so clients can branch on the code without parsing text.
        location, first_message, first_code = _first_field_error(detail, exc.get_codes())
        message = f"{location}: {first_message}" if location else str(first_message)
        code, details = first_code or code, detail
    else:
        message, details, location = str(exc.detail), None, None
    response.data = {
        "error": {
            "code": code,
            "message": message,
            "hint": None,
            "location": location,
            "details": details,
        }
    }
    return response
