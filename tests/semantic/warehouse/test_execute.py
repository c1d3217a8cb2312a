"""Query execution on DuckDB, PostgreSQL and MariaDB: rows, streaming, caps, timeouts, errors.

Real services (skipped locally when one is down, failing under CI=true). Cross-engine tests
copy one small DuckDB warehouse into databases with unique names, dropped afterwards.
"""

from __future__ import annotations

import gc
import json
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from datetime import time as dt_time
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pymysql
import pytest

from semantic.warehouse.config import WarehouseConfig, parse_warehouse_url
from semantic.warehouse.connections import duckdb_user_connect
from semantic.warehouse.execute import (
    TIMEOUT_HINT,
    TIMEOUT_MESSAGE,
    execute,
    normalize_rows_for_compare,
    sql_hash,
    stream,
)
from semantic.warehouse.loader import DEMO_TABLES, copy_duckdb_tables
from tally.errors import WarehouseError
from tests.conftest import (
    ROOT,
    demo_warehouse_at,
    mariadb_reader_url,
    postgres_reader_url,
    require_service,
)

ENGINES = ["duckdb", "postgresql", "mysql"]
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

# Each engine's way to produce rows forever (or near enough) without storing them first:
# a client that buffered the result would hang until the timeout instead of finishing.
ENDLESS_SQL = {
    "duckdb": "SELECT range AS n FROM range(10000000000)",
    # A recursive CTE is evaluated lazily; generate_series would be materialised first.
    "postgresql": "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT n FROM t",
    # MariaDB's SEQUENCE engine streams; its recursive CTEs are materialised.
    "mysql": "SELECT seq AS n FROM seq_1_to_1000000000",
}
SLOW_SQL = {
    "duckdb": "SELECT count(*) FROM range(100000000) AS a, range(100000000) AS b",
    "postgresql": "SELECT pg_sleep(5)",
    "mysql": "SELECT SLEEP(5)",
}
# Five rows, the same on every engine, without any table.
FIVE_ROWS = " UNION ALL ".join(f"SELECT {i} AS n" for i in range(1, 6))

SAMPLES_SQL = """
CREATE TABLE samples (
    id BIGINT PRIMARY KEY,
    flag BOOLEAN,
    amount DECIMAL(12, 2),
    ratio DOUBLE,
    label VARCHAR,
    happened_at TIMESTAMP,
    happened_tz TIMESTAMPTZ,
    day DATE,
    payload JSON
);
INSERT INTO samples VALUES
    (1, true, 12.50, 0.1, 'plain', TIMESTAMP '2024-01-31 23:59:59.123456',
     TIMESTAMPTZ '2024-02-01 01:00:00.5+02', DATE '2024-02-29', '{"plan": "pro", "n": 1}'),
    (2, false, -0.01, -2.5e-7, '', TIMESTAMP '1999-12-31 00:00:00',
     TIMESTAMPTZ '1999-12-31 23:00:00-05', DATE '1970-01-01', '[]'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, true, 9999999999.99, 1e300, 'ünïcødé', TIMESTAMP '2038-01-19 03:14:08',
     TIMESTAMPTZ '2100-01-01 00:00:00+00', DATE '2100-12-31', '{"k": [1, 2.5, null]}');
"""


def unique_name() -> str:
    return f"tally_exec_{uuid.uuid4().hex[:12]}"


def server_config(
    engine: str, database: str, schemas: tuple[str, ...] = ("public",)
) -> WarehouseConfig:
    """The README's read-only role on ``database``: how Tally queries a server warehouse."""
    if engine == "postgresql":
        return parse_warehouse_url(postgres_reader_url(database, schemas), base_dir=ROOT)
    return parse_warehouse_url(mariadb_reader_url(database), base_dir=ROOT)


def admin_config(engine: str, database: str) -> WarehouseConfig:
    """The superuser, for loading data (the loader's admin connection)."""
    if engine == "postgresql":
        return WarehouseConfig(
            engine="postgresql",
            dialect="postgres",
            host="127.0.0.1",
            port=5432,
            user="postgres",
            database=database,
        )
    return WarehouseConfig(
        engine="mysql", dialect="mysql", host="127.0.0.1", port=3306, user="root", database=database
    )


