"""Tally's time spine on Spark local: a new Parquet directory per build, swapped in atomically.

Spark's Parquet tables have neither transactions nor ``CREATE OR REPLACE``, and a local
warehouse registers each directory ``<dir>/<database>/<table>`` when its session starts
(semantic.warehouse.engine_open). So ``<dir>/<database>/tally_time_spine`` is a symlink to a
generation directory ``_tally_time_spine.<id>`` (a leading underscore: never registered as a
table of its own), and a build

    1. has Spark write the days into a new generation directory;
    2. replaces the symlink with a new one in one rename (atomic on POSIX), so a session
       started later registers the new generation;
    3. points this process's catalog at the new generation in one step.

A reader sees the old spine or the new one, never a half-written directory. The previous
generation is kept, so a query planned before the swap still finds its files; older ones
are removed. A local session of another process reads the generation it registered at its
start until it restarts (as it does for tables reloaded by ``tally demo``).

This module is Django-free.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any

from sqlglot import exp

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.engine_open import spark_session, spark_table_locate
from tally.errors import WarehouseError

__all__ = ["spark_spine_replace"]

logger = logging.getLogger("tally.time_spine")

MSG_SPARK_WRITE = "cannot write the time spine {table} under {path}: {reason}"
# One build at a time in this process: a build removes the generations it does not keep.
_BUILD_LOCK = threading.Lock()


def spark_spine_replace(
    config: WarehouseConfig, relation: tuple[str | None, str, str], days: exp.Select
) -> None:
    """Makes ``relation`` hold exactly the rows of ``days``, swapped in atomically.

    Raises:
        WarehouseError: Spark or the file system refused a step (the old spine stays).
    """
    assert config.path is not None  # Spark Connect is refused by check_engine(build=True)
    _, database, name = relation
    root = Path(config.path).resolve() / database
    link = root / name
    generation = root / f"_{name}.{uuid.uuid4().hex[:12]}"
    session = spark_session(config)
    with _BUILD_LOCK:
        previous = _swap(config, session, root, link, generation, days)
        _prune(root, name, keep={generation.name, previous or ""})


def _swap(
    config: WarehouseConfig,
    session: Any,
    root: Path,
    link: Path,
    generation: Path,
    days: exp.Select,
) -> str | None:
    """Writes the generation and swaps it in; returns the generation it replaced."""
    database, name = root.name, link.name
    swapped = False
    try:
        root.mkdir(parents=True, exist_ok=True)
        previous = os.readlink(link) if link.is_symlink() else None
        # One file: the spine is a few thousand dates.
        session.sql(days.sql(dialect=config.dialect)).coalesce(1).write.parquet(str(generation))
        staged = root / f"_{name}.link.{uuid.uuid4().hex[:12]}"
        # Relative, so that the warehouse directory can be moved or mounted elsewhere.
        os.symlink(generation.name, staged)
        os.replace(staged, link)
        swapped = True
        spark_table_locate(session, database, name, generation)
        return previous
    except Exception as exc:  # Spark's and the file system's errors alike
        if not swapped:  # else the link names it: the next session registers it
            shutil.rmtree(generation, ignore_errors=True)
        logger.warning("time spine build on Spark failed", exc_info=True)
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        raise WarehouseError(
            MSG_SPARK_WRITE.format(
                table=f"{database}.{name}",
                path=root,
                reason=lines[0] if lines else type(exc).__name__,
            ),
            code="warehouse_error",
        ) from exc


def _prune(root: Path, name: str, keep: set[str]) -> None:
    for entry in root.glob(f"_{name}.*"):
        if entry.name in keep:
            continue
        if entry.is_symlink():
            entry.unlink(missing_ok=True)  # a link left by a build that failed before its rename
        else:
            shutil.rmtree(entry, ignore_errors=True)
