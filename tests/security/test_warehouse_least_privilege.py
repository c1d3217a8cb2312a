"""Issue 18, principle 2: least privilege at the warehouse too.

Even if a compiler bug let a file-reading expression through, the warehouse connection must
not execute it: DuckDB user connections have external access disabled and the configuration
locked; on PostgreSQL and MariaDB Tally refuses to query as a superuser or a role that can
read server files unless TALLY_WAREHOUSE_ALLOW_PRIVILEGED=1, and the README's read-only role
answers real queries.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.conf import LazySettings

from semantic.compiler.spec import MetricQuery
from semantic.warehouse import connections
from semantic.warehouse.config import WarehouseConfig, parse_warehouse_url
from semantic.warehouse.execute import execute, open_duckdb
from semantic.warehouse.loader import copy_duckdb_tables
from tally.env import load_config
from tally.errors import WarehouseError
from tests.conftest import (
    POSTGRES_ADMIN,
    ROOT,
    mariadb_reader_url,
    postgres_reader_url,
    require_service,
)

READ_ENVIRON = "SELECT content FROM read_text('/proc/self/environ')"
OVERRIDE = "TALLY_WAREHOUSE_ALLOW_PRIVILEGED"


def _raw(error: WarehouseError) -> str:
    """The warehouse's own text, which only the server log and administrators see."""
    return error.warehouse_message or error.message


def test_a_duckdb_user_connection_cannot_read_files(warehouse_path: Path) -> None:
    """read_text is refused by the connection itself, whatever SQL reaches it."""
    con = open_duckdb(warehouse_path)
    try:
        with pytest.raises(duckdb.PermissionException):
            con.execute(READ_ENVIRON).fetchall()
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()
        # ...and the query cannot turn the protection off.
        with pytest.raises(duckdb.InvalidInputException):
            con.execute("SET enable_external_access = true")
        # The warehouse's own tables still answer.
        assert con.execute("SELECT count(*) FROM main.accounts").fetchone()[0] > 0
    finally:
        con.close()
    config = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    with pytest.raises(WarehouseError) as raised:
        execute(config, READ_ENVIRON)
    assert "PATH=" not in raised.value.message
    # The user sees a generic message; the raw text is logged under the reference.
    assert "disabled by configuration" in _raw(raised.value)
    # Tally's other connection (the time spine writer's) is locked down the same way.
    writer = connections.connect(config)
    try:
        with pytest.raises(duckdb.PermissionException):
            writer.execute(READ_ENVIRON).fetchall()
    finally:
        writer.close()


@pytest.fixture
def postgres_warehouse(warehouse_path: Path) -> Iterator[str]:
    """The demo warehouse copied (as the admin) into a fresh PostgreSQL database."""
    require_service("postgres")
    import psycopg

    name = f"tally_sec_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        admin = parse_warehouse_url(f"postgresql://postgres@127.0.0.1:5432/{name}", base_dir=ROOT)
        # The fixtures' contracts name schema main (DuckDB's default).
        copy_duckdb_tables(warehouse_path, admin, schema="main")
        yield name
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.django_db
def test_postgres_refuses_a_superuser_and_answers_as_the_read_only_role(
    fixtures_registry: None, settings: LazySettings, postgres_warehouse: str
) -> None:
    """A real query through Tally: refused as postgres, answered as the README's role."""
    from semantic.services import query_execute

    query = MetricQuery(metrics=("revenue",), group_by=("metric_time__month",))
    superuser = parse_warehouse_url(
        f"postgresql://postgres@127.0.0.1:5432/{postgres_warehouse}", base_dir=ROOT
    )
    settings.WAREHOUSE = superuser
    with pytest.raises(WarehouseError) as raised:
        query_execute(query=query)
    assert raised.value.code == "warehouse_unavailable"
    assert "is a superuser" in _raw(raised.value)
    assert OVERRIDE in _raw(raised.value)

    reader = parse_warehouse_url(
        postgres_reader_url(postgres_warehouse, schemas=("main",)), base_dir=ROOT
    )
    settings.WAREHOUSE = reader
    answer = query_execute(query=query)
    assert len(answer.rows) > 3
    assert sum(float(value or 0) for _, value in answer.rows) > 0
    # The role itself cannot read server files, whatever SQL it is given.
    with pytest.raises(WarehouseError) as raised:
        execute(reader, "SELECT pg_read_file('/etc/passwd')")
    assert "permission denied" in _raw(raised.value)

    # The explicit override lets the superuser through (for the operator who insists).
    settings.WAREHOUSE = dataclasses.replace(superuser, allow_privileged=True)
    assert len(query_execute(query=query).rows) == len(answer.rows)


def test_postgres_refuses_a_role_that_can_read_server_files() -> None:
    """Not a superuser, but a member of pg_read_server_files: refused too."""
    require_service("postgres")
    import psycopg

    role = f"tally_files_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'x'")
        conn.execute(f"GRANT pg_read_server_files TO {role}")
    try:
        config = parse_warehouse_url(
            f"postgresql://{role}:x@127.0.0.1:5432/postgres", base_dir=ROOT
        )
        with pytest.raises(connections.WarehouseUnavailable) as raised:
            connections.connect(config)
        assert "can read server files (pg_read_server_files)" in str(raised.value)
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_mariadb_refuses_root_and_answers_as_the_read_only_user() -> None:
    require_service("mariadb")
    import pymysql

    name = f"tally_sec_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"CREATE TABLE `{name}`.t AS SELECT 42 AS answer")
        root = parse_warehouse_url(f"mysql://root@127.0.0.1:3306/{name}", base_dir=ROOT)
        with pytest.raises(WarehouseError) as raised:
            execute(root, "SELECT answer FROM t")
        assert raised.value.code == "warehouse_unavailable"
        assert "FILE" in _raw(raised.value) or "ALL PRIVILEGES" in _raw(raised.value)
        reader = parse_warehouse_url(mariadb_reader_url(name), base_dir=ROOT)
        assert execute(reader, "SELECT answer FROM t").rows == ((42,),)
        assert execute(dataclasses.replace(root, allow_privileged=True), "SELECT 1").rows
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.mark.parametrize(("value", "allowed"), [(None, False), ("0", False), ("1", True)])
def test_the_override_is_read_from_the_environment(value: Any, allowed: bool) -> None:
    environ = {"SECRET_KEY": "x" * 50, "TALLY_PII_SALT": "s" * 40}
    if value is not None:
        environ[OVERRIDE] = value
    warehouse: WarehouseConfig = load_config(environ).warehouse
    assert warehouse.allow_privileged is allowed