def duckdb_config(path: Path | str) -> WarehouseConfig:
    return WarehouseConfig(engine="duckdb", dialect="duckdb", path=str(path))


@pytest.fixture
def engine_config(request: pytest.FixtureRequest, tmp_path: Path) -> WarehouseConfig:
    """A warehouse of the parametrised engine with no tables (server ones need no writes)."""
    engine = request.param
    if engine == "duckdb":
        duckdb.connect(str(tmp_path / "empty.duckdb")).close()
        return duckdb_config(tmp_path / "empty.duckdb")
    if engine == "postgresql":
        require_service("postgres")
        # No tables read: CONNECT only, nothing granted on the cluster's own database.
        return server_config(engine, "postgres", schemas=())
    require_service("mariadb")
    return server_config(engine, "test")


def per_engine() -> pytest.MarkDecorator:
    return pytest.mark.parametrize("engine_config", ENGINES, indirect=True)


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, WarehouseConfig]]:
    """One small demo warehouse plus ``samples`` in DuckDB, copied to PostgreSQL and MariaDB."""
    require_service("postgres")
    require_service("mariadb")
    path = tmp_path_factory.mktemp("execute") / "warehouse.duckdb"
    demo_warehouse_at(path, events=1_000, seed=3)
    con = duckdb.connect(str(path))
    try:
        con.execute(SAMPLES_SQL)
    finally:
        con.close()
    name = unique_name()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        configs = {"duckdb": duckdb_config(path)}
        for engine in ("postgresql", "mysql"):
            copy_duckdb_tables(path, admin_config(engine, name), tables=(*DEMO_TABLES, "samples"))
            configs[engine] = server_config(engine, name)
        yield configs
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- rows and columns ----------------------------------------------------------------------


@per_engine()
def test_execute_returns_named_columns_and_rows(engine_config: WarehouseConfig) -> None:
    """Guards the basic contract: column names and kinds, rows as tuples, counts, timing."""
    result = execute(
        engine_config,
        "SELECT 7 AS n, CAST(2.50 AS DECIMAL(12, 2)) AS amount, 'x' AS label, "
        "CAST('2024-02-29' AS DATE) AS day",
    )
    assert [c.name for c in result.columns] == ["n", "amount", "label", "day"]
    assert [c.kind for c in result.columns] == ["integer", "decimal", "text", "date"]
    assert result.rows == ((7, Decimal("2.50"), "x", date(2024, 2, 29)),)
    assert (result.row_count, result.truncated) == (1, False)
    assert result.elapsed_s > 0


@per_engine()
def test_execute_binds_parameters_in_the_driver_paramstyle(engine_config: WarehouseConfig) -> None:
    """Guards that params reach the driver (``?`` for DuckDB, ``%s`` for the servers)."""
    marker = "?" if engine_config.engine == "duckdb" else "%s"
    result = execute(engine_config, f"SELECT {marker} AS label", params=["it's"])
    assert result.rows == (("it's",),)


@per_engine()
def test_execute_accepts_a_trailing_semicolon(engine_config: WarehouseConfig) -> None:
    """Guards pasted SQL on PostgreSQL, where the query is wrapped in DECLARE … CURSOR FOR."""
    assert execute(engine_config, "SELECT 1 AS n;\n").rows == ((1,),)


@per_engine()
def test_percent_signs_in_sql_without_params_are_left_alone(engine_config: WarehouseConfig) -> None:
    """Guards LIKE patterns: with params=None the drivers must not %-format the SQL."""
    assert execute(engine_config, "SELECT 'a%b' LIKE 'a%' AS hit").rows[0][0] in (True, 1)


# --- streaming and the row cap -------------------------------------------------------------


@per_engine()
def test_stream_yields_small_batches_from_an_endless_result(
    engine_config: WarehouseConfig,
) -> None:
    """Guards real streaming (named cursor, SSCursor, DuckDB chunks): an endless query works."""
    engine = engine_config.engine
    # Buffering the whole (endless) result would end in the 20 s timeout's error instead.
    with stream(
        engine_config, ENDLESS_SQL[engine], row_cap=2_500, batch_size=1_000, timeout_s=20
    ) as (columns, batches):
        sizes = [len(batch) for batch in batches]
        first = columns[0].name
    assert first == "n"
    assert sizes == [1_000, 1_000, 500]
    assert batches.truncated and batches.row_count == 2_500


