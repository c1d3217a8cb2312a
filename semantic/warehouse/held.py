"""A DuckDB warehouse file kept open between queries, for a server that runs many.

Opening a DuckDB file reads its catalog: about 20 ms of CPU, more than a small query's scan.
:class:`HeldDuckDB` opens the file once (least privilege, as every user connection:
``open_duckdb``) and gives each query its own ``cursor()``, a new DuckDB connection to the
same database instance (microseconds). A cursor has its own session: its ``SET VARIABLE``
values (the PII salt) and its transaction are invisible to the others, ``interrupt()``
stops its query only, and closing it leaves the database open. The restrictions (no
external access, configuration locked, UTC) are the database's, so every cursor has them.

The file is not held for good: while it is held, no other process can open it read-write
(DuckDB locks the file), and a file replaced on disk would go unseen. So the database is
closed once no query has used it for ``idle_s`` seconds, and opened again when the file
on disk is no longer the one that was opened; :func:`held_release` lets this process's own
writers (the time spine build) have the file.

This module is Django-free.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from contextlib import suppress
from typing import Any

from semantic.warehouse.sessions import open_duckdb

__all__ = ["HeldDuckDB", "held_release"]

_all: weakref.WeakSet[HeldDuckDB] = weakref.WeakSet()


def _identity(path: str) -> tuple[int, int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class HeldDuckDB:
    """One DuckDB file held open; a cursor per query (see the module docstring).

    Attributes:
        opened: how many times the file was opened (tests and /metrics read it).
    """

    def __init__(self, path: str, *, idle_s: float) -> None:
        if path == ":memory:":
            raise ValueError("an in-memory DuckDB is a new database per connection: not held")
        self.path = path
        self.idle_s = idle_s
        self.opened = 0
        self._lock = threading.Condition()
        self._base: Any = None
        self._identity: tuple[int, int, int, int] | None = None
        self._in_use = 0
        self._last_used = 0.0
        _all.add(self)

    @property
    def is_open(self) -> bool:
        """Whether the file is open now."""
        return self._base is not None

    def cursor(self) -> Any:
        """A new DuckDB connection on the held database (opened when needed); the caller
        closes it and then calls :meth:`done`.

        Raises:
            WarehouseUnavailable: the file cannot be opened (see ``open_duckdb``).
        """
        with self._lock:
            identity = _identity(self.path)
            if self._base is not None and identity != self._identity and not self._in_use:
                # The file was replaced (or rewritten) since it was opened: read the new one.
                self._close_base()
            if self._base is None:
                self._base = open_duckdb(self.path)
                self._identity = identity
                self.opened += 1
                threading.Thread(target=self._reap, name="duckdb-held-reaper", daemon=True).start()
            cursor = self._base.cursor()
            self._in_use += 1
            return cursor

    def done(self) -> None:
        """A cursor from :meth:`cursor` was closed."""
        with self._lock:
            self._in_use -= 1
            self._last_used = time.monotonic()

    def release(self) -> bool:
        """Closes the database now unless a query is using it; whether it is closed."""
        with self._lock:
            if self._in_use:
                return False
            self._close_base()
            return True

    def _close_base(self) -> None:
        base, self._base = self._base, None
        if base is not None:
            with suppress(Exception):
                base.close()
            self._lock.notify_all()  # the reaper of this opening ends

    def _reap(self) -> None:
        # One reaper per opening: it closes the database once idle, then ends.
        with self._lock:
            base = self._base
            while self._base is base and base is not None:
                self._lock.wait(self.idle_s)
                if self._base is not base:
                    return
                idle = time.monotonic() - self._last_used
                if not self._in_use and idle >= self.idle_s:
                    self._close_base()
                    return


def held_release(path: str) -> None:
    """Lets this process open ``path`` read-write: every held database of it that no query
    is using is closed (a query running on it keeps it, as a query would without holding)."""
    for held in list(_all):
        if held.path == path:
            held.release()
