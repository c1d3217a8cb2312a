"""Result and error shapes of warehouse execution: columns, rows, messages, error context.

This module is Django-free.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, Protocol

from semantic.warehouse.config import WarehouseConfig
from tally.errors import TallyError, WarehouseError

Row = tuple[Any, ...]
Params = Sequence[Any] | Mapping[str, Any] | None
ColumnKind = Literal[
    "boolean",
    "integer",
    "decimal",
    "float",
    "text",
    "date",
    "timestamp",
    "time",
    "interval",
    "json",
    "binary",
    "other",
]

TIMEOUT_MESSAGE = "the query ran longer than {timeout_s:g} s and was cancelled"
TIMEOUT_HINT = "narrow the time range or the group-by, add a limit, or raise the timeout"
CANCELLED_MESSAGE = "the query was cancelled"
UNAVAILABLE_MESSAGE = "cannot reach the warehouse {url}: {reason}"
UNAVAILABLE_HINT = "check WAREHOUSE_URL and that the warehouse is running and reachable"


@dataclass(frozen=True)
class Column:
    """One result column.

    Attributes:
        name: the column name as the warehouse reports it.
        type_name: the engine's own type name (``DECIMAL(12,2)``, ``numeric``, ``NEWDECIMAL``).
        kind: the portable kind the values were normalised to.
    """

    name: str
    type_name: str
    kind: ColumnKind


@dataclass(frozen=True)
class QueryResult:
    """Rows of one query, fully fetched and normalised.

    Attributes:
        columns: one :class:`Column` per value in a row.
        rows: tuples of normalised Python values, in the order the warehouse returned them.
        truncated: True when the row cap cut the result off (more rows existed).
        elapsed_s: wall-clock seconds from connecting to closing.
        row_count: ``len(rows)``.
    """

    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    truncated: bool
    elapsed_s: float
    row_count: int


def sql_hash(sql: str) -> str:
    """SHA-256 of the SQL text, the id errors and logs carry instead of the SQL itself.

    Example:
        >>> sql_hash("SELECT 1")[:12]
        'e004ebd5b553'
    """
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


Verdict = Literal["timeout", "unavailable", "error"]


class DriverSession(Protocol):
    """What error translation asks of an engine session (see semantic.warehouse.sessions)."""

    def classify(self, exc: Exception) -> Verdict | None: ...

    def message(self, exc: Exception) -> str: ...

    def driver_code(self, exc: Exception) -> str | None: ...


@dataclass(frozen=True)
class ErrorContext:
    """What every WarehouseError of one call carries."""

    config: WarehouseConfig
    sql_hash: str
    timeout_s: float

    @property
    def details(self) -> dict[str, Any]:
        return {"dialect": self.config.dialect, "sql_hash": self.sql_hash}

    def timeout(self) -> Exception:
        return WarehouseError(
            TIMEOUT_MESSAGE.format(timeout_s=self.timeout_s),
            code="warehouse_timeout",
            hint=TIMEOUT_HINT,
            details=self.details,
        )

    def unavailable(self, reason: str) -> Exception:
        return WarehouseError(
            UNAVAILABLE_MESSAGE.format(url=self.config.display_url, reason=first_line(reason)),
            code="warehouse_unavailable",
            hint=UNAVAILABLE_HINT,
            details=self.details,
        )

    def reraise(self, session: DriverSession, exc: Exception) -> NoReturn:
        """Raises the WarehouseError for a driver error, or ``exc`` itself for anything else."""
        translated = self.translate(session, exc)
        if translated is exc:
            raise exc
        raise translated from exc

    def translate(self, session: DriverSession, exc: Exception) -> Exception:
        """The WarehouseError for a driver error; anything else is returned unchanged."""
        if isinstance(exc, TallyError):
            return exc
        verdict = session.classify(exc)
        if verdict is None:
            return exc
        if verdict == "timeout":
            return self.timeout()
        if verdict == "unavailable":
            return self.unavailable(session.message(exc))
        details = self.details
        code = session.driver_code(exc)
        if code is not None:
            details["driver_code"] = code
        return WarehouseError(
            first_line(session.message(exc)), code="warehouse_error", details=details
        )


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown warehouse error"
