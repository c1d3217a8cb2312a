"""Copying the DuckDB demo warehouse into PostgreSQL and MariaDB, so queries run on three engines.

Real services: each test run works in databases with unique names that it drops again, so
two xdist workers never meet.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pymysql
import pytest

from semantic.demo import build_demo_warehouse
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import execute
from semantic.warehouse.loader import (
    DEMO_TABLES,
    TABLE_EXISTS_MESSAGE,
    copy_duckdb_tables,
    target_column_type,
)
from tally.errors import WarehouseError
from tests.conftest import require_service

EVENTS = 2_000
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

# One query per checksum family; the same SQL text runs on all three engines.
CHECKSUMS_SQL = """
SELECT
    (SELECT sum(revenue) FROM events) AS revenue,
    (SELECT count(DISTINCT event_id) FROM events) AS event_ids,
    (SELECT min(occurred_at) FROM events) AS first_event,
    (SELECT max(occurred_at) FROM events) AS last_event,
    (SELECT sum(mrr) FROM subscriptions) AS mrr,
    (SELECT count(*) FROM accounts WHERE churned_at IS NULL) AS open_accounts,
    (SELECT sum(amount) FROM invoices WHERE paid_at IS NULL) AS unpaid,
    (SELECT min(date_day) FROM time_spine) AS first_day
"""

# Values that break naive CSV or type handling: quotes, separators, newlines, backslashes,
# the text 'NULL', empty vs NULL strings, microseconds, offsets, extreme decimals.
SAMPLES_DDL = """
CREATE TABLE samples (
    id BIGINT PRIMARY KEY,
    flag BOOLEAN,
    amount DECIMAL(12, 2),
    ratio DOUBLE,
    label VARCHAR,
    happened_at TIMESTAMP,
    happened_tz TIMESTAMPTZ,
    day DATE,
    payload JSON,
    ref UUID,
    raw BLOB
);
INSERT INTO samples VALUES
    (1, true, 12.50, 0.1, 'plain', TIMESTAMP '2024-01-31 23:59:59.123456',
     TIMESTAMPTZ '2024-02-01 01:00:00.5+02', DATE '2024-02-29', '{"plan": "pro", "n": 1}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00\\x22\\x2C\\x0A'::BLOB),
    (2, false, -0.01, -2.5e-7, '', TIMESTAMP '1999-12-31 00:00:00',
     TIMESTAMPTZ '1999-12-31 23:00:00-05', DATE '1970-01-01', '[]',
     '00000000-0000-0000-0000-000000000000', ''::BLOB),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, true, 9999999999.99, 1e300, 'say "hi", then
a \\ backslash	tab ünïcødé 😀', TIMESTAMP '2038-01-19 03:14:08', TIMESTAMPTZ '2100-01-01 00:00:00+00',
     DATE '2100-12-31', '{"quote": "a \\"b\\", c", "nested": {"k": [1, 2.5, null]}}',
     'ffffffff-ffff-ffff-ffff-ffffffffffff', 'bytes'::BLOB),
    (5, false, 0, 0.0, 'NULL', TIMESTAMP '2024-06-01 12:00:00', TIMESTAMPTZ '2024-06-01 12:00:00Z',
     DATE '2024-06-01', '"NULL"', NULL, NULL);
