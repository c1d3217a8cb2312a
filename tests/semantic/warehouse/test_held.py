"""HeldDuckDB: the SQL API keeps a DuckDB warehouse file open between queries, each query
on a cursor of its own. A cancelled or timed-out query must leave it usable and clean, and
no session state (the PII salt variable) may pass from one query to the next."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import CancelScope, stream
from semantic.warehouse.held import HeldDuckDB, held_release
from semantic.warehouse.writer import Writer
from tally.errors import WarehouseError

SLOW = "SELECT count(*) FROM range(100000000000) AS t(i)"
SALT = "SELECT getvariable('tally_pii_salt') AS salt"


@pytest.fixture
def warehouse(tmp_path: Path) -> WarehouseConfig:
    path = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t AS SELECT i, i % 2 AS tenant FROM range(10) AS r(i)")
    con.close()
    return WarehouseConfig(engine="duckdb", dialect="duckdb", path=str(path))


def rows(config: WarehouseConfig, held: HeldDuckDB, sql: str, **kwargs: object) -> list[tuple]:
    with stream(config, sql, held=held, **kwargs) as (_columns, batches):  # type: ignore[arg-type]
        return [row for batch in batches for row in batch]


def test_queries_share_one_opening_and_each_has_its_own_variables(
    warehouse: WarehouseConfig,
) -> None:
    """Two principals' queries, interleaved on the held database, each read their own salt;
    a query binding none reads none (a cursor's variables end with it)."""
    assert warehouse.path is not None
    held = HeldDuckDB(warehouse.path, idle_s=60)
    with (
        stream(warehouse, SALT, held=held, variables={"tally_pii_salt": "tenant-a"}) as (_c, a),
        stream(warehouse, SALT, held=held, variables={"tally_pii_salt": "tenant-b"}) as (_c, b),
    ):
        assert list(b) == [(("tenant-b",),)]
        assert list(a) == [(("tenant-a",),)]
    assert rows(warehouse, held, SALT) == [(None,)]
    assert rows(warehouse, held, "SELECT count(*) FROM t WHERE tenant = 1") == [(5,)]
    assert held.opened == 1
    # Still least privilege: no file reads, and the configuration cannot be unlocked.
    with pytest.raises(WarehouseError):
        rows(warehouse, held, "SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(WarehouseError):
        rows(warehouse, held, "SET enable_external_access = true")
    assert held.opened == 1


def test_a_cancelled_query_leaves_the_held_database_usable_and_clean(
    warehouse: WarehouseConfig,
) -> None:
    assert warehouse.path is not None
    held = HeldDuckDB(warehouse.path, idle_s=60)
    scope = CancelScope()
    # Whenever the cancel lands (before or during the scan), the query ends cancelled.
    threading.Timer(0.3, scope.cancel).start()
    with pytest.raises(WarehouseError):
        rows(warehouse, held, SLOW, cancel=scope, variables={"tally_pii_salt": "secret"})
    assert scope.requested
    assert rows(warehouse, held, SALT) == [(None,)]
    assert rows(warehouse, held, "SELECT count(*) FROM t") == [(10,)]
    assert held.opened == 1


def test_a_timed_out_query_leaves_the_held_database_usable(warehouse: WarehouseConfig) -> None:
    assert warehouse.path is not None
    held = HeldDuckDB(warehouse.path, idle_s=60)
    with pytest.raises(WarehouseError) as caught:
        rows(warehouse, held, SLOW, timeout_s=0.3)
    assert caught.value.code == "warehouse_timeout"
    assert rows(warehouse, held, "SELECT count(*) FROM t") == [(10,)]
    assert held.opened == 1


def test_this_process_can_still_write_the_file(warehouse: WarehouseConfig) -> None:
    """A held read-only database would refuse this process's read-write connection (the
    time spine build): the writer lets go of it first, and the next query opens it again."""
    assert warehouse.path is not None
    held = HeldDuckDB(warehouse.path, idle_s=60)
    assert rows(warehouse, held, "SELECT count(*) FROM t") == [(10,)]
    writer = Writer(warehouse)
    try:
        writer.cursor.execute("INSERT INTO t VALUES (10, 0)")
    finally:
        writer.close()
    assert rows(warehouse, held, "SELECT count(*) FROM t") == [(11,)]
    assert held.opened == 2


def test_an_idle_database_is_closed_for_other_processes(warehouse: WarehouseConfig) -> None:
    """Past idle_s without a query the file is let go (another process may write it); a
    release while a query runs keeps the database for it."""
    assert warehouse.path is not None
    held = HeldDuckDB(warehouse.path, idle_s=0.05)
    with stream(warehouse, "SELECT 1", held=held) as (_columns, batches):
        assert not held.release() and held.is_open
        assert list(batches) == [((1,),)]
    deadline = time.monotonic() + 60  # the reaper's turn; a bound, not a timing assertion
    while held.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not held.is_open
    con = duckdb.connect(warehouse.path)  # read-write: nothing of this process holds it
    con.close()
    assert rows(warehouse, held, "SELECT count(*) FROM t") == [(10,)]
    assert held.opened == 2
    held_release(warehouse.path)
    assert not held.is_open
