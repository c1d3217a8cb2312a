"""CancelScope: another thread interrupts a running stream() (the SQL API's CancelRequest)."""

from __future__ import annotations

import threading
import time

import pytest

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import CancelScope, stream
from tally.errors import WarehouseError

MEMORY = WarehouseConfig(engine="duckdb", dialect="duckdb", path=":memory:")


def test_cancel_interrupts_a_running_duckdb_query() -> None:
    """A slow query stops within seconds of cancel(), and requested tells why it failed."""
    scope = CancelScope()
    threading.Timer(0.3, scope.cancel).start()
    started = time.monotonic()
    with (
        pytest.raises(WarehouseError),
        stream(
            MEMORY, "SELECT count(*) FROM range(100000000000) AS t(i)", timeout_s=60, cancel=scope
        ) as (_columns, batches),
    ):
        list(batches)
    assert scope.requested and time.monotonic() - started < 20


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
