"""Period arithmetic, canonical values and slice keys for stored metric values (Django-free).

Example:
    >>> period_floor(dt.date(2024, 5, 17), "month"), period_floor(dt.date(2024, 5, 17), "week")
    (datetime.date(2024, 5, 1), datetime.date(2024, 5, 13))
    >>> canonical_value(0.1 + 0.2), canonical_value(Decimal("12.500")), canonical_value(None)
    ('0.3', '12.5', None)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from semantic.compiler.grains import period_floor, period_next

__all__ = [
    "CHUNK_PERIODS",
    "FLOAT_DIGITS",
    "as_date",
    "canonical_slice",
    "canonical_value",
    "chunks",
    "period_floor",
    "period_next",
]

# Periods per chunk of a backfill: one warehouse query per chunk and source group, small
# enough for a visible progress bar, large enough that a year of days is a handful of scans.
CHUNK_PERIODS = {"day": 92, "week": 26, "month": 12, "quarter": 8, "year": 5}
# Floats are compared at 12 significant digits: a parallel SUM of doubles may differ in the
# last bits between two runs over identical data, and that is not a restatement.
FLOAT_DIGITS = 12


def chunks(
    start: dt.date, end: dt.date, grain: str, size: int | None = None
) -> Iterator[tuple[dt.date, dt.date]]:
    """Whole-period ``(first day, last day)`` chunks covering ``start``..``end``.

    Example:
        >>> list(chunks(dt.date(2024, 1, 1), dt.date(2024, 1, 5), "day", 2))
        [(datetime.date(2024, 1, 1), datetime.date(2024, 1, 2)), (datetime.date(2024, 1, 3), datetime.date(2024, 1, 4)), (datetime.date(2024, 1, 5), datetime.date(2024, 1, 5))]
    """
    size = size or CHUNK_PERIODS[grain]
    current = period_floor(start, grain)
    while current <= end:
        last = current
        for _ in range(size - 1):
            following = period_next(last, grain)
            if following > end:
                break
            last = following
        stop = period_next(last, grain)
        yield current, stop - dt.timedelta(days=1)
        current = stop


def canonical_value(value: Any) -> str | None:
    """Exact decimal text of a metric value; floats rounded to FLOAT_DIGITS significant digits,
    timestamps as ISO text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()  # min/max of a time column (first_event_at)
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        value = Decimal(format(value, f".{FLOAT_DIGITS}g"))
    number = Decimal(value)
    if number == 0:
        return "0"
    text = format(number.normalize(), "f")
    return text


def canonical_slice(values: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The slice as JSON-safe dict and the SHA-256 of its canonical JSON text."""
    plain = {k: _plain(v) for k, v in sorted(values.items())}
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return plain, hashlib.sha256(text.encode("utf-8")).hexdigest()


def as_date(value: Any) -> dt.date:
    """A period column value (date, naive timestamp or ISO text) as a date."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return canonical_value(value)
    return value
