"""Builds the demo warehouse: validation, the atomic build, existence and checksums.

Django-free. See :mod:`semantic.demo` for the data and its determinism.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import duckdb

from semantic.demo.sql_accounts import ACCOUNTS, ALLOCATION, MACROS, USERS
from semantic.demo.sql_activity import (
    COMMENTS,
    DIMENSIONS,
    EVENTS,
    INVOICES,
    SUBSCRIPTIONS,
    TABLES_DDL,
    TIME_SPINE,
)
from semantic.demo.values import (
    DAY_US,
    DEFAULT_END_DATE,
    HISTORY_DAYS,
    HOUR_US,
    LITERALS,
    MAX_EVENTS,
    MIN_ACCOUNTS,
    MIN_USERS,
    TABLES,
    epoch_us,
)

__all__ = ["DemoSummary", "build_demo_warehouse", "demo_warehouse_exists", "table_checksums"]


@dataclass(frozen=True)
class DemoSummary:
    """What one build produced.

    Attributes:
        path: the DuckDB file written, or ``":memory:"`` for an in-memory connection.
        events: requested (and produced) number of event rows.
        seed: the seed used.
        end_date: last day of history.
        tables: row count per table, in build order (read-only mapping).
        seconds: wall-clock build time.
    """

    path: str
    events: int
    seed: int
    end_date: date
    tables: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    seconds: float = 0.0


@dataclass(frozen=True)
class _Sizes:
    """Row budget derived from the requested number of events.

    The events table holds exactly ``events`` rows: one ``signup`` per user, ``duplicates``
    re-delivered copies (1%), and the rest ordinary activity.
    """

    events: int
    accounts: int
    users: int
    duplicates: int
    activity: int

    @classmethod
    def for_events(cls, events: int) -> _Sizes:
        # Small builds shrink users (and accounts) so the row count stays exact: every user
        # contributes a signup row, so there can never be more users than event rows.
        users = min(events, max(MIN_USERS, events // 20))
        accounts = min(users, max(MIN_ACCOUNTS, events // 100))
        duplicates = events // 100
        return cls(events, accounts, users, duplicates, events - users - duplicates)


@dataclass(frozen=True)
class _Params:
    """Validated inputs, as the only values interpolated into the build SQL."""

    sizes: _Sizes
    seed: int
    end_date: date

    @property
    def end_us(self) -> int:
        """Exclusive end of history (midnight after ``end_date``) in epoch microseconds."""
        return epoch_us(self.end_date + timedelta(days=1))

    @property
    def start_us(self) -> int:
        """Inclusive start of history in epoch microseconds."""
        return self.end_us - HISTORY_DAYS * DAY_US

    def sql(self, template: str) -> str:
        """Fills a build template; every substituted value is an int or our own literal."""
        s = self.sizes
        return template.format(
            seed=self.seed,
            events=s.events,
            accounts=s.accounts,
            users=s.users,
            duplicates=s.duplicates,
            activity=s.activity,
            start_us=self.start_us,
            end_us=self.end_us,
            span_us=self.end_us - self.start_us,
            day_us=DAY_US,
            hour_us=HOUR_US,
            end_date=self.end_date.isoformat(),
            **LITERALS,
        )


def build_demo_warehouse(
    target: str | os.PathLike[str] | duckdb.DuckDBPyConnection,
    *,
    events: int = 200_000,
    seed: int = 42,
    end_date: date = DEFAULT_END_DATE,
    replace: bool = True,
) -> DemoSummary:
    """Builds the demo warehouse tables, deterministically for a given (events, seed, end_date).

    Given a path, the build goes to a hidden file next to it that is renamed over the target
    only once complete, so readers see either the old warehouse or the new one, never half
    of one. Given an open connection, the tables are created in its current database inside
    one transaction.

    Sizes scale with ``events``: about ``events / 100`` accounts (at least 20) and
    ``events / 20`` users (at least 50); the events table holds exactly ``events`` rows.

    Args:
        target: DuckDB file path, or an open DuckDB connection.
        events: number of rows in ``events``, at least 1.
        seed: any integer in [0, 2**63); the same seed gives the same data.
        end_date: last day of the two-year history.
        replace: overwrite an existing warehouse; when False, refuse if one exists.

    Returns:
        A :class:`DemoSummary` with row counts and build time.

    Raises:
        ValueError: an argument is out of range (message names the argument).
        TypeError: an argument has the wrong type.
        FileExistsError: ``replace`` is False and the target already holds a warehouse
            (a file at the path, or any demo table in the connection).
        FileNotFoundError: the target's directory does not exist.

    Example:
        >>> con = duckdb.connect()
        >>> summary = build_demo_warehouse(con, events=1_000, seed=7)
        >>> dict(summary.tables)["events"], dict(summary.tables)["accounts"]
        (1000, 20)
        >>> con.execute("SELECT count(*) FROM events WHERE event_type = 'signup'").fetchall()
        [(50,)]
    """
    params = _validated_params(events=events, seed=seed, end_date=end_date, replace=replace)
    started = time.perf_counter()
    if isinstance(target, duckdb.DuckDBPyConnection):
        if not replace and _present_tables(target):
            raise FileExistsError(
                "the connection already holds demo tables; pass replace=True to rebuild them"
            )
        _build_in_transaction(target, params)
        counts = _row_counts(target)
        where = _database_path(target)
    else:
        path = _validated_path(target)
        if not replace and path.exists():
            raise FileExistsError(f"{path} already exists; pass replace=True to rebuild it")
        counts = _build_file(path, params)
        where = str(path)
    return DemoSummary(
        path=where,
        events=params.sizes.events,
        seed=params.seed,
        end_date=params.end_date,
        tables=MappingProxyType(counts),
        seconds=time.perf_counter() - started,
    )


def demo_warehouse_exists(path: str | os.PathLike[str] | duckdb.DuckDBPyConnection) -> bool:
    """Tells whether a DuckDB file (or connection) holds all five demo tables.

    A missing file, or a file that is not a DuckDB database, is reported as absent. A file
    that is a database but cannot be opened (for example, locked by another process)
    raises, so that callers never rebuild a warehouse that is in use by mistake.

    Args:
        path: DuckDB file path, or an open DuckDB connection.

    Returns:
        True when every table in :data:`TABLES` exists in the main schema.

    Raises:
        duckdb.Error: the file is a DuckDB database but could not be opened.

    Example:
        >>> con = duckdb.connect()
        >>> demo_warehouse_exists(con)
        False
        >>> _ = build_demo_warehouse(con, events=500)
        >>> demo_warehouse_exists(con)
        True
    """
    if isinstance(path, duckdb.DuckDBPyConnection):
        return _present_tables(path) == set(TABLES)
    file = Path(path)
    if not file.is_file() or not _looks_like_duckdb(file):
        return False
    try:
        con = duckdb.connect(str(file), read_only=True)
    except duckdb.ConnectionException:
        # This process already holds the file open read-write; DuckDB refuses a second
        # connection with a different configuration but shares one with the same.
        con = duckdb.connect(str(file))
    try:
        return _present_tables(con) == set(TABLES)
    finally:
        con.close()


def table_checksums(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Content-and-order fingerprint of each demo table.

    Each value is ``"<rows>:<hash>"`` where the hash sums ``hash(rowid, row)`` over the table,
    so it changes when any value, the row count, or the physical row order changes. Two
    builds with the same arguments produce equal fingerprints.

    Args:
        con: connection whose current database holds the demo tables.

    Returns:
        Table name → fingerprint, for every table in :data:`TABLES`.

    Raises:
        duckdb.CatalogException: a demo table is missing.

    Example:
        >>> con = duckdb.connect()
        >>> _ = build_demo_warehouse(con, events=500, seed=1)
        >>> first = table_checksums(con)
        >>> _ = build_demo_warehouse(con, events=500, seed=1)
        >>> table_checksums(con) == first, sorted(first)[0]
        (True, 'accounts')
    """
    checksums: dict[str, str] = {}
    for table in TABLES:
        # rowid is the physical position, so including it makes the sum order-sensitive
        # while the sum itself stays independent of how DuckDB splits the scan.
        rows, total = _fetch_one(
            con, f"SELECT count(*), coalesce(sum(hash(rowid, t)), 0) FROM {table} AS t"
        )
        checksums[table] = f"{rows}:{int(total) % 2**64:016x}"
    return checksums


