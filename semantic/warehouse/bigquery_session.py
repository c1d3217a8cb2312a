"""BigQuery as a warehouse: the official ``google-cloud-bigquery`` client, one job per query.

The client is opened by semantic.warehouse.cloud_open. Each query is a job with the URL's
dataset as default dataset, ``job_timeout_ms`` = the query's limit (BigQuery stops the job),
the optional ``maximum_bytes_billed`` cap and label ``tally``; the PII salt is the named
query parameter ``@tally_pii_salt`` (semantic.compiler.policies.pii_salt), so its value is
in no SQL text. Cancel is the job's ``cancel()``. Rows stream page by page from the job's
result (``RowIterator.pages``). API calls are retried within the query's time limit only.

This module is Django-free; ``google.cloud.bigquery`` is imported only when a BigQuery
warehouse is used (the ``tally[bigquery]`` extra).
"""

from __future__ import annotations

import concurrent.futures
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any

from semantic.warehouse.cloud_open import bigquery_retry, whole_seconds
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.connect_errors import WarehouseUnavailable
from semantic.warehouse.results import Column, ColumnKind, Params, Row, Verdict
from semantic.warehouse.sessions import Session
from semantic.warehouse.values import utc_naive

_PAGE_ROWS = 10_000
_KINDS: dict[str, ColumnKind] = {
    **dict.fromkeys(("BOOL", "BOOLEAN"), "boolean"),
    **dict.fromkeys(("INT64", "INTEGER"), "integer"),
    **dict.fromkeys(("NUMERIC", "BIGNUMERIC", "DECIMAL", "BIGDECIMAL"), "decimal"),
    **dict.fromkeys(("FLOAT64", "FLOAT"), "float"),
    "STRING": "text",
    "DATE": "date",
    **dict.fromkeys(("TIMESTAMP", "DATETIME"), "timestamp"),
    "TIME": "time",
    "INTERVAL": "interval",
    "JSON": "json",
    "BYTES": "binary",
}
# errorResult reasons of a job stopped by its timeout or by cancel().
_STOPPED_REASONS = frozenset({"stopped", "timeout", "jobTimeout"})
# What the API answers when the service, not the query, is the problem. A failed job's
# reason decides first: the client maps reasons it does not know (bytesBilledLimitExceeded)
# to InternalServerError.
_UNAVAILABLE_ERRORS = (
    "ServiceUnavailable",
    "BadGateway",
    "GatewayTimeout",
    "Unauthorized",
    "Unauthenticated",
    "RetryError",
)
_UNAVAILABLE_REASONS = frozenset({"backendError", "internalError"})


def bigquery_kind(field_type: str, mode: str = "NULLABLE") -> ColumnKind:
    """The portable kind of a BigQuery result column.

    Example:
        >>> bigquery_kind("INTEGER"), bigquery_kind("NUMERIC"), bigquery_kind("STRING", "REPEATED")
        ('integer', 'decimal', 'other')
    """
    if mode == "REPEATED":
        return "other"
    return _KINDS.get(field_type.upper(), "other")


def query_parameters(variables: Mapping[str, str], params: Params) -> list[Any]:
    """The job's named query parameters: Tally's variables (strings) and ``params``.

    Example:
        >>> [p.name for p in query_parameters({"tally_pii_salt": "s"}, {"plan": "pro"})]
        ['tally_pii_salt', 'plan']
    """
    from google.cloud import bigquery

    if params is not None and not isinstance(params, Mapping):
        raise ValueError("BigQuery takes named parameters (@name), not positional ones")
    values: dict[str, Any] = {**variables, **(params or {})}
    out = []
    for name, value in values.items():
        if isinstance(value, bool):
            type_ = "BOOL"
        elif isinstance(value, int):
            type_ = "INT64"
        elif isinstance(value, float):
            type_ = "FLOAT64"
        elif isinstance(value, str):
            type_ = "STRING"
        else:
            raise ValueError(f"parameter {name!r}: a {type(value).__name__} is not supported")
        out.append(bigquery.ScalarQueryParameter(name, type_, value))
    return out


