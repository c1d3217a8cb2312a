"""The error family every interface renders the same way (API JSON, CLI lines, UI messages).

``TallyError(message, *, code, hint, location, details)``: ``UserError`` subclasses are shown
to the user with their stable ``code``; ``InternalError`` never is (500, logged).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any, TypedDict

logger = logging.getLogger("tally.errors")

# What a user reads instead of the warehouse's own error text (which can quote data: a value
# that failed a CAST, a file's contents, another tenant's rows). The raw text is logged once
# under the reference and shown to administrators only (``details.warehouse_message``).
WAREHOUSE_HIDDEN_MESSAGE = (
    "the warehouse rejected the query ({code}); an administrator can read the details in the "
    "server log under reference {reference}"
)
WAREHOUSE_UNAVAILABLE_HIDDEN_MESSAGE = (
    "the warehouse cannot be reached ({code}); an administrator can read the details in the "
    "server log under reference {reference}"
)
WAREHOUSE_HIDDEN_HINT = (
    "check the definitions and the query; give the reference to an administrator if it persists"
)
# WarehouseError codes whose message Tally writes itself and which quote no warehouse text:
# shown as they are. Every other code (warehouse_error, warehouse_unavailable, any new one)
# is hidden: fail closed.
WAREHOUSE_OWN_MESSAGES = frozenset(
    {"warehouse_timeout", "warehouse_cancelled", "warehouse_table_exists"}
)
INTERNAL_MESSAGE = "internal error; it has been logged"


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
    """The warehouse refused or failed a query. Its own text never reaches a user: unless the
    code is one whose message Tally wrote (``WAREHOUSE_OWN_MESSAGES``), ``message`` is a
    generic text with a reference, the raw text is logged under that reference and kept in
    ``warehouse_message`` for renderers that show it to administrators."""

    http_status = 502
    default_code = "warehouse_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        location: str | None = None,
        details: Any = None,
        public: bool = False,
    ) -> None:
        code = code or self.default_code
        self.warehouse_message: str | None = None
        self.reference: str | None = None
        # ``public``: the caller wrote ``message`` itself and quotes no warehouse text (see
        # ``in_context``); anything else is hidden unless its code says Tally wrote it.
        if public or code in WAREHOUSE_OWN_MESSAGES:
            super().__init__(message, code=code, hint=hint, location=location, details=details)
            return
        # Hidden at construction, not at rendering: a check summary, an audit row, a compute
        # run's error or a finding stores ``message`` long before any interface renders it.
        reference = secrets.token_hex(6)
        template = (
            WAREHOUSE_UNAVAILABLE_HIDDEN_MESSAGE
            if code == "warehouse_unavailable"
            else WAREHOUSE_HIDDEN_MESSAGE
        )
        public_details = dict(details) if isinstance(details, dict) else {}
        public_details["reference"] = reference
        super().__init__(
            template.format(code=code, reference=reference),
            code=code,
            hint=WAREHOUSE_HIDDEN_HINT if code != "warehouse_unavailable" else hint,
            location=location,
            details=public_details,
        )
        self.warehouse_message, self.reference = message, reference
        logger.warning("warehouse error %s [reference %s]: %s", code, reference, message)

    def in_context(self, message: str, *, hint: str | None = None) -> WarehouseError:
        """This error with Tally's context around it; ``message`` may quote ``self.message``
        (already generic) but no warehouse text. Keeps the reference and the raw text."""
        error = WarehouseError(
            message, code=self.code, hint=hint or self.hint, details=self.details, public=True
        )
        error.warehouse_message, error.reference = self.warehouse_message, self.reference
        return error

    def admin_body(self) -> ErrorBody:
        """``as_body()`` plus the warehouse's own text: for administrators only."""
        body = self.as_body()
        if self.warehouse_message is not None:
            body["details"] = {
                **(body["details"] or {}),
                "warehouse_message": self.warehouse_message,
            }
        return body


class InternalError(TallyError):
    """A bug or an impossible state; never shown verbatim."""


class CompileError(InternalError):
    default_code = "compile_error"


def _admin_never(request: Any) -> bool:
    return False


# Is the request's caller an administrator (who may read the warehouse's own error text)?
# Access control lives above this floor: RegistryConfig.ready installs the real test; until
# then nobody is (fail closed).
request_is_admin: Callable[[Any], bool] = _admin_never


def request_admin_check_install(check: Callable[[Any], bool]) -> None:
    """Installs the administrator test renderers use (called once by RegistryConfig.ready)."""
    global request_is_admin
    request_is_admin = check


def error_body(exc: TallyError, *, request: Any = None) -> ErrorBody:
    """The body an interface shows for ``exc``: a UserError as it is (a WarehouseError with
    the warehouse's text only for an administrator's request), anything else generic."""
    if isinstance(exc, WarehouseError) and request is not None and request_is_admin(request):
        return exc.admin_body()
    if isinstance(exc, UserError):
        return exc.as_body()
    return InternalError(INTERNAL_MESSAGE, code=exc.code).as_body()


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
        return Response(
            {"error": error_body(exc, request=context.get("request"))}, status=exc.http_status
        )
    if isinstance(exc, TallyError):
        logger.error("internal error %s: %s", exc.code, exc.message, exc_info=exc)
        return Response({"error": error_body(exc)}, status=500)
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