"""


# The loader is an admin tool and these tests inspect what it wrote (types, indexes,
# collations) as that admin: the superuser override is explicit here, never in query tests.
def pg_config(database: str) -> WarehouseConfig:
    return WarehouseConfig(
        engine="postgresql",
        dialect="postgres",
        host="127.0.0.1",
        port=5432,
        user="postgres",
        database=database,
        allow_privileged=True,
    )


def mariadb_config(database: str) -> WarehouseConfig:
    return WarehouseConfig(
        engine="mysql",
        dialect="mysql",
        host="127.0.0.1",
        port=3306,
        user="root",
        database=database,
        allow_privileged=True,
    )


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2,000-event demo warehouse plus the edge-case ``samples`` table."""
    path = tmp_path_factory.mktemp("loader") / "warehouse.duckdb"
    build_demo_warehouse(path, events=EVENTS, seed=42)
    con = duckdb.connect(str(path))
    try:
        con.execute(SAMPLES_DDL)
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def pg_database() -> Iterator[WarehouseConfig]:
    """A fresh PostgreSQL database, dropped at the end of the module."""
    require_service("postgres")
    name = unique_name("tally_loader")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_config(name)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def mariadb_database() -> Iterator[WarehouseConfig]:
    """A fresh MariaDB database, dropped at the end of the module."""
    require_service("mariadb")
    name = unique_name("tally_loader")
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield mariadb_config(name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture(scope="module")
def copied(
    demo_file: Path, pg_database: WarehouseConfig, mariadb_database: WarehouseConfig
) -> dict[str, tuple[WarehouseConfig, dict[str, int]]]:
    """The demo and samples tables copied to both servers: engine -> (config, row counts)."""
    tables = (*DEMO_TABLES, "samples")
    return {
        "postgresql": (pg_database, copy_duckdb_tables(demo_file, pg_database, tables=tables)),
        "mysql": (mariadb_database, copy_duckdb_tables(demo_file, mariadb_database, tables=tables)),
    }


def duckdb_config(path: Path) -> WarehouseConfig:
    return WarehouseConfig(engine="duckdb", dialect="duckdb", path=str(path))


def all_configs(
    demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> dict[str, WarehouseConfig]:
    return {"duckdb": duckdb_config(demo_file), **{k: v[0] for k, v in copied.items()}}


# --- counts and checksums ------------------------------------------------------------------


def test_copy_reports_the_source_row_count_of_every_table(
    demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards that every demo table arrives whole on both servers (no row lost or doubled)."""
    source = execute(
        duckdb_config(demo_file),
        " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in (*DEMO_TABLES, "samples")),
    )
    expected = {table: count for table, count in source.rows}
    assert expected["events"] == EVENTS
    for config, counts in copied.values():
        assert counts == expected
        for table, count in expected.items():
            assert execute(config, f"SELECT count(*) FROM {table}").rows == ((count,),)


def test_aggregate_checksums_match_on_all_three_engines(
    demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards faithful values: revenue and MRR sums, distinct ids, time bounds, NULL counts."""
    results = {
        engine: execute(config, CHECKSUMS_SQL).rows
        for engine, config in all_configs(demo_file, copied).items()
    }
    (row,) = results["duckdb"]
    assert isinstance(row[0], Decimal) and row[0] > 0
    assert isinstance(row[2], datetime) and row[2].tzinfo is None
    assert isinstance(row[7], date)
    assert results["postgresql"] == results["duckdb"]
    assert results["mysql"] == results["duckdb"]


def test_event_rows_are_identical_on_all_three_engines(
    demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards row-level fidelity of the fact table, microseconds and JSON included."""
    sql = (
        "SELECT event_id, user_id, account_id, anonymous_id, event_type, occurred_at, "
        "received_at, revenue, properties FROM events "
        "ORDER BY occurred_at, event_id, received_at"
    )
    rows = {}
    for engine, config in all_configs(demo_file, copied).items():
        # jsonb re-renders JSON text (key order, spacing): compare the parsed documents.
        rows[engine] = [(*r[:-1], json.loads(r[-1])) for r in execute(config, sql).rows]
    assert len(rows["duckdb"]) == EVENTS
    assert any(r[5].microsecond for r in rows["duckdb"])
    assert rows["postgresql"] == rows["duckdb"]
    assert rows["mysql"] == rows["duckdb"]


def test_edge_case_values_survive_the_csv_bulk_path(
    demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards the CSV round trip: quotes, newlines, backslashes, 'NULL' text, '' vs NULL, bytes."""
    sql = (
        "SELECT id, flag, amount, label, happened_at, happened_tz, day, ref, raw, payload "
        "FROM samples ORDER BY id"
    )
    rows = {}
    for engine, config in all_configs(demo_file, copied).items():
        rows[engine] = [
            (*r[:-1], None if r[-1] is None else json.loads(r[-1]))
            for r in execute(config, sql).rows
        ]
    duck = rows["duckdb"]
    assert duck[1][3] == "" and duck[2][3] is None and duck[4][3] == "NULL"
    assert duck[0][5] == datetime(2024, 1, 31, 23, 0, 0, 500000)  # +02 offset, now UTC
    assert duck[3][8] == b"bytes" and duck[0][8] == b'\x00",\n'
    assert rows["postgresql"] == duck
    assert rows["mysql"] == duck


# --- tables, types, keys -------------------------------------------------------------------


def test_postgres_copy_keeps_column_types_keys_and_indexes(
    copied: dict[str, tuple[WarehouseConfig, dict[str, int]]],
) -> None:
    """Guards the type mapping (numeric(12,2), timestamp, jsonb, C collation) and the indexes."""
    config, _ = copied["postgresql"]
    types = dict(
        execute(
            config,
            "SELECT column_name, data_type || coalesce('(' || numeric_precision || ',' "
            "|| numeric_scale || ')', '') FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'events'",
        ).rows
    )
    assert types["revenue"] == "numeric(12,2)"
    assert types["occurred_at"] == "timestamp without time zone"
    assert types["properties"] == "jsonb"
    assert types["user_id"].startswith("bigint")
    indexes = execute(
        config,
        "SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "ORDER BY tablename, indexname",
    ).rows
    definitions = "\n".join(f"{t}: {d}" for t, d in indexes)
    assert "accounts: CREATE UNIQUE INDEX accounts_pkey ON public.accounts USING btree (id)" in (
        definitions
    )
    assert "USING btree (account_id)" in definitions
    assert "USING btree (occurred_at)" in definitions
    assert not any(t == "events" and "UNIQUE" in d for t, d in indexes)  # event_id repeats
    collation = execute(
        config,
        "SELECT collation_name FROM information_schema.columns "
        "WHERE table_name = 'events' AND column_name = 'event_type'",
    ).rows
    assert collation == (("C",),)


def test_mariadb_copy_keeps_column_types_keys_and_indexes(
    copied: dict[str, tuple[WarehouseConfig, dict[str, int]]],
) -> None:
    """Guards DATETIME(6) (not second precision), DECIMAL(12,2), JSON, binary collation, keys."""
    config, _ = copied["mysql"]
    columns = {
        name: (column_type, collation)
        for name, column_type, collation in execute(
            config,
            "SELECT COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'events'",
        ).rows
    }
    assert columns["occurred_at"][0] == "datetime(6)"
    assert columns["revenue"][0] == "decimal(12,2)"
    assert columns["properties"][0] == "longtext"  # MariaDB's JSON alias
    assert columns["event_type"] == ("varchar(64)", "utf8mb4_nopad_bin")
    flag = execute(
        config,
        "SELECT COLUMN_TYPE FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'samples' AND COLUMN_NAME = 'flag'",
    ).rows
    assert flag == (("tinyint(1)",),)
    keys = set(
        execute(
            config,
            "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
            "WHERE TABLE_SCHEMA = DATABASE()",
        ).rows
    )
    assert ("accounts", "PRIMARY", "id") in keys
    assert ("events", "events_account_id_idx", "account_id") in keys
    assert ("events", "events_occurred_at_idx", "occurred_at") in keys


def test_mariadb_string_comparison_is_case_sensitive_like_duckdb(
    demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards against MariaDB's default case-insensitive collation changing filter results."""
    sql = "SELECT count(*) FROM events WHERE event_type = 'LOGIN'"
    for config in all_configs(demo_file, copied).values():
        assert execute(config, sql).rows == ((0,),)


# --- idempotence and refusal ---------------------------------------------------------------


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_copying_again_with_replace_leaves_the_same_tables(
    engine: str, demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards idempotence: a second copy replaces tables and leaves no staging tables behind."""
    config, first = copied[engine]
    before = execute(config, CHECKSUMS_SQL).rows
    again = copy_duckdb_tables(demo_file, config, tables=("accounts", "events"))
    assert again == {"accounts": first["accounts"], "events": first["events"]}
    assert execute(config, CHECKSUMS_SQL).rows == before
    schema = "current_schema()" if engine == "postgresql" else "DATABASE()"
    leftovers = execute(
        config,
        "SELECT table_name FROM information_schema.tables "
        f"WHERE table_schema = {schema} AND table_name LIKE '%tally%'",
    ).rows
    assert leftovers == ()


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_copy_without_replace_refuses_existing_tables_before_copying(
    engine: str, demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards replace=False: an existing table stops the copy before any table is touched."""
    config, _ = copied[engine]
    with pytest.raises(WarehouseError) as caught:
        copy_duckdb_tables(demo_file, config, tables=("time_spine",), replace=False)
    assert caught.value.code == "warehouse_table_exists"
    assert caught.value.message.startswith(TABLE_EXISTS_MESSAGE.split("{", 1)[0])


def test_copy_into_a_named_postgres_schema_creates_it(
    demo_file: Path, pg_database: WarehouseConfig
) -> None:
    """Guards the schema argument on PostgreSQL: created when missing, tables land inside it."""
    counts = copy_duckdb_tables(demo_file, pg_database, tables=("time_spine",), schema="demo")
    assert execute(pg_database, "SELECT count(*) FROM demo.time_spine").rows == (
        (counts["time_spine"],),
    )


def test_copy_accepts_an_open_duckdb_connection_as_the_source(
    pg_database: WarehouseConfig,
) -> None:
    """Guards the in-memory source (tests, notebooks): a connection instead of a file path."""
    con = duckdb.connect()
    try:
        build_demo_warehouse(con, events=300, seed=9)
        con.execute("SET TimeZone = 'America/New_York'")
        counts = copy_duckdb_tables(con, pg_database, tables=("accounts",), schema="from_memory")
        # The loader's UTC session setting stays on its own cursor, off the caller's connection.
        zone = con.execute("SELECT current_setting('TimeZone')").fetchall()
        assert zone == [("America/New_York",)]
    finally:
        con.close()
    assert counts == {"accounts": 20}
    assert execute(pg_database, "SELECT count(*) FROM from_memory.accounts").rows == ((20,),)


def test_mariadb_insert_path_copies_the_same_values_as_load_data(
    demo_file: Path, copied: dict[str, tuple[WarehouseConfig, dict[str, int]]]
) -> None:
    """Guards the INSERT fallback used when a server forbids LOAD DATA LOCAL INFILE."""
    config, _ = copied["mysql"]
    other = unique_name("tally_insert")
    sql = "SELECT * FROM samples ORDER BY id"
    counts = copy_duckdb_tables(
        demo_file, config, tables=("samples",), schema=other, mysql_bulk="insert"
    )
    try:
        assert counts == {"samples": 5}
        inserted = execute(mariadb_config(other), sql).rows
        assert inserted == execute(config, sql).rows
    finally:
        admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{other}`")
        admin.close()


# --- errors and type mapping ---------------------------------------------------------------


def test_copy_to_an_unreachable_server_raises_warehouse_unavailable(demo_file: Path) -> None:
    """Guards the error code when the target is down (connection refused)."""
    config = WarehouseConfig(
        engine="postgresql", dialect="postgres", host="127.0.0.1", port=1, database="x"
    )
    with pytest.raises(WarehouseError) as caught:
        copy_duckdb_tables(demo_file, config, tables=("time_spine",))
    assert caught.value.code == "warehouse_unavailable"


def test_copy_rejects_a_table_missing_from_the_source(demo_file: Path) -> None:
    """Guards a typo in ``tables``: named in the error, before connecting anywhere."""
    config = pg_config("unused")
    with pytest.raises(ValueError, match="table nope is not in the DuckDB source"):
        copy_duckdb_tables(demo_file, config, tables=("nope",))


def test_copy_rejects_duckdb_as_a_target(demo_file: Path) -> None:
    """Guards the supported targets: the loader writes PostgreSQL and MySQL only."""
    with pytest.raises(ValueError, match="cannot copy into a 'duckdb' warehouse"):
        copy_duckdb_tables(demo_file, duckdb_config(demo_file))


@pytest.mark.parametrize(
    ("duckdb_type", "engine", "expected"),
    [
        ("BIGINT", "postgresql", "bigint"),
        ("INTEGER", "mysql", "INT"),
        ("VARCHAR", "postgresql", 'text COLLATE "C"'),
        ("VARCHAR", "mysql", "VARCHAR(255)"),
        ("DECIMAL(12,2)", "mysql", "DECIMAL(12,2)"),
        ("TIMESTAMP", "postgresql", "timestamp"),
        ("TIMESTAMP WITH TIME ZONE", "mysql", "DATETIME(6)"),
        ("BOOLEAN", "mysql", "BOOLEAN"),
        ("JSON", "postgresql", "jsonb"),
        ("UBIGINT", "postgresql", "numeric(20,0)"),
    ],
)
def test_target_column_type_maps_duckdb_types_faithfully(
    duckdb_type: str, engine: str, expected: str
) -> None:
    """Guards the documented type mapping, including widening of unsigned types."""
    assert target_column_type(duckdb_type, engine, max_length=100) == expected


def test_target_column_type_refuses_types_without_an_equivalent() -> None:
    """Guards against silently flattening nested DuckDB types into text."""
    with pytest.raises(ValueError, match=r"cannot copy DuckDB type INTEGER\[\] to mysql"):
        target_column_type("INTEGER[]", "mysql")


def test_long_strings_become_longtext_on_mariadb() -> None:
    """Guards MySQL's 65,535-byte row limit: strings past 1,024 characters are not VARCHAR."""
    assert target_column_type("VARCHAR", "mysql", max_length=5_000) == "LONGTEXT"