# --- validation ------------------------------------------------------------------------


def _validated_params(
    *, events: object, seed: object, end_date: object, replace: object
) -> _Params:
    """Checks the arguments and returns them as build parameters."""
    # bool is an int subclass; True as an event count is almost certainly a mistake.
    if not isinstance(events, int) or isinstance(events, bool):
        raise TypeError(f"events must be an int, got {type(events).__name__}")
    if not 1 <= events <= MAX_EVENTS:
        raise ValueError(f"events must be between 1 and {MAX_EVENTS:,}, got {events:,}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be between 0 and 2**63 - 1, got {seed}")
    # datetime is a date subclass; a time of day would be silently dropped, so refuse it.
    if not isinstance(end_date, date) or isinstance(end_date, datetime):
        raise TypeError(f"end_date must be a datetime.date, got {type(end_date).__name__}")
    if not 1973 <= end_date.year <= 9000:
        raise ValueError(f"end_date must be between years 1973 and 9000, got {end_date}")
    if not isinstance(replace, bool):
        raise TypeError(f"replace must be a bool, got {type(replace).__name__}")
    return _Params(_Sizes.for_events(events), seed, end_date)


def _validated_path(target: object) -> Path:
    """Resolves a file target and checks that its directory exists."""
    if not isinstance(target, str | os.PathLike):
        raise TypeError(
            f"target must be a path or a duckdb connection, got {type(target).__name__}"
        )
    raw = os.fspath(target)
    if raw in ("", ":memory:") or raw.startswith(":memory:"):
        raise ValueError("target must be a file path; pass a duckdb connection for in-memory")
    path = Path(raw).expanduser().resolve()
    if path.is_dir():
        raise ValueError(f"target {path} is a directory; give a file path such as warehouse.duckdb")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"directory {path.parent} does not exist")
    return path


