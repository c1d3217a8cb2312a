"""The SQL API's execution pool: a fixed number of warehouse executions, a bounded queue.

Every metric query holds one slot while it streams (DuckDB's scan, the warehouse
connection, one batch of rows at a time), so memory grows with the slots, not with the
connections: 200 idle or waiting connections cost threads and sockets, not scans. A query
that finds the queue full is refused at once (53300, as PostgreSQL refuses past
max_connections); one that waits longer than the wait bound is canceled (57014). Both are
errors of the statement: the session goes on.

On a DuckDB warehouse file the pool also holds the file open between queries
(``warehouse``, semantic.warehouse.held): each execution runs on a cursor of its own (its own
session variables and interrupt), without paying the file's opening every time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from semantic.sqlapi.session import QUERY_CANCELED, TOO_MANY_CONNECTIONS, SqlError
from semantic.warehouse.held import HeldDuckDB
from tally.metrics import SQL_EXECUTIONS, SQL_EXECUTIONS_PEAK, SQL_REFUSED

MSG_QUEUE_FULL = "too many queries waiting: {waiting} queries wait for {slots} execution slots"
HINT_QUEUE_FULL = "retry shortly; the operator can raise TALLY_SQL_EXEC_QUEUE or _SLOTS"
MSG_WAITED = "canceling statement: it waited {wait_s:g}s for an execution slot"
HINT_WAITED = "the server is busy; retry, or ask the operator about TALLY_SQL_EXEC_SLOTS"


class ExecutionPool:
    """``slots`` executions at once; at most ``queue`` more wait, each up to ``wait_s``."""

    def __init__(
        self, *, slots: int, queue: int, wait_s: float, warehouse: HeldDuckDB | None = None
    ) -> None:
        self.slots, self.queue, self.wait_s = slots, queue, wait_s
        self.warehouse = warehouse
        self._free = threading.BoundedSemaphore(slots)
        self._lock = threading.Lock()
        self.running = 0
        self.waiting = 0
        self.peak = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Holds one execution slot for the block; raises SqlError 53300 or 57014."""
        with self._lock:
            if self.running >= self.slots and self.waiting >= self.queue:
                SQL_REFUSED.labels(TOO_MANY_CONNECTIONS).inc()
                raise SqlError(
                    TOO_MANY_CONNECTIONS,
                    MSG_QUEUE_FULL.format(waiting=self.waiting, slots=self.slots),
                    HINT_QUEUE_FULL,
                )
            self.waiting += 1
            SQL_EXECUTIONS.labels("waiting").set(self.waiting)
        try:
            acquired = self._free.acquire(timeout=self.wait_s)
        finally:
            with self._lock:
                self.waiting -= 1
                SQL_EXECUTIONS.labels("waiting").set(self.waiting)
        if not acquired:
            SQL_REFUSED.labels(QUERY_CANCELED).inc()
            raise SqlError(QUERY_CANCELED, MSG_WAITED.format(wait_s=self.wait_s), HINT_WAITED)
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            SQL_EXECUTIONS.labels("running").set(self.running)
            SQL_EXECUTIONS_PEAK.set(self.peak)
        try:
            yield
        finally:
            with self._lock:
                self.running -= 1
                SQL_EXECUTIONS.labels("running").set(self.running)
            self._free.release()
