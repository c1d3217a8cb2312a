"""The one way to run compiled SQL on the configured warehouse.

Every executor (metric queries, streams, the SQL API, compute chunks, audits, drill-down
reads, proposal numbers-diffs) needs the same steps, in this order: check that the data
holds the declared keys the query joins on (semantic.key_guard: a repeated key is refused,
never a multiplied number), build Tally's time spine when the SQL reads it and the warehouse
lacks it, bind the session variables the SQL reads (the PII salt, never part of the SQL
text), then execute or stream, naming the definitions behind a refusal they explain
(``errors_named``: a truncated time dimension over text is ``warehouse_type``). ``run_compiled``
and ``stream_compiled`` do all of it; ``compiled_prepare`` does the first two for callers
that must build the spine at another moment than they run the SQL (the SQL API describes
a result before it streams it).

Unlike the rest of this package it reads Django settings and the registry (the spine's
release); it is the seam between the semantic services and DB-API execution.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

from semantic.compiler.manifest import Manifest
from semantic.compiler.policy_rules import SALT_NAME
from semantic.compiler.principal import Principal
from semantic.key_guard import keys_check, release_for
from semantic.manifests import manifest_for_release
from semantic.time_spine import time_spine_ensure
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import (
    CancelScope,
    Column,
    QueryResult,
    RowBatches,
    execute,
    stream,
)
from semantic.warehouse.sessions import HeldCursors
from semantic.warehouse.time_types import time_type_error
from tally.errors import NotFound, WarehouseError
from tally.metrics import QUERIES, WAREHOUSE_ERRORS

__all__ = [
    "ReadyQuery",
    "compiled_prepare",
    "errors_named",
    "pii_salt_for",
    "run_compiled",
    "session_variables",
    "stream_compiled",
]


class Compiled(Protocol):
    """What running needs of a compiled query (a CompiledQuery, a SecuredSelect)."""

    @property
    def parameters(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class ReadyQuery:
    """SQL ready to run: its time spine exists, its session variables are bound values."""

    sql: str
    variables: dict[str, str] = field(default_factory=dict, repr=False)
    # The definitions the SQL was compiled from (None: unknown), to name the time dimension
    # behind a refused truncation or time comparison; resolved while preparing, on the caller's thread (the
    # proposal numbers-diff runs prepared queries on worker threads, without the registry).
    manifest: Manifest | None = field(default=None, repr=False, compare=False)


def pii_salt_for(principal: Principal | None) -> str:
    """The pseudonym salt a principal's query binds: TALLY_PII_SALT, or with
    TALLY_PII_SALT_PER_TENANT an HMAC of it and the principal's tenant binding, so the same
    person's pseudonym differs between tenants (a principal bound to no tenant: the salt)."""
    salt: str = settings.TALLY_PII_SALT
    tenant = principal.attributes.get("tenant_id") if principal is not None else None
    if not settings.TALLY_PII_SALT_PER_TENANT or tenant is None or tenant == "":
        return salt
    return hmac.new(salt.encode(), f"tenant:{tenant}".encode(), hashlib.sha256).hexdigest()


def session_variables(compiled: Compiled, *, principal: Principal | None) -> dict[str, str]:
    """The values of the session variables a compiled (or secured) query reads (the PII
    salt of the principal it was compiled for), for the executor to bind; never shown or
    logged. ``principal`` is required so that no caller binds the shared salt by mistake."""
    return {SALT_NAME: pii_salt_for(principal)} if compiled.parameters else {}