# --- orchestration ---------------------------------------------------------------------


def _build_file(path: Path, params: _Params) -> dict[str, int]:
    """Builds into a sibling temporary file, then renames it over ``path``."""
    # Same directory ⇒ same filesystem ⇒ os.replace is an atomic rename.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.building")
    try:
        con = duckdb.connect(str(tmp))
        try:
            _build(con, params)
            counts = _row_counts(con)
            # Fold the WAL into the file so the renamed file is complete on its own.
            con.execute("CHECKPOINT")
        finally:
            con.close()
        # A stale WAL left by a crashed writer of the old file would be replayed onto the
        # new one at next open, corrupting it; it belongs to the file we are replacing.
        _unlink(Path(f"{path}.wal"))
        os.replace(tmp, path)
    except BaseException:
        _unlink(tmp)
        _unlink(Path(f"{tmp}.wal"))
        raise
    return counts


def _build_in_transaction(con: duckdb.DuckDBPyConnection, params: _Params) -> None:
    """Builds in an existing connection; all or nothing."""
    con.execute("BEGIN TRANSACTION")
    try:
        _build(con, params)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _build(con: duckdb.DuckDBPyConnection, params: _Params) -> None:
    """Runs the build statements in order and drops the scaffolding.

    On failure the scaffolding is left to the caller's ROLLBACK (connection target) or to
    closing the connection (file target): an aborted transaction accepts no more DDL.
    """
    for statement in _BUILD_STEPS:
        con.execute(params.sql(statement))
    for statement in _CLEANUP:
        con.execute(statement)


def _present_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the demo tables present in the current database's main schema."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND NOT temporary AND table_name IN (SELECT unnest(?::VARCHAR[]))",
        [list(TABLES)],
    ).fetchall()
    return {name for (name,) in rows}


def _row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row count per demo table, in build order."""
    return {table: int(_fetch_one(con, f"SELECT count(*) FROM {table}")[0]) for table in TABLES}


def _database_path(con: duckdb.DuckDBPyConnection) -> str:
    """File behind the connection's current database, or ``":memory:"``."""
    (path,) = _fetch_one(
        con, "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    )
    return str(path) if path else ":memory:"


def _fetch_one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[object, ...]:
    """First row of a query that always returns one."""
    # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open on the connection
    # and refuses the next statement until it is drained.
    rows = con.execute(sql).fetchall()
    assert rows, sql
    return tuple(rows[0])


def _looks_like_duckdb(path: Path) -> bool:
    """Checks the DuckDB magic bytes (``DUCK`` at offset 8) without opening the database."""
    with path.open("rb") as fh:
        header = fh.read(12)
    return header[8:12] == b"DUCK"


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


_BUILD_STEPS: tuple[str, ...] = (
    MACROS,
    ACCOUNTS,
    USERS,
    ALLOCATION,
    SUBSCRIPTIONS,
    TABLES_DDL,
    DIMENSIONS,
    EVENTS,
    INVOICES,
    COMMENTS,
    TIME_SPINE,
)

_CLEANUP: tuple[str, ...] = (
    "DROP TABLE IF EXISTS temp._demo_accounts",
    "DROP TABLE IF EXISTS temp._demo_users",
    "DROP TABLE IF EXISTS temp._demo_alloc",
    "DROP TABLE IF EXISTS temp._demo_subs",
    "DROP MACRO IF EXISTS temp._demo_uuid",
    "DROP MACRO IF EXISTS temp._demo_u",
    "DROP MACRO IF EXISTS temp._demo_h",
)