@per_engine()
def test_row_cap_sets_truncated_only_when_rows_were_cut_off(
    engine_config: WarehouseConfig,
) -> None:
    """Guards the cap's edge: exactly row_cap rows is complete, one more is truncated."""
    capped = execute(engine_config, FIVE_ROWS, row_cap=4)
    exact = execute(engine_config, FIVE_ROWS, row_cap=5)
    assert (capped.row_count, capped.truncated) == (4, True)
    assert (exact.row_count, exact.truncated) == (5, False)
    assert execute(engine_config, FIVE_ROWS, row_cap=0).truncated


@per_engine()
def test_stream_batches_cannot_be_read_after_the_block(engine_config: WarehouseConfig) -> None:
    """Guards against iterating a closed cursor: a clear error instead of a driver crash."""
    with stream(engine_config, FIVE_ROWS, batch_size=2) as (_, batches):
        next(batches)
    with pytest.raises(RuntimeError, match="the stream is closed"):
        next(batches)


@per_engine()
def test_an_error_in_the_consumer_propagates_unchanged(engine_config: WarehouseConfig) -> None:
    """Guards that only driver errors become WarehouseError; the caller's own errors pass through."""
    with pytest.raises(KeyError, match="mine"), stream(engine_config, FIVE_ROWS) as (_, batches):
        for _batch in batches:
            raise KeyError("mine")


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_leaving_a_mariadb_stream_early_does_not_read_the_rest() -> None:
    """Guards against SSCursor draining a billion unread rows (or erroring in __del__) on exit."""
    require_service("mariadb")
    config = server_config("mysql", "test")
    # A marker in the SQL finds this test's query on a server other tests share.
    marker = uuid.uuid4().hex
    # Draining the endless rest would never return (pytest's timeout would end the test).
    with stream(config, f"{ENDLESS_SQL['mysql']} /* {marker} */", batch_size=100) as (_, batches):
        next(batches)
    gc.collect()
    # The server notices the closed socket on its next write; give it a moment.
    running = (
        f"SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%/* {marker} */%'"
    )
    deadline = time.monotonic() + 3
    while (count := execute(config, running).rows[0][0]) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    # Only the PROCESSLIST query itself, whose text holds the marker too, is left.
    assert count == 1


# --- timeouts and errors -------------------------------------------------------------------


@per_engine()
def test_a_query_past_its_timeout_raises_warehouse_timeout(engine_config: WarehouseConfig) -> None:
    """Guards the per-engine cancel: statement_timeout, max_statement_time, DuckDB interrupt."""
    engine = engine_config.engine
    with pytest.raises(WarehouseError) as caught:
        execute(engine_config, SLOW_SQL[engine], timeout_s=1)
    error = caught.value
    assert error.code == "warehouse_timeout"
    assert error.message == TIMEOUT_MESSAGE.format(timeout_s=1)
    assert error.hint == TIMEOUT_HINT
    assert error.details["sql_hash"] == sql_hash(SLOW_SQL[engine])
    assert error.http_status == 502


@per_engine()
def test_a_slow_consumer_cannot_hold_the_cursor_past_the_timeout(
    engine_config: WarehouseConfig,
) -> None:
    """Guards the wall-clock deadline between batches (statement timeouts are per FETCH)."""
    with (
        pytest.raises(WarehouseError) as caught,
        stream(engine_config, FIVE_ROWS, batch_size=1, timeout_s=0.3) as (_, batches),
    ):
        for _batch in batches:
            time.sleep(0.35)
    assert caught.value.code == "warehouse_timeout"
    assert batches.row_count == 1


@per_engine()
def test_a_syntax_error_raises_warehouse_error_with_the_sql_hash(
    engine_config: WarehouseConfig,
) -> None:
    """Guards the error shape: driver's first line, dialect and SQL hash, never the SQL itself."""
    sql = "SELEC 1 FROM nowhere"
    with pytest.raises(WarehouseError) as caught:
        execute(engine_config, sql)
    error = caught.value
    assert error.code == "warehouse_error"
    assert error.details["dialect"] == engine_config.dialect
    assert error.details["sql_hash"] == sql_hash(sql)
    # The driver's first line is kept for the log and administrators; users read a code.
    raw = error.warehouse_message or ""
    assert "\n" not in raw and "syntax" in raw.lower()
    assert "DECLARE" not in raw  # the PostgreSQL cursor wrapper stays hidden
    assert "syntax" not in error.message and error.details["reference"] in error.message


