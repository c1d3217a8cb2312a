"""Snowflake as a warehouse: the official connector (DB-API), one session per query.

The session is opened by semantic.warehouse.cloud_open (UTC, ``STATEMENT_TIMEOUT_IN_SECONDS``
= the query's limit, server-side binding). Tally's session variables (the PII salt, read as
``$tally_pii_salt``) are set with ``SET name = ?``, the value bound, before the query is
submitted asynchronously: its query id is known at once, so cancel aborts exactly that query
(``abort_query``, Snowflake's SYSTEM$CANCEL_QUERY). Rows then stream chunk by chunk through
``fetchmany``.

This module is Django-free; ``snowflake.connector`` is imported only when a Snowflake
warehouse is used (the ``tally[snowflake]`` extra).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from semantic.warehouse.connect_errors import WarehouseUnavailable
from semantic.warehouse.results import Column, ColumnKind, Params, Verdict
from semantic.warehouse.sessions import FirstRowSession

# snowflake.connector's type codes (cursor.description), spelled out to keep the import lazy.
_TYPES: dict[int, tuple[str, ColumnKind]] = {
    0: ("FIXED", "decimal"),  # NUMBER: an integer when its scale is 0 (describe)
    1: ("REAL", "float"),
    2: ("TEXT", "text"),
    3: ("DATE", "date"),
    4: ("TIMESTAMP", "timestamp"),
    5: ("VARIANT", "json"),
    6: ("TIMESTAMP_LTZ", "timestamp"),
    7: ("TIMESTAMP_TZ", "timestamp"),
    8: ("TIMESTAMP_NTZ", "timestamp"),
    9: ("OBJECT", "json"),
    10: ("ARRAY", "json"),
    11: ("BINARY", "binary"),
    12: ("TIME", "time"),
    13: ("BOOLEAN", "boolean"),
    19: ("INTERVAL_YEAR_MONTH", "interval"),
    20: ("INTERVAL_DAY_TIME", "interval"),
}
# 000604: SQL execution cancelled (abort_query, or the statement timeout); 000630: the
# statement or warehouse timeout was reached. SQLSTATE 57014 is "query cancelled".
_TIMEOUT_ERRNOS = frozenset({604, 630})
# Connector-side errors of the network and of the login (25xxxx, 39xxxx); SQLSTATE class 08
# is "connection exception".
_CONNECTION_SQLSTATE = "08"


def snowflake_kind(type_code: int, scale: int | None) -> tuple[str, ColumnKind]:
    """The type name and portable kind of a Snowflake result column.

    Example:
        >>> snowflake_kind(0, 0), snowflake_kind(0, 2), snowflake_kind(7, None)
        (('NUMBER(38,0)', 'integer'), ('NUMBER(38,2)', 'decimal'), ('TIMESTAMP_TZ', 'timestamp'))
    """
    if type_code == 0:
        digits = scale or 0
        return f"NUMBER(38,{digits})", "integer" if digits == 0 else "decimal"
    return _TYPES.get(type_code, (str(type_code), "other"))


class SnowflakeSession(FirstRowSession):
    """Snowflake: variables SET with a bound value, the query submitted asynchronously."""

    def __init__(self, config: Any, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.query_id: str | None = None

    def run(self, sql: str, params: Params) -> None:
        if isinstance(params, dict) and params:
            raise ValueError("Snowflake takes positional parameters (?), not named ones")
        self.cursor = self.conn.cursor()
        for name, value in self.variables.items():
            # Names are Tally's own (checked_variables: tally_[a-z_]+); the value is bound.
            self.cursor.execute(f"SET {name} = ?", [value])
        submitted = self.cursor.execute_async(sql, list(params) if params else None)
        self.query_id = submitted["queryId"]
        self.cursor.get_results_from_sfqid(self.query_id)
        # Waits for the result: description is known once the first chunk is in.
        self._first = self.cursor.fetchmany(1)

    def describe(self) -> tuple[Column, ...]:
        # TIMESTAMP_TZ/LTZ arrive time-zone aware: the base converters make them naive UTC.
        columns = []
        for name, type_code, _size, _internal, _precision, scale, *_ in (
            self.cursor.description or ()
        ):
            type_name, kind = snowflake_kind(int(type_code), scale)
            columns.append(Column(name=name, type_name=type_name, kind=kind))
        return tuple(columns)

    def interrupt(self) -> None:
        # Best effort: STATEMENT_TIMEOUT_IN_SECONDS stops the query anyway.
        if self.query_id is not None and self.conn is not None:
            with suppress(Exception):
                self.conn.cursor().abort_query(self.query_id)

    def classify(self, exc: Exception) -> Verdict | None:
        if isinstance(exc, WarehouseUnavailable):
            return "unavailable"
        if not type(exc).__module__.startswith("snowflake"):
            return None
        errno = getattr(exc, "errno", None)
        sqlstate = str(getattr(exc, "sqlstate", None) or "")
        if errno in _TIMEOUT_ERRNOS or sqlstate == "57014":
            return "timeout"
        if sqlstate.startswith(_CONNECTION_SQLSTATE) or type(exc).__name__ in (
            "OperationalError",
            "InterfaceError",
        ):
            return "unavailable"
        return "error"

    def message(self, exc: Exception) -> str:
        # "002003 (42S02): SQL compilation error:\nObject 'X' does not exist…": the
        # connector puts the codes first and the reason on the next line.
        text = str(getattr(exc, "raw_msg", None) or exc).strip()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].endswith(":"):
            return f"{lines[0]} {lines[1]}"
        return lines[0] if lines else type(exc).__name__

    def driver_code(self, exc: Exception) -> str | None:
        errno = getattr(exc, "errno", None)
        return None if errno in (None, -1) else f"{int(errno):06d}"

    def close(self, *, drained: bool) -> None:
        if not drained:
            self.interrupt()
        if self.cursor is not None:
            with suppress(Exception):
                self.cursor.close()
        super().close(drained=drained)