def job_config(config: WarehouseConfig, *, timeout_s: float, parameters: list[Any]) -> Any:
    """The QueryJobConfig of one query on ``config``'s dataset."""
    from google.cloud import bigquery

    options = dict(config.options)
    limit = options.get("maximum_bytes_billed")
    return bigquery.QueryJobConfig(
        default_dataset=f"{config.host}.{config.database}",
        query_parameters=parameters,
        job_timeout_ms=whole_seconds(timeout_s) * 1000,
        maximum_bytes_billed=int(limit) if limit else None,
        use_legacy_sql=False,
        labels={"client": "tally"},
    )


class BigQuerySession(Session):
    """BigQuery: one query job, its rows read page by page."""

    def __init__(self, config: WarehouseConfig, timeout_s: float) -> None:
        super().__init__(config, timeout_s)
        self.job: Any = None
        self.schema: Sequence[Any] = ()
        self._pages: Any = None
        self._pending: list[Row] = []
        self._lock = threading.Lock()
        self._interrupted = False

    def run(self, sql: str, params: Params) -> None:
        parameters = query_parameters(self.variables, params)
        config = job_config(self.config, timeout_s=self.timeout_s, parameters=parameters)
        job = self.conn.query(
            sql,
            job_config=config,
            job_id_prefix="tally_",
            retry=bigquery_retry(self.timeout_s),
            timeout=self.timeout_s,
            job_retry=None,
        )
        with self._lock:
            self.job = job
            interrupted = self._interrupted
        if interrupted:
            self.interrupt()
        rows = job.result(
            page_size=_PAGE_ROWS, timeout=self.timeout_s, retry=bigquery_retry(self.timeout_s)
        )
        self.schema = tuple(rows.schema or ())
        self._pages = iter(rows.pages)

    def describe(self) -> tuple[Column, ...]:
        return tuple(
            Column(
                name=field.name,
                type_name=field.field_type
                if field.mode != "REPEATED"
                else f"ARRAY<{field.field_type}>",
                kind=bigquery_kind(field.field_type, field.mode or "NULLABLE"),
            )
            for field in self.schema
        )

    def converters(self, columns: tuple[Column, ...]) -> list[Callable[[Any], Any] | None]:
        # JSON arrives parsed: back to its text, as on every other engine.
        by_kind: dict[str, Callable[[Any], Any]] = {"timestamp": utc_naive, "json": _json_text}
        return [by_kind.get(c.kind) for c in columns]

    def fetch(self, size: int) -> Sequence[Row]:
        while len(self._pending) < size and self._pages is not None:
            page = next(self._pages, None)
            if page is None:
                self._pages = None
                break
            self._pending.extend(tuple(row.values()) for row in page)
        rows, self._pending = self._pending[:size], self._pending[size:]
        return rows

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            job = self.job
        if job is not None:
            with suppress(Exception):
                job.cancel(timeout=5)

    def classify(self, exc: Exception) -> Verdict | None:
        if isinstance(exc, WarehouseUnavailable):
            return "unavailable"
        if isinstance(exc, concurrent.futures.TimeoutError):
            return "timeout"
        module = type(exc).__module__
        if module.startswith(("requests", "urllib3")):
            return "unavailable"
        if not module.startswith("google"):
            return None
        reason = _reason(exc)
        if reason in _STOPPED_REASONS:
            return "timeout"
        name = type(exc).__name__
        if reason in _UNAVAILABLE_REASONS or (name == "InternalServerError" and reason is None):
            return "unavailable"
        if name in _UNAVAILABLE_ERRORS or module.startswith("google.auth"):
            return "unavailable"
        return "error"

    def message(self, exc: Exception) -> str:
        # A job error is "400 POST https://…/jobs?prettyPrint=false: Syntax error: …":
        # the reason without the request line.
        text = str(getattr(exc, "message", None) or exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        head, sep, rest = first.partition(": ")
        if sep and ("http://" in head or "https://" in head):
            first = rest
        cause = getattr(exc, "cause", None)  # a RetryError: say what kept failing
        if isinstance(cause, Exception):
            first = f"{first} (last error: {self.message(cause)})"
        return first

    def driver_code(self, exc: Exception) -> str | None:
        return _reason(exc)

    def close(self, *, drained: bool) -> None:
        if not drained and self.job is not None and not self.job.done(reload=False):
            self.interrupt()
        super().close(drained=drained)


def _reason(exc: Exception) -> str | None:
    errors = getattr(exc, "errors", None) or ()
    for error in errors:
        if isinstance(error, dict) and error.get("reason"):
            return str(error["reason"])
    return None


def _json_text(value: Any) -> Any:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