@pytest.mark.parametrize("engine", ENGINES)
def test_an_unreachable_warehouse_raises_warehouse_unavailable(engine: str, tmp_path: Path) -> None:
    """Guards connect failures (refused port, missing DuckDB file) against a generic error."""
    if engine == "duckdb":
        config = duckdb_config(tmp_path / "missing.duckdb")
    else:
        config = WarehouseConfig(
            engine=engine, dialect=engine, host="127.0.0.1", port=1, user="x", database="x"
        )
    with pytest.raises(WarehouseError) as caught:
        execute(config, "SELECT 1")
    assert caught.value.code == "warehouse_unavailable"
    assert caught.value.hint


# --- DuckDB files --------------------------------------------------------------------------


def test_duckdb_reuses_a_file_this_process_holds_open_read_write(tmp_path: Path) -> None:
    """Guards the in-process case (demo server, jobs): no 'different configuration' error
    while Tally's own read-write connection (the time spine writer's) holds the file."""
    path = tmp_path / "held.duckdb"
    holder = duckdb_user_connect(str(path), read_only=False)
    try:
        holder.execute("CREATE TABLE t AS SELECT 41 + 1 AS answer")
        assert execute(duckdb_config(path), "SELECT answer FROM t").rows == ((42,),)
        # The holder keeps working afterwards: we closed only our own connection.
        assert holder.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
    finally:
        holder.close()


def test_duckdb_refuses_a_file_this_process_holds_open_without_restrictions(
    tmp_path: Path,
) -> None:
    """Fail closed (issue 18): a query never shares an instance that can read files."""
    path = tmp_path / "open.duckdb"
    holder = duckdb.connect(str(path))
    try:
        with pytest.raises(WarehouseError) as caught:
            execute(duckdb_config(path), "SELECT 1")
        assert caught.value.code == "warehouse_unavailable"
    finally:
        holder.close()


def test_duckdb_opens_files_read_only_when_nobody_holds_them(tmp_path: Path) -> None:
    """Guards that queries cannot write to the warehouse file and other processes can read it."""
    path = tmp_path / "ro.duckdb"
    duckdb.connect(str(path)).close()
    with pytest.raises(WarehouseError) as caught:
        execute(duckdb_config(path), "CREATE TABLE t AS SELECT 1 AS x")
    assert caught.value.code == "warehouse_error"
    assert "read-only" in (caught.value.warehouse_message or "")


def test_duckdb_sessions_run_in_utc() -> None:
    """Guards that timestamptz values and date_trunc agree across engines (UTC everywhere)."""
    memory = duckdb_config(":memory:")
    result = execute(memory, "SELECT TIMESTAMPTZ '2024-01-01 00:30:00+02' AS at")
    assert result.rows == ((datetime(2023, 12, 31, 22, 30),),)


# --- normalisation across engines ----------------------------------------------------------


def test_values_are_normalised_identically_on_all_three_engines(
    warehouses: dict[str, WarehouseConfig],
) -> None:
    """Guards the cross-engine contract: bool, Decimal, date, naive UTC datetime, text."""
    sql = "SELECT id, flag, amount, label, happened_at, happened_tz, day FROM samples ORDER BY id"
    results = {engine: execute(config, sql) for engine, config in warehouses.items()}
    expected = results["duckdb"].rows
    assert expected[0] == (
        1,
        True,
        Decimal("12.50"),
        "plain",
        datetime(2024, 1, 31, 23, 59, 59, 123456),
        datetime(2024, 1, 31, 23, 0, 0, 500000),
        date(2024, 2, 29),
    )
    for engine, result in results.items():
        assert result.rows == expected, engine
        assert result.columns[1].kind == "boolean", engine
        assert all(type(row[1]) is bool for row in result.rows if row[1] is not None), engine


