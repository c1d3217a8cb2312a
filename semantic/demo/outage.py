"""A tracking outage planted in a built demo warehouse, so that `tally demo` has a real anomaly
for its audit to find and its charts to mark.

Kept out of :func:`semantic.demo.build_demo_warehouse`: tests and recorded conformance rows
rely on the generator's exact data; only the `tally demo` command plants the outage.
Django-free.
"""

from __future__ import annotations

import os
from datetime import date

import duckdb

OUTAGE_SHARE_PERCENT = 85
"""Share of the day's events the outage loses (deterministically, by event id)."""


def plant_outage(path: str | os.PathLike[str], *, day: date) -> int:
    """Deletes OUTAGE_SHARE_PERCENT % of the events that occurred on ``day`` (chosen by a hash
    of their id, so the same rows on every run) and returns how many rows were removed."""
    con = duckdb.connect(str(path))
    try:
        con.execute("BEGIN")
        removed = con.execute(
            "DELETE FROM events WHERE CAST(occurred_at AS DATE) = ? "
            "AND hash(event_id, 'outage') % 100 < ?",
            [day, OUTAGE_SHARE_PERCENT],
        ).fetchall()
        con.execute("COMMIT")
    finally:
        con.close()
    return int(removed[0][0]) if removed else 0


def demo_data_end(path: str | os.PathLike[str]) -> date | None:
    """The last day with events in a demo warehouse (None when it has none)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT max(CAST(occurred_at AS DATE)) FROM events").fetchone()
    finally:
        con.close()
    return row[0] if row and row[0] is not None else None
