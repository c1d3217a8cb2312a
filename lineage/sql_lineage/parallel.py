"""A project's models extracted in several processes (Linux ``fork``), with the serial result.

Worker ``w`` of ``n`` owns the models at input positions ``w, w + n, …`` and keeps their syntax
trees: it parses them (sending back only what ordering needs), then extracts its share of each
level (see ``ordering.levels``), learning before each level what the other workers' models of
the levels before told the book. The calling process is worker 0, so two workers fork one
child. Edges and issues are put back in the serial order, and the caller's book is brought to
the serial end state by replaying every model's changes in that order.

Children only compute: they inherit the parent's memory (Django, open database connections
and all) but touch none of it, and leave by ``os._exit`` so that no ``atexit`` handler,
finaliser or buffered file of the parent runs twice. A worker that fails or vanishes makes the
whole project run serially instead, where any error surfaces as it always did.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
from collections.abc import Sequence
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from lineage.sql_lineage.book import BookChange, SchemaBook
from lineage.sql_lineage.edges import ColumnEdge
from lineage.sql_lineage.ordering import (
    ModelResult,
    ModelScan,
    SqlModel,
    dependency_order,
    levels,
    model_extract,
    model_scan,
)
from lineage.sql_lineage.script import StatementIssue

MAX_WORKERS = 4
# Fewer models than this are extracted in one process: forking and sending edges back cost
# a few milliseconds, about what one model's extraction costs.
MIN_PARALLEL_MODELS = 24
log = logging.getLogger(__name__)


class WorkerLost(Exception):
    """A worker process failed or vanished; the caller runs the project serially."""


def usable_workers(requested: int | None, models: int) -> int:
    """The worker count for ``models`` models: ``requested`` as given, else the CPUs this
    process may use (at most MAX_WORKERS) when the project is large enough to pay for it."""
    if not hasattr(os, "fork"):
        return 1
    if requested is not None:
        return max(1, requested)
    if models < MIN_PARALLEL_MODELS:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


class _Share:
    """One worker's models, their parse trees, and its own copy of the book."""

    def __init__(self, models: Sequence[SqlModel], owned: list[int], book: SchemaBook,
                 dialect: str, default_schema: str) -> None:  # fmt: skip
        self.models = models
        self.owned = owned
        self.book = book
        self.dialect = dialect
        self.default_schema = default_schema
        self.scans: dict[int, ModelScan] = {}

    def scan(self) -> dict[int, ModelScan]:
        for i in self.owned:
            self.scans[i] = model_scan(self.models[i], self.dialect)
        return {i: scan.shareable() for i, scan in self.scans.items()}

    def extract(self, indices: list[int], changes: list[BookChange]) -> dict[int, ModelResult]:
        self.book.replay(changes)
        return {
            i: model_extract(self.models[i], self.scans[i].parsed, book=self.book,
                             dialect=self.dialect, default_schema=self.default_schema)
            for i in indices
        }  # fmt: skip


# A model's result as a child sends it: its edges as plain tuples (a third of the pickling
# cost of the objects, and the parent waits for it at the end of every level).
_Packed = dict[int, tuple[list[tuple[Any, ...]], list[StatementIssue], list[BookChange]]]


def _packed(results: dict[int, ModelResult]) -> _Packed:
    return {
        i: ([(e.source_table, e.source_column, e.target_table, e.target_column, e.subtype,
              e.transformation, e.expr, e.model) for e in result.edges],
            result.issues, result.changes)
        for i, result in results.items()
    }  # fmt: skip


def _unpacked(packed: _Packed) -> dict[int, ModelResult]:
    return {
        i: ModelResult([ColumnEdge(*edge) for edge in edges], issues, changes)
        for i, (edges, issues, changes) in packed.items()
    }


def _child(conn: Connection, share: _Share) -> NoReturn:
    code = 0
    try:
        # A terminal's Ctrl-C or a supervisor's TERM reaches the child too: end it plainly,
        # not through the parent's handlers (Celery's, Django's).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.send(("ok", share.scan()))
        while (message := conn.recv()) is not None:
            conn.send(("ok", _packed(share.extract(*message))))
    except BaseException as exc:  # reported to the parent, which then runs serially
        code = 1
        # If even this fails, the parent sees the pipe close instead.
        with contextlib.suppress(BaseException):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        os._exit(code)


def _receive(conn: Connection) -> Any:
    try:
        status, payload = conn.recv()
    except (EOFError, OSError) as exc:
        raise WorkerLost(f"a lineage worker vanished ({exc!r})") from exc
    if status != "ok":
        raise WorkerLost(f"a lineage worker failed: {payload}")
    return payload


def parallel_lineage(
    models: Sequence[SqlModel], *, book: SchemaBook, dialect: str, default_schema: str,
    workers: int,
) -> tuple[list[ColumnEdge], list[StatementIssue]]:  # fmt: skip
    """The edges and issues serial extraction gives, from ``workers`` processes; ``book`` ends
    as serial extraction leaves it.

    Raises:
        WorkerLost: a child failed or could not be started (``book`` is then untouched).
    """
    work = book.copy()
    work.schema_for(dialect)  # built once here, inherited by every child
    owned = [list(range(w, len(models), workers)) for w in range(workers)]
    children: list[tuple[int, Connection]] = []
    done = False
    # Frozen, the inherited objects stay unwritten by the children's collector; a host that
    # froze its own (a pre-forking server) keeps them frozen: unfreeze would thaw those too.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    try:
        for w in range(1, workers):
            parent_end, child_end = Pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                parent_end.close()
                for _, other in children:
                    other.close()
                _child(child_end, _Share(models, owned[w], work, dialect, default_schema))
            child_end.close()
            children.append((pid, parent_end))
        if freeze:
            gc.unfreeze()
        mine = _Share(models, owned[0], work, dialect, default_schema)
        scans = mine.scan()
        for _, conn in children:
            scans.update(_receive(conn))
        scan_list = [scans[i] for i in range(len(models))]
        order = dependency_order(models, scan_list)
        results: dict[int, ModelResult] = {}
        # Per worker, the changes other workers' models made that it has not applied yet.
        unseen: list[list[BookChange]] = [[] for _ in range(workers)]
        for level in levels(order, scan_list, work):
            shares = [[i for i in level if i % workers == w] for w in range(workers)]
            busy = []
            for w, (_, conn) in enumerate(children, start=1):
                if shares[w]:
                    conn.send((shares[w], unseen[w]))
                    unseen[w] = []
                    busy.append(conn)
            results.update(mine.extract(shares[0], unseen[0]))
            unseen[0] = []
            for conn in busy:
                results.update(_unpacked(_receive(conn)))
            for i in level:
                for w in range(workers):
                    if i % workers != w:
                        unseen[w].extend(results[i].changes)
        for _, conn in children:
            conn.send(None)
        done = True
    except OSError as exc:
        raise WorkerLost(f"could not run lineage workers ({exc!r})") from exc
    finally:
        if freeze:
            gc.unfreeze()
        for pid, conn in children:
            conn.close()
            if not done:
                os.kill(pid, signal.SIGKILL)
            # ChildProcessError: already reaped by a SIGCHLD handler of the host process.
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    book.replay(change for i in order for change in results[i].changes)
    if order:
        last = models[order[-1]]
        book.default_schema = (last.schema or default_schema).lower()
        book.default_database = last.database
    edges = [edge for i in order for edge in results[i].edges]
    issues = [issue for i in range(len(models)) for issue in scans[i].issues]
    issues += [issue for i in order for issue in results[i].issues]
    return edges, issues
