"""CancelScope: another thread interrupts a running stream() (the SQL API's CancelRequest)."""

from __future__ import annotations

import threading

import pytest

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import CancelScope, stream
from tally.errors import WarehouseError

MEMORY = WarehouseConfig(engine="duckdb", dialect="duckdb", path=":memory:")


def test_cancel_interrupts_a_running_duckdb_query() -> None:
    """A query that would run for hours stops on cancel(), and requested tells why it failed
    (whether the cancel lands before or during the scan: the outcome is the same)."""
    scope = CancelScope()
    threading.Timer(0.3, scope.cancel).start()
    with (
        pytest.raises(WarehouseError),
        stream(
            MEMORY, "SELECT count(*) FROM range(100000000000) AS t(i)", timeout_s=60, cancel=scope
        ) as (_columns, batches),
    ):
        list(batches)
    assert scope.requested


def test_cancel_before_start_interrupts_at_once() -> None:
    scope = CancelScope()
    scope.cancel()
    with (
        pytest.raises(WarehouseError),
        stream(
            MEMORY, "SELECT count(*) FROM range(100000000000) AS t(i)", timeout_s=60, cancel=scope
        ) as (_columns, batches),
    ):
        list(batches)
