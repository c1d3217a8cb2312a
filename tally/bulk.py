"""Bulk inserts of plain rows into a registry table with ``executemany``.

``bulk_create`` spends most of a large insert compiling each field of each row; callers
that write hundreds of thousands of rows (computed metric values, the lineage graph)
prepare plain values themselves and hand them here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from django.db import connection


def rows_insert(
    table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, batch: int = 2000
) -> int:
    """Inserts ``rows`` (values in ``columns`` order, already adapted for the database) into
    ``table``, ``batch`` rows per ``executemany``; returns the number of rows inserted.
    Runs in the caller's transaction, so a failed batch leaves nothing when the caller is
    atomic."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})"
    done = 0
    pending = iter(rows)
    with connection.cursor() as cursor:
        while chunk := [list(row) for row in islice(pending, batch)]:
            cursor.executemany(sql, chunk)
            done += len(chunk)
    return done