def compiled_prepare(
    compiled: Compiled | ReadyQuery,
    *,
    principal: Principal | None,
    sql: str | None = None,
    release_ref: str | None = None,
    manifest: Manifest | None = None,
) -> ReadyQuery:
    """Refuses a query whose joined keys the data repeats (semantic.key_guard), builds the
    time spine the SQL reads when missing and binds its session variables.

    Args:
        compiled: the compiled query (its ``sql`` and ``parameters``), or an already
            prepared one (returned as it is).
        sql: the text to run when it is not ``compiled.sql`` (a SecuredSelect rendered
            for the warehouse's dialect).
        principal: whom the query was compiled for (None: trusted); picks the PII salt.
        release_ref: the release whose manifest names the time spine (default latest).
        manifest: the definitions the query was compiled from, when they are no release's
            (a proposal's); default: the manifest of the query's release.
    """
    if isinstance(compiled, ReadyQuery):
        return compiled
    text = sql if sql is not None else getattr(compiled, "sql", None)
    if not isinstance(text, str):
        raise TypeError("compiled_prepare needs the SQL: pass sql= for a query without .sql")
    # Before anything runs: a join whose declared key the data repeats is refused
    # (issue 16), on every path that executes a compiled metric query.
    keys_check(compiled, release_ref=release_ref, principal=principal)
    time_spine_ensure(sql=text, release_ref=release_ref)
    if manifest is None:
        try:
            release = release_for(getattr(compiled, "release", ""), release_ref)
        except NotFound:
            release = None  # no release yet: refusals go unnamed
        manifest = manifest_for_release(release) if release is not None else None
    return ReadyQuery(text, session_variables(compiled, principal=principal), manifest)


@contextmanager
def errors_named(ready: ReadyQuery, config: WarehouseConfig) -> Iterator[None]:
    """Re-raises a warehouse refusal in the definitions' words where it can: a refused
    truncation (or time range comparison) of a time dimension over a non-time column becomes
    ``warehouse_type`` (semantic.warehouse.time_types), naming the dimension, model,
    expression and column type; any other error passes as it is. Every executor of compiled
    SQL runs inside it."""
    try:
        yield
    except WarehouseError as exc:
        named = None
        if ready.manifest is not None:
            named = time_type_error(exc, sql=ready.sql, manifest=ready.manifest, config=config)
        if named is None:
            raise
        raise named from exc


@contextmanager
def counted(kind: str) -> Iterator[None]:
    """Counts a warehouse execution for /metrics, and its error code when it fails."""
    try:
        yield
    except WarehouseError as exc:
        WAREHOUSE_ERRORS.labels(exc.code).inc()
        QUERIES.labels(kind, "error").inc()
        raise
    QUERIES.labels(kind, "ok").inc()


def run_compiled(
    compiled: Compiled | ReadyQuery,
    *,
    principal: Principal | None,
    sql: str | None = None,
    release_ref: str | None = None,
    config: WarehouseConfig | None = None,
    timeout_s: float = 60,
    row_cap: int = 1_000_000,
) -> QueryResult:
    """Runs a compiled query on the warehouse (default: the configured one) and returns all
    its rows up to ``row_cap``; see :func:`compiled_prepare` and
    :func:`semantic.warehouse.execute.execute`."""
    ready = compiled_prepare(compiled, principal=principal, sql=sql, release_ref=release_ref)
    config = config or settings.WAREHOUSE
    # Named inside counted: /metrics counts the error code the caller sees.
    with counted("rows"), errors_named(ready, config):
        return execute(
            config,
            ready.sql,
            timeout_s=timeout_s,
            row_cap=row_cap,
            variables=ready.variables,
        )


@contextmanager
def stream_compiled(
    compiled: Compiled | ReadyQuery,
    *,
    principal: Principal | None,
    sql: str | None = None,
    release_ref: str | None = None,
    config: WarehouseConfig | None = None,
    timeout_s: float = 60,
    row_cap: int = 1_000_000,
    batch_size: int = 10_000,
    cancel: CancelScope | None = None,
    held: HeldCursors | None = None,
) -> Iterator[tuple[tuple[Column, ...], RowBatches]]:
    """Runs a compiled query and yields ``(columns, batches)`` as
    :func:`semantic.warehouse.execute.stream` does, after :func:`compiled_prepare`."""
    ready = compiled_prepare(compiled, principal=principal, sql=sql, release_ref=release_ref)
    config = config or settings.WAREHOUSE
    with (
        counted("stream"),
        errors_named(ready, config),
        stream(
            config,
            ready.sql,
            timeout_s=timeout_s,
            row_cap=row_cap,
            batch_size=batch_size,
            variables=ready.variables,
            cancel=cancel,
            held=held,
        ) as result,
    ):
        yield result
