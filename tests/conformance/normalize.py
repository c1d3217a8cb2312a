"""Value normalisation shared by the MetricFlow recorder and Tally's conformance checks.

Stdlib only, so that scripts/metricflow/record.py (run with .venv-mf) and Tally's tests (run
with .venv) apply the same rules. The rules (also in docs/conformance.md):

- NULL -> ``null``; booleans stay booleans; strings stay strings.
- Integers (Python ``int``) stay integers.
- Every other number (``float``, ``Decimal``) becomes a float rounded to 10 significant
  digits (``float(format(x, ".10g"))``); NaN and infinities become the strings ``"NaN"``,
  ``"Infinity"``, ``"-Infinity"``. MetricFlow itself hands back decimals as floats.
- ``datetime`` -> ISO 8601 ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` (no time zone: the warehouse
  has none); ``date`` -> ``YYYY-MM-DD``; ``time`` -> ``HH:MM:SS[.ffffff]``.
- Rows of a query without ``order_by`` are sorted by ``row_sort_key`` (column by column,
  NULL last, then booleans, numbers, strings). Rows of a query with ``order_by`` keep
  the engine's order; the recorder checks that its order_by keys leave no ties.

``values_equal`` compares loosely on purpose: a timestamp at midnight equals the date of that
day (MetricFlow returns ``metric_time`` at every grain as a TIMESTAMP), an int equals the
float of the same value, and numbers agree to 10 significant digits (plus a relative
tolerance of 1e-9 for the last-digit rounding of a different summation order).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

SIGNIFICANT_DIGITS = 10
REL_TOLERANCE = 1e-9
_MIDNIGHT = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ]00:00:00(?:\.0+)?$")


def normalize_value(value: Any) -> Any:
    """One result cell in its JSON-stable form."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)):
        number = float(value)
        if math.isnan(number):
            return "NaN"
        if math.isinf(number):
            return "Infinity" if number > 0 else "-Infinity"
        return float(format(number, f".{SIGNIFICANT_DIGITS}g"))
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None).isoformat(sep="T")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def normalize_rows(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    return [[normalize_value(value) for value in row] for row in rows]


def _cell_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (3, 0)
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def row_sort_key(row: Sequence[Any]) -> tuple[tuple[int, Any], ...]:
    """Sort key of a normalised row: column by column, NULL last."""
    return tuple(_cell_key(value) for value in row)


def sort_rows(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    return sorted((list(row) for row in rows), key=row_sort_key)


def values_equal(expected: Any, actual: Any) -> bool:
    """Normalised values equal under the loose rules above."""
    if isinstance(expected, str) and isinstance(actual, str):
        return _MIDNIGHT.sub(r"\1", expected) == _MIDNIGHT.sub(r"\1", actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if expected == actual:
            return True
        a = normalize_value(float(expected))
        b = normalize_value(float(actual))
        return a == b or math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=0.0)
    return expected == actual


def rows_equal(expected: Sequence[Sequence[Any]], actual: Sequence[Sequence[Any]]) -> bool:
    """Row-for-row equality of two normalised row lists (already in comparable order)."""
    return len(expected) == len(actual) and all(
        len(e) == len(a) and all(values_equal(x, y) for x, y in zip(e, a, strict=True))
        for e, a in zip(expected, actual, strict=True)
    )
