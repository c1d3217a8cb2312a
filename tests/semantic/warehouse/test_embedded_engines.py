"""ClickHouse (chdb) and Spark as warehouses: URLs, least privilege, timeouts and cancel
(issue 20). Rows equal to DuckDB's are tests/integration/test_engines_embedded.py.

chdb serves one data directory per process, so every chdb test here uses the session's
``chdb_warehouse`` (tests/conftest.py).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from semantic.warehouse.config import WarehouseURLError, parse_warehouse_url
from semantic.warehouse.connections import connect, warehouse_ping
from semantic.warehouse.execute import CancelScope, execute, stream
from tally.errors import WarehouseError

BASE = Path("/srv/tally")
# Runs until stopped: every row of an endless table, counted.
ENDLESS = "SELECT count() FROM system.numbers"


@pytest.mark.parametrize(
    ("url", "engine", "dialect", "where"),
    [
        ("chdb:///var/warehouse.chdb", "chdb", "clickhouse", "/srv/tally/var/warehouse.chdb"),
        ("chdb:////data/ch", "chdb", "clickhouse", "/data/ch"),
        (
            "clickhouse://ro:pw@ch.internal/analytics",
            "clickhouse",
            "clickhouse",
            "ch.internal:8123",
        ),
        ("spark:///var/warehouse.spark", "spark", "spark", "/srv/tally/var/warehouse.spark"),
        ("sc://spark.internal:15002", "spark", "spark", "spark.internal:15002"),
        ("spark://spark.internal", "spark", "spark", "spark.internal:15002"),
    ],
)
def test_urls_of_the_new_engines(url: str, engine: str, dialect: str, where: str) -> None:
    config = parse_warehouse_url(url, base_dir=BASE)
    assert (config.engine, config.dialect) == (engine, dialect)
    if config.host is None:
        assert config.path == where and config.embedded
    else:
        assert f"{config.host}:{config.port}" == where and not config.embedded
        assert "pw" not in config.display_url


def test_a_chdb_url_with_a_host_is_refused_with_a_hint() -> None:
    with pytest.raises(WarehouseURLError) as info:
        parse_warehouse_url("chdb://somehost/data", base_dir=BASE)
    assert "chdb:///" in str(info.value)


def test_missing_chdb_directory_is_unavailable(tmp_path: Path) -> None:
    config = parse_warehouse_url(f"chdb:///{tmp_path / 'nothing'}", base_dir=BASE)
    with pytest.raises(WarehouseError) as info:
        execute(config, "SELECT 1")
    assert info.value.code == "warehouse_unavailable"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/hostname', LineAsString)",
        "SELECT * FROM url('http://127.0.0.1:9/x', CSV, 'a String')",
        "INSERT INTO main.accounts SELECT * FROM main.accounts LIMIT 1",
        "DROP TABLE main.accounts",
        "SELECT 1 SETTINGS join_use_nulls = 0",
    ],
)
def test_chdb_user_connections_are_read_only(chdb_warehouse: Any, sql: str) -> None:
    """No file or network reads, no writes, no DDL, no weakening Tally's settings."""
    with pytest.raises(WarehouseError) as info:
        execute(chdb_warehouse, sql)
    assert info.value.code == "warehouse_error"
    assert execute(chdb_warehouse, "SELECT count() FROM main.accounts").rows[0][0] > 0


def test_chdb_runs_in_utc_with_sql_null_outer_joins(chdb_warehouse: Any) -> None:
    result = execute(
        chdb_warehouse,
        "SELECT timezone() AS tz, b.id AS missing FROM (SELECT 1 AS id) AS a "
        "LEFT JOIN (SELECT 2 AS id) AS b ON a.id = b.id",
    )
    assert result.rows == (("UTC", None),)


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_chdb_queries_reuse_their_connections(chdb_warehouse: Any) -> None:
    """Bug (CI): chdb leaves ~9 descriptors and 5 threads behind for every connection it
    closes, so one connection per query took an xdist worker past 1,024 descriptors. A query
    whose result was read to the end hands its connection to the next one, from any thread."""
    query = "SELECT count() FROM main.accounts"
    expected = execute(chdb_warehouse, query).rows
    before = _descriptors()
    for _ in range(10):
        assert execute(chdb_warehouse, query).rows == expected
    for _ in range(10):
        worker = threading.Thread(target=execute, args=(chdb_warehouse, query))
        worker.start()
        worker.join()
    # One connection per query grew this by ~50 here; reused connections by a few at most.
    assert _descriptors() - before < 20


def test_chdb_binds_the_salt_as_a_parameter(chdb_warehouse: Any) -> None:
    result = execute(
        chdb_warehouse,
        "SELECT {tally_pii_salt:String} AS salt",
        variables={"tally_pii_salt": "s'1"},
    )
    assert result.rows == (("s'1",),)


def test_chdb_query_past_its_timeout_is_cancelled(chdb_warehouse: Any) -> None:
    with pytest.raises(WarehouseError) as info:
        execute(chdb_warehouse, ENDLESS, timeout_s=0.5)
    assert info.value.code == "warehouse_timeout"


def test_chdb_cancel_interrupts_a_running_query(chdb_warehouse: Any) -> None:
    scope = CancelScope()
    started = threading.Event()

    def cancel_when_started() -> None:
        started.wait(30)
        scope.cancel()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    with (
        pytest.raises(WarehouseError),
        stream(
            chdb_warehouse, "SELECT number FROM system.numbers", timeout_s=120, cancel=scope
        ) as (_columns, batches),
    ):
        for _ in batches:
            started.set()
    assert scope.requested


def test_chdb_streams_in_batches(chdb_warehouse: Any) -> None:
    with stream(chdb_warehouse, "SELECT number AS n FROM numbers(25000)", batch_size=10_000) as (
        columns,
        batches,
    ):
        sizes = [len(batch) for batch in batches]
    assert [c.name for c in columns] == ["n"] and sizes == [10_000, 10_000, 5_000]


def test_chdb_ping_and_connect(chdb_warehouse: Any) -> None:
    warehouse_ping(chdb_warehouse)
    conn = connect(chdb_warehouse)
    conn.close()
