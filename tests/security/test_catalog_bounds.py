"""Issue 18, principle 7: the in-memory DuckDB behind pg_catalog/information_schema is
bounded: a memory limit (no spilling to disk), one thread, no external access, a locked
configuration, and a statement timeout of its own (TALLY_SQL_CATALOG_TIMEOUT_S)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import sqlglot

from semantic.sqlapi.catalog import Catalog, SessionInfo
from semantic.sqlapi.table import SqlColumn, SqlTable
from tests.security.sqlapi_support import sql_server, url

HUNGRY = "SELECT count(DISTINCT (g::text || repeat('x', 40))) FROM generate_series(1, 3000000) g"
ENDLESS = (
    "SELECT sum(a.g + b.g) FROM generate_series(1, 1000000) a(g), generate_series(1, 1000000) b(g)"
)


TABLE = SqlTable(release="r0", columns=(SqlColumn("revenue", "metric", "numeric", "Revenue"),))


def _run(catalog: Catalog, sql: str) -> list[tuple[Any, ...]]:
    _fields, rows = catalog.run(
        sqlglot.parse_one(sql, read="postgres"),
        SessionInfo(user="ana", database="tally", pid=1),
        {},
        timeout_s=60,
        on_start=lambda _interrupt: None,
        row_cap=1000,
    )
    return rows


def test_the_catalog_engine_is_opened_with_bounds() -> None:
    catalog = Catalog(TABLE)
    found = dict(
        _run(
            catalog,
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('threads', "
            "'memory_limit', 'enable_external_access', 'lock_configuration', 'temp_directory')",
        )
    )
    assert found["threads"] == "1"
    assert found["enable_external_access"] == "false"
    assert found["lock_configuration"] == "true"
    assert found["temp_directory"] == ""  # nothing spills to disk
    number, unit = found["memory_limit"].split()
    assert unit == "MiB" and float(number) <= 256, found["memory_limit"]


def test_a_memory_hungry_catalog_query_fails_instead_of_taking_the_host() -> None:
    import duckdb

    catalog = Catalog(TABLE, memory_limit="32MB")
    with pytest.raises(duckdb.OutOfMemoryException):
        _run(catalog, HUNGRY)
    # The catalog still answers.
    assert _run(catalog, "SELECT 1") == [(1,)]


def test_catalog_queries_over_the_sql_api_are_bounded() -> None:
    settings = {
        "TALLY_SQL_CATALOG_MEMORY": "32MB",
        "TALLY_SQL_CATALOG_TIMEOUT_S": "1",
        # The warehouse's statement timeout stays long: the catalog has its own.
        "TALLY_SQL_TIMEOUT_S": "900",
    }
    with sql_server(**settings) as port, psycopg.connect(url(port)) as conn:
        conn.autocommit = True
        with pytest.raises(psycopg.Error) as oom:
            conn.execute(HUNGRY)
        assert oom.value.sqlstate == "53200"
        with pytest.raises(psycopg.Error) as endless:
            conn.execute(ENDLESS)
        assert endless.value.sqlstate == "57014"
        with pytest.raises(psycopg.Error) as files:
            conn.execute("SELECT * FROM read_text('/etc/hostname')")
        assert files.value.sqlstate in ("42501", "42883", "42P01")
        assert conn.execute("SELECT 1").fetchone() == (1,)
