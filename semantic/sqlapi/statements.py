"""Statement execution of the SQL API: parse, then SET/SHOW/transaction commands, catalog
SELECTs (catalog.py) and SELECTs on tally.metrics (compiled and streamed from the warehouse),
with per-connection settings, transaction state and cancellation."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from semantic.answers import StoredAnswer
from semantic.compiler.grains import ALL_GRAINS
from semantic.result_cache import result_cache_max_rows, result_get, result_put
from semantic.sqlapi import wire
from semantic.sqlapi.auth import SessionEnded, identity_recheck
from semantic.sqlapi.catalog import SessionInfo
from semantic.sqlapi.control import (
    CLOSE_KEYWORD,
    DECLARE_KEYWORD,
    FETCH_ALL,
    FETCH_KEYWORD,
    SET_TRANSACTION_KEYWORD,
    TRANSACTION_KEYWORD,
    close_of,
    control_kind,
    control_statement,
    declare_of,
    fetch_of,
    split_statements,
    transaction_of,
)
from semantic.sqlapi.services import (
    sql_catalog_get,
    sql_mapped_compile,
    sql_result_key,
    sql_select_map,
)
from semantic.sqlapi.session import (
    CONFIGURATION_LIMIT,
    HINT_QUERY_TOO_LONG,
    HINT_ROW_CAP,
    IN_FAILED_TRANSACTION,
    INVALID_AUTHORIZATION,
    MSG_CANCELED,
    MSG_IN_FAILED,
    MSG_QUERY_TOO_LONG,
    MSG_ROW_CAP,
    MSG_TIMEOUT,
    PROGRAM_LIMIT,
    QUERY_CANCELED,
    STREAM_BATCH,
    Backend,
    Cursor,
    Fatal,
    MappedMemo,
    Result,
    SqlError,
    duckdb_message,
    duckdb_sqlstate,
    tally_sql_error,
)
from semantic.sqlapi.transactions import TxStatement, transaction_step
from semantic.sqlapi.translate import (
    READ_ONLY,
    SYNTAX_ERROR,
    SqlApiError,
    bind_parameters,
    reads_metrics_table,
    unsupported,
)
from semantic.warehouse.execute import CancelScope
from semantic.warehouse.run import ReadyQuery, compiled_prepare, stream_compiled
from tally.db import connections_keep
from tally.errors import TallyError
from tally.throttling import RateLimited, rate_limit_check_user

log = logging.getLogger("semantic.sqlapi.server")

WRITE_STATEMENTS = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Merge,
)
# SET forms sqlglot leaves as a Command: SET [SESSION|LOCAL] name TO|= value, SET TIME ZONE v.
SET_COMMAND = re.compile(
    r"^\s*(?:session\s+|local\s+)?(time\s+zone|[\w.]+)\s*(?:\bto\b|=)?\s*(.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
# QueryError codes that mean "no such column" to a SQL client.


class StatementRunner:
    """Runs statements for one connection (mixed into semantic.sqlapi.connection.Connection)."""

    server: Backend
    identity: Any
    user: str
    database: str
    pid: int
    settings: dict[str, str]
    tx: str
    # Open savepoints, innermost last, each with the cursors that existed when it was set.
    savepoints: list[tuple[str, frozenset[str]]]
    cursors: dict[str, Cursor]
    _cancel_lock: threading.Lock
    _cancel: CancelScope | None
    # When the identity was last checked (monotonic seconds).
    _checked_at: float

    def _parse(self, sql: str) -> list[exp.Expr]:
        # Parsing is pure Python and superlinear on some inputs: bound the text first.
        limit = self.server.config.max_query_bytes
        if len(sql) > limit or len(sql.encode("utf-8")) > limit:
            size = len(sql.encode("utf-8"))
            raise SqlError(
                PROGRAM_LIMIT,
                MSG_QUERY_TOO_LONG.format(size=size, limit=limit),
                HINT_QUERY_TOO_LONG,
            )
        try:
            trees: list[exp.Expr] = []
            for text in split_statements(sql):
                # Transaction modes and cursors first: sqlglot reads neither.
                control = control_statement(text)
                if control is not None:
                    trees.append(control)
                    continue
                trees.extend(t for t in sqlglot.parse(text, read="postgres") if t is not None)
            return trees
        except (ParseError, TokenError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else "syntax error"
            raise SqlError(SYNTAX_ERROR, f"syntax error: {first}") from None
        except SqlApiError as exc:
            raise SqlError(exc.sqlstate, exc.message, exc.hint) from None

    def _recheck(self, *, reads_data: bool) -> None:
        """The session's right to query as of now (FATAL 28000 when it is gone).

        Before every statement that reads the warehouse the access generation is read (one
        row, registry/access_cache.py): once a write changed anything a principal is made
        of (token revoked or rebound, role, team, profile, user deactivated) the token (or
        user) is read again and the right and the principal derived again, so the change
        applies to this very statement; expiry is checked against the clock. A full check
        also runs once the last one is ``recheck_s`` old, before any statement; catalog,
        SET and SHOW statements (no rows) do nothing in between, as BI tools send them in
        bursts. The session's registry connection is kept from statement to statement.
        """
        now = time.monotonic()
        grants = now - self._checked_at >= self.server.config.recheck_s
        if not reads_data and not grants:
            return
        connections_keep()
        try:
            self.identity = identity_recheck(self.identity, session=self.user, grants=grants)
            if grants:
                self._checked_at = now
        except SessionEnded as exc:
            raise Fatal(INVALID_AUTHORIZATION, exc.message) from None

    def _execute(
        self, tree: exp.Expr, params: Sequence[Any], memo: MappedMemo | None = None
    ) -> Result:
        reads_data = (
            isinstance(tree, exp.Query) or control_kind(tree) == DECLARE_KEYWORD
        ) and reads_metrics_table(tree)
        self._recheck(reads_data=reads_data)
        try:
            if self.tx == "E" and not exits_failed_block(tree):
                raise SqlError(IN_FAILED_TRANSACTION, MSG_IN_FAILED)
            if memo is not None and reads_data and isinstance(tree, exp.Query):
                # A prepared SELECT on tally.metrics: bound and mapped once per values.
                return self._metrics(tree, params, memo)
            if params or _has_parameter(tree):
                tree = bind_parameters(tree, params)
            return self._dispatch(tree)
        except SqlApiError as exc:
            raise SqlError(exc.sqlstate, exc.message, exc.hint) from None
        except TallyError as exc:
            raise tally_sql_error(exc) from None

    def _dispatch(self, tree: exp.Expr) -> Result:
        kind = control_kind(tree)
        if kind == TRANSACTION_KEYWORD:
            return self._transaction(transaction_of(tree))
        if kind == SET_TRANSACTION_KEYWORD:
            # Every transaction is read only here; READ WRITE is accepted (nothing can
            # write anyway), as pgjdbc's setReadOnly(false) sends it.
            return Result(tag="SET")
        if kind == DECLARE_KEYWORD:
            return self._declare(tree)
        if kind == FETCH_KEYWORD:
            return self._fetch(tree)
        if kind == CLOSE_KEYWORD:
            name = close_of(tree)
            if name is None:
                self.cursors.clear()
            elif self.cursors.pop(name, None) is None:
                raise SqlError("34000", f'cursor "{name}" does not exist')
            return Result(tag="CLOSE CURSOR")
        if isinstance(tree, exp.Set):
            return self._set(tree)
        if isinstance(tree, exp.Show):
            return self._show(tree.name)
        if isinstance(tree, WRITE_STATEMENTS):
            raise SqlError(
                READ_ONLY, f"cannot execute {tree.key.upper()} in a read-only transaction"
            )
        if isinstance(tree, exp.Copy):
            raise unsupported("COPY")
        if isinstance(tree, exp.Command):
            return self._command(tree)
        if isinstance(tree, exp.Query):
            if reads_metrics_table(tree):
                return self._metrics(tree)
            return self._catalog(tree)
        raise unsupported(f"{tree.key.upper()} statement")

    def _command(self, tree: exp.Command) -> Result:
        keyword = str(tree.this).upper()
        rest = tree.expression.name if isinstance(tree.expression, exp.Expr) else ""
        if keyword == "SHOW":
            return self._show(rest)
        if keyword == "SET":
            match = SET_COMMAND.match(rest)
            if match is None:
                raise SqlError(SYNTAX_ERROR, f"cannot read SET {rest}")
            key = " ".join(match.group(1).lower().split())
            key = "timezone" if key == "time zone" else key
            self.settings[key] = match.group(2).strip().strip("'\"")
            return Result(tag="SET")
        tags = {
            "DISCARD": "DISCARD ALL",
            "DEALLOCATE": "DEALLOCATE",
            "RESET": "RESET",
            "LISTEN": "LISTEN",
            "UNLISTEN": "UNLISTEN",
            "CLOSE": "CLOSE ALL",
        }
        if keyword in tags:
            return Result(tag=tags[keyword])
        if keyword in ("COPY",):
            raise unsupported("COPY")
        if keyword in (
            "GRANT",
            "REVOKE",
            "VACUUM",
            "ANALYZE",
            "COMMENT",
            "REFRESH",
            "CALL",
            "DO",
            "LOCK",
            "REINDEX",
            "CLUSTER",
        ):
            raise SqlError(READ_ONLY, f"cannot execute {keyword} in a read-only transaction")
        raise unsupported(f"{keyword} statement")

    def _transaction(self, stmt: TxStatement) -> Result:
        names = tuple(name for name, _ in self.savepoints)
        step = transaction_step(self.tx, names, stmt)
        kept = len(step.savepoints)
        if stmt.action == "rollback_to":
            # Cursors declared after the savepoint go with what was rolled back.
            existed = self.savepoints[kept - 1][1]
            for name in [n for n in self.cursors if n not in existed]:
                del self.cursors[name]
        if stmt.action == "savepoint":
            self.savepoints.append((stmt.name, frozenset(self.cursors)))
        else:
            del self.savepoints[kept:]
        if step.status == "I" or stmt.chain:
            # Cursors end with their transaction unless declared WITH HOLD.
            for name in [n for n, c in self.cursors.items() if not c.hold]:
                del self.cursors[name]
        self.tx = step.status
        return Result(tag=step.tag, notice=step.warning)

    def _declare(self, tree: exp.Expr) -> Result:
        declare = declare_of(tree)
        name = declare.name
        if name in self.cursors:
            raise SqlError("42P03", f'cursor "{name}" already exists')
        result = self._dispatch(declare.query)
        if result.fields is None:
            raise SqlError(SYNTAX_ERROR, "DECLARE CURSOR needs a SELECT")
        # The whole answer is read now (within the row cap): FETCH then pages through it
        # without holding a warehouse connection between statements.
        rows = [*result.buffered, *(result.rows or ())]
        self.cursors[name] = Cursor(fields=result.fields, rows=rows, hold=declare.hold)
        return Result(tag="DECLARE CURSOR")

    def _fetch(self, tree: exp.Expr) -> Result:
        fetch = fetch_of(tree)
        cursor = self.cursors.get(fetch.name)
        if cursor is None:
            raise SqlError("34000", f'cursor "{fetch.name}" does not exist')
        end = len(cursor.rows) if fetch.count == FETCH_ALL else cursor.position + fetch.count
        rows = cursor.rows[cursor.position : end]
        cursor.position += len(rows)
        if fetch.move:
            return Result(tag=f"MOVE {len(rows)}")
        return Result(tag="FETCH", fields=cursor.fields, rows=iter(rows))

    def _set(self, tree: exp.Set) -> Result:
        for item in tree.expressions:
            assignment = item.this if isinstance(item, exp.SetItem) else item
            if isinstance(assignment, exp.EQ | exp.PropertyEQ):
                key = assignment.left.name.lower()
                value = assignment.right
                text = (
                    value.name
                    if isinstance(value, exp.Literal | exp.Column | exp.Identifier)
                    else value.sql("postgres")
                )
                if key in ("time zone", "timezone"):
                    key = "timezone"
                self.settings[key] = text
        return Result(tag="SET")

    def _show(self, name: str) -> Result:
        key = name.strip().strip('"').lower()
        if key == "all":
            fields = [
                wire.Field("name", wire.OIDS["text"]),
                wire.Field("setting", wire.OIDS["text"]),
            ]
            rows = [[k, v] for k, v in sorted(self.settings.items())]
            return Result(tag="SHOW", fields=fields, rows=iter(rows))
        if key == "transaction isolation level":
            key = "transaction_isolation"
        value = self.settings.get(key)
        if value is None:
            raise SqlError("42704", f'unrecognized configuration parameter "{name}"')
        return Result(tag="SHOW", fields=[wire.Field(key, wire.OIDS["text"])], rows=iter([[value]]))

    def _catalog(self, tree: exp.Expr) -> Result:
        catalog = sql_catalog_get()
        config = self.server.config
        scope = self._begin()
        try:
            fields, rows = catalog.run(
                tree,
                SessionInfo(user=self.user, database=self.database, pid=self.pid),
                self.settings,
                timeout_s=min(config.timeout_s, config.catalog_timeout_s),
                on_start=scope.bind,
                row_cap=config.row_cap,
            )
        except Exception as exc:
            if scope.requested:
                raise SqlError(QUERY_CANCELED, MSG_CANCELED) from None
            import duckdb

            if isinstance(exc, duckdb.InterruptException):
                raise SqlError(QUERY_CANCELED, MSG_TIMEOUT) from None
            if isinstance(exc, duckdb.Error):
                raise SqlError(duckdb_sqlstate(exc), duckdb_message(exc)) from None
            raise
        finally:
            self._end()
        if len(rows) > config.row_cap:
            raise SqlError(PROGRAM_LIMIT, MSG_ROW_CAP.format(cap=config.row_cap), HINT_ROW_CAP)
        return Result(
            tag="SELECT", fields=[wire.Field(name, oid) for name, oid in fields], rows=iter(rows)
        )

    def _metrics(
        self, tree: exp.Expr, params: Sequence[Any] = (), memo: MappedMemo | None = None
    ) -> Result:
        """A SELECT on tally.metrics: ``tree`` with its parameters bound, or, with ``memo``
        (a prepared statement's), as parsed, bound to ``params`` here unless the memo has
        it mapped for these values on the current release's table."""
        assert self.identity is not None
        try:
            # The HTTP API's per-user query budget (TALLY_RATE_QUERY), under the same key.
            rate_limit_check_user(self.identity.account, "query")
        except RateLimited as exc:
            raise SqlError(CONFIGURATION_LIMIT, exc.message, exc.hint) from None
        catalog = sql_catalog_get()
        mapped = memo.get(catalog.table, params) if memo is not None else None
        if mapped is None:
            if memo is not None and (params or _has_parameter(tree)):
                tree = bind_parameters(tree, params)
            mapped = sql_select_map(select=tree, table=catalog.table)
            if memo is not None:
                memo.put(catalog.table, params, mapped)
        # Who asks is decided here, on every execution: the compile is the principal's
        # (row policies, masks) and writes its audit row.
        mapped, compiled = sql_mapped_compile(
            mapped=mapped,
            principal=self.identity.principal,
            acting_user=self.identity.account,
        )
        ready = compiled_prepare(compiled, principal=self.identity.principal)
        key = sql_result_key(
            compiled=compiled,
            principal=self.identity.principal,
            row_cap=self.server.config.row_cap,
        )
        names = [c.lower() for c in compiled.columns]
        picks = [compiled_index(names, name) for _shown, name, _column in mapped.outputs]
        fields = [
            wire.Field(shown, wire.OIDS[column.pg_type]) for shown, _name, column in mapped.outputs
        ]
        # A repeat of a query whose data did not change is answered from the result cache,
        # without an execution slot: the key binds the principal's policies (never crossed).
        hit = result_get(key) if key is not None else None
        if hit is not None:
            rows = ([row[p] for p in picks] for row in hit.rows()[mapped.offset :])
            return Result(tag="SELECT", fields=fields, rows=rows)
        return Result(
            tag="SELECT",
            fields=fields,
            rows=self._stream_rows(ready, picks, mapped.offset, keep=key, columns=compiled.columns),
        )

    def _stream_rows(
        self,
        ready: ReadyQuery,
        picks: list[int],
        offset: int = 0,
        *,
        keep: str | None = None,
        columns: tuple[str, ...] = (),
    ) -> Iterator[list[Any]]:
        config = self.server.config
        scope = self._begin()
        # The rows are kept for the result cache (under key ``keep``) while they are few
        # enough to be kept there: at most TALLY_RESULT_CACHE_MAX_ROWS per running slot.
        kept: list[tuple[Any, ...]] | None = [] if keep is not None else None
        most = result_cache_max_rows()
        try:
            with (
                self.server.pool.slot(),
                stream_compiled(
                    ready,
                    principal=self.identity.principal if self.identity else None,
                    timeout_s=config.timeout_s,
                    row_cap=config.row_cap,
                    batch_size=STREAM_BATCH,
                    cancel=scope,
                    held=self.server.pool.warehouse,
                ) as (_columns, batches),
            ):
                for batch in batches:
                    if scope.requested:
                        raise SqlError(QUERY_CANCELED, MSG_CANCELED)
                    if kept is not None:
                        kept.extend(tuple(row) for row in batch)
                        if len(kept) > most:
                            kept = None
                    for row in batch:
                        if offset:
                            offset -= 1
                            continue
                        yield [row[p] for p in picks]
                if batches.truncated:
                    raise SqlError(
                        PROGRAM_LIMIT, MSG_ROW_CAP.format(cap=config.row_cap), HINT_ROW_CAP
                    )
            if keep is not None and kept is not None and not scope.requested:
                result_put(keep, StoredAnswer.of(columns, tuple(kept), False, with_json=False))
        except TallyError as exc:
            if scope.requested:
                raise SqlError(QUERY_CANCELED, MSG_CANCELED) from None
            raise tally_sql_error(exc) from None
        finally:
            self._end()

    # ------------------------------------------------------------------ cancel

    def _begin(self) -> CancelScope:
        scope = CancelScope()
        with self._cancel_lock:
            self._cancel = scope
        return scope

    def _end(self) -> None:
        with self._cancel_lock:
            self._cancel = None

    def cancel_running(self) -> None:
        with self._cancel_lock:
            scope = self._cancel
        if scope is not None:
            scope.cancel()


def _has_parameter(tree: exp.Expr) -> bool:
    return any(isinstance(node, exp.Parameter) for node in tree.walk())


def exits_failed_block(tree: exp.Expr) -> bool:
    """Whether a failed transaction block takes the statement (COMMIT, ROLLBACK [TO])."""
    return control_kind(tree) == TRANSACTION_KEYWORD and transaction_of(tree).exits_failed_block


def compiled_index(names: list[str], name: str) -> int:
    """The compiled column of a selected column: the same name, or for a bare time column
    (``metric_time``, ``account__created_at``) the one the compiler named after its grain
    (``metric_time__day``), as MetricFlow names it."""
    wanted = name.lower()
    if wanted in names:
        return names.index(wanted)
    return next(
        i
        for i, n in enumerate(names)
        if n.rpartition("__")[0] == wanted and n.rpartition("__")[2] in ALL_GRAINS
    )
