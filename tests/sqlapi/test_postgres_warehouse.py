"""The SQL API in front of a PostgreSQL warehouse: same rows as on DuckDB, and the
warehouse's statement timeout surfaces as 57014."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.loader import copy_duckdb_tables
from tests.conftest import ROOT, postgres_reader_url, require_service
from tests.sqlapi.conftest import Servers, start_sql_server, stop

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
QUERY = (
    "SELECT metric_time__month, account__plan, revenue, signups FROM metrics "
    "WHERE account__region = %s GROUP BY 1, 2 ORDER BY 1, 2"
)


@pytest.fixture(scope="module")
def pg_warehouse(servers: Servers) -> Iterator[str]:
    require_service("postgres")
    name = f"tally_sqlapi_wh_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        # The fixtures' contracts name schema main (DuckDB's default).
        copy_duckdb_tables(
            servers.warehouse, parse_warehouse_url(url, base_dir=ROOT), schema="main"
        )
        # Loaded as the admin; queried as the README's read-only role (issue 18).
        yield postgres_reader_url(name, ("main",))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_rows_equal_the_duckdb_warehouse(servers: Servers, pg_warehouse: str) -> None:
    process, port = start_sql_server({**servers.env, "WAREHOUSE_URL": pg_warehouse})
    try:
        with psycopg.connect(servers.url(port=port)) as conn:
            on_postgres = conn.execute(QUERY, ["EMEA"]).fetchall()
        with psycopg.connect(servers.url()) as conn:
            on_duckdb = conn.execute(QUERY, ["EMEA"]).fetchall()
    finally:
        stop(process)
    assert len(on_postgres) > 10
    assert [(m, p, float(r or 0), s) for m, p, r, s in on_postgres] == [
        (m, p, float(r or 0), s) for m, p, r, s in on_duckdb
    ]


def test_warehouse_timeout_is_57014(servers: Servers, pg_warehouse: str) -> None:
    process, port = start_sql_server(
        {**servers.env, "WAREHOUSE_URL": pg_warehouse, "TALLY_SQL_TIMEOUT_S": "0.001"}
    )
    try:
        with psycopg.connect(servers.url(port=port), autocommit=True) as conn:
            with pytest.raises(psycopg.errors.QueryCanceled):
                conn.execute(QUERY, ["EMEA"]).fetchall()
            # The connection goes on (SHOW is answered without a query).
            assert conn.execute("SHOW server_version").fetchone() == ("15.0",)
    finally:
        stop(process)
