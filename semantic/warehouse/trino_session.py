"""Trino as a warehouse: the official ``trino`` client (DB-API), one query per session.

``trino://user[:password]@host:8080/catalog/schema`` (``?secure=true`` for HTTPS; a password
is sent with HTTP basic authentication, which Trino accepts over HTTPS only). Results
stream page by page from the coordinator (``fetchmany``); the session runs in UTC; the
query's time limit is Trino's own ``query_max_run_time`` session property, so the
coordinator stops the query, and cancel is the client's ``cancel()`` (a DELETE of the
query). Least privilege is Trino's access control: give Tally's user read-only grants.

Trino has no session variables, so the PII salt is a positional parameter (``?``, see
semantic.compiler.policies.pii_salt) bound once per placeholder of the statement.

This module is Django-free; ``trino`` is imported only when a Trino warehouse is used
(the ``tally[trino]`` extra).
"""

from __future__ import annotations

from contextlib import suppress

from semantic.warehouse.connect_errors import WarehouseUnavailable
from semantic.warehouse.engine_open import trino_connect
from semantic.warehouse.results import Column, ColumnKind, Params, Verdict
from semantic.warehouse.sessions import FirstRowSession

_TIMEOUT_ERRORS = frozenset({"EXCEEDED_TIME_LIMIT", "EXCEEDED_CPU_LIMIT"})
_KINDS: dict[str, ColumnKind] = {
    "boolean": "boolean",
    **dict.fromkeys(("tinyint", "smallint", "integer", "bigint"), "integer"),
    "decimal": "decimal",
    **dict.fromkeys(("real", "double"), "float"),
    **dict.fromkeys(("varchar", "char", "uuid"), "text"),
    "date": "date",
    "timestamp": "timestamp",
    "time": "time",
    "json": "json",
    "varbinary": "binary",
}


def placeholder_count(sql: str) -> int:
    """How many positional parameters (``?``) a Trino statement has.

    Example:
        >>> placeholder_count("SELECT MD5(? || a), 'not ?' FROM t WHERE b = ?")
        2
    """
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(sql, read="trino")
    return sum(1 for node in tree.find_all(exp.Placeholder) if not node.this)


def _kind(type_name: str) -> ColumnKind:
    base = type_name.split("(", 1)[0].strip().lower()
    if base.startswith("timestamp"):
        return "timestamp"
    if base.startswith("time"):
        return "time"
    return _KINDS.get(base, "other")


class TrinoSession(FirstRowSession):
    """Trino: a cursor streaming the coordinator's pages; time limit set per session."""

    def open(self) -> None:
        self.conn = trino_connect(self.config, timeout_s=self.timeout_s)

    def run(self, sql: str, params: Params) -> None:
        if isinstance(params, dict) and params:
            raise ValueError("Trino takes positional parameters (?), not named ones")
        values = list(params or ())
        salt = self.variables.get("tally_pii_salt")
        if salt is not None:
            # Every bare placeholder Tally writes for Trino is the salt (policies.pii_salt).
            values = [salt] * (placeholder_count(sql) - len(values)) + values
        self.cursor = self.conn.cursor()
        self.cursor.execute(sql, values or None)
        # The first page arrives with the columns: description needs it.
        self._first = self.cursor.fetchmany(1)

    def describe(self) -> tuple[Column, ...]:
        columns = []
        for name, type_code, *_ in self.cursor.description or ():
            type_name = str(type_code)
            columns.append(Column(name=name, type_name=type_name, kind=_kind(type_name)))
        return tuple(columns)

    def interrupt(self) -> None:
        # Best effort: the session's query_max_run_time stops the query anyway.
        if self.cursor is not None:
            with suppress(Exception):
                self.cursor.cancel()

    def classify(self, exc: Exception) -> Verdict | None:
        module = type(exc).__module__
        if isinstance(exc, WarehouseUnavailable):
            return "unavailable"
        if getattr(exc, "error_name", None) in _TIMEOUT_ERRORS:
            return "timeout"
        name = type(exc).__name__
        if module.startswith(("requests", "urllib3")) or name in (
            "TrinoConnectionError",
            "Http502Error",
            "Http503Error",
            "Http504Error",
            "OperationalError",
        ):
            return "unavailable"
        if module.startswith("trino"):
            return "error"
        return None

    def message(self, exc: Exception) -> str:
        text = getattr(exc, "message", None) or str(exc)
        return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__

    def driver_code(self, exc: Exception) -> str | None:
        name = getattr(exc, "error_name", None)
        return str(name) if name else None

    def close(self, *, drained: bool) -> None:
        if self.cursor is not None and not drained:
            self.interrupt()
        super().close(drained=drained)