def test_aggregates_compare_equal_after_normalize_rows_for_compare(
    warehouses: dict[str, WarehouseConfig],
) -> None:
    """Guards comparisons of sums, averages and doubles whose Python types differ by engine."""
    # MariaDB's avg(decimal) keeps only 4 more decimals (div_precision_increment), so it
    # differs from the others at the 8th significant digit; round(…, 4) makes the query portable.
    sql = (
        "SELECT account_id, count(*) AS n, sum(user_id) AS id_sum, "
        "round(avg(revenue), 4) AS avg_revenue, "
        "sum(revenue) AS revenue, min(occurred_at) AS first_at, "
        "CAST(min(occurred_at) AS DATE) AS first_day FROM events "
        "GROUP BY account_id ORDER BY account_id"
    )
    rows = {engine: execute(config, sql).rows for engine, config in warehouses.items()}
    # The raw types differ (sum(bigint) is an int on DuckDB, a Decimal elsewhere)...
    assert isinstance(rows["duckdb"][0][2], int)
    assert isinstance(rows["postgresql"][0][2], Decimal)
    # ...and normalisation makes them comparable.
    canonical = {engine: normalize_rows_for_compare(r) for engine, r in rows.items()}
    assert canonical["postgresql"] == canonical["duckdb"]
    assert canonical["mysql"] == canonical["duckdb"]
    doubles = "SELECT ratio FROM samples ORDER BY id"
    ratios = {
        e: normalize_rows_for_compare(execute(c, doubles).rows) for e, c in warehouses.items()
    }
    assert ratios["postgresql"] == ratios["duckdb"] == ratios["mysql"]


def test_json_comes_back_as_text_that_parses_equal_everywhere(
    warehouses: dict[str, WarehouseConfig],
) -> None:
    """Guards JSON as str on every engine (jsonb re-renders it, so compare parsed values)."""
    sql = "SELECT payload FROM samples ORDER BY id"
    parsed = {}
    for engine, config in warehouses.items():
        values = [value for (value,) in execute(config, sql).rows]
        assert all(v is None or isinstance(v, str) for v in values), engine
        parsed[engine] = [None if v is None else json.loads(v) for v in values]
    assert parsed["duckdb"][0] == {"plan": "pro", "n": 1}
    assert parsed["postgresql"] == parsed["duckdb"] == parsed["mysql"]


def test_mysql_boolean_expressions_stay_integers() -> None:
    """Guards the documented quirk: no guessing on integer columns, only on TINYINT(1) ones."""
    require_service("mariadb")
    result = execute(server_config("mysql", "test"), "SELECT 1 = 1 AS yes, 7 AS n")
    assert result.rows == ((1, 7),)
    assert [c.kind for c in result.columns] == ["integer", "integer"]


def test_mysql_time_of_day_becomes_a_time() -> None:
    """Guards PyMySQL's timedelta for TIME: a time of day reads as datetime.time like elsewhere."""
    require_service("mariadb")
    result = execute(
        server_config("mysql", "test"),
        "SELECT CAST('01:02:03' AS TIME) AS t, CAST('30:00:00' AS TIME) AS duration",
    )
    assert result.rows[0][0] == dt_time(1, 2, 3)
    assert result.rows[0][1].total_seconds() == 30 * 3600


# --- normalize_rows_for_compare ------------------------------------------------------------


def test_normalize_rows_for_compare_rounds_to_significant_digits() -> None:
    """Guards the canonical form: Decimal, float and int agree to 10 significant digits."""
    assert normalize_rows_for_compare([(Decimal("0.30"), 0.1 + 0.2, 12345678901)]) == (
        (0.3, 0.3, 12345678900.0),
    )
    assert normalize_rows_for_compare([(1.23456,)], float_digits=3) == ((1.23,),)


def test_normalize_rows_for_compare_folds_negative_zero_and_keeps_nan() -> None:
    """Guards -0.0 == 0.0 and NaN rows comparing equal (same NaN object in both)."""
    left = normalize_rows_for_compare([(-0.0, float("nan"))])
    right = normalize_rows_for_compare([(Decimal("0"), Decimal("NaN"))])
    assert left == right
    assert str(left[0][0]) == "0.0"
    assert left[0][1] != left[0][1]  # still a NaN


def test_normalize_rows_for_compare_leaves_bools_and_other_values_alone() -> None:
    """Guards that True does not become 1.0 and non-numbers pass through unchanged."""
    row = (True, None, "3.50", date(2024, 1, 1))
    assert normalize_rows_for_compare([row]) == (row,)
