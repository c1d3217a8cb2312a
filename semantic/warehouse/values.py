"""Value normalisation of fetched rows, the same on every engine (see semantic.warehouse.execute).

This module is Django-free.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

from semantic.warehouse.results import Row


def normalize_rows_for_compare(
    rows: Iterable[Sequence[Any]], *, float_digits: int = 10
) -> tuple[Row, ...]:
    """Puts numbers in one canonical form so rows from different engines compare equal.

    Every int, float and Decimal (not bool) becomes a float rounded to ``float_digits``
    significant digits: ``Decimal('3.50')``, ``3.5`` and ``Decimal('3.5000000000001')`` are
    all ``3.5``, and ``sum()`` as a DuckDB int equals the same sum as a PostgreSQL Decimal.
    ``-0.0`` becomes ``0.0``. NaN becomes one shared NaN object: NaN is never ``==`` to
    itself, but tuple and list equality check identity first, so rows holding NaN in the
    same place compare equal. Other values are left as they are.

    Args:
        rows: rows from :func:`execute` (or any sequences of values).
        float_digits: significant digits kept.

    Returns:
        The rows as tuples, numbers replaced.

    Example:
        >>> a = normalize_rows_for_compare([(Decimal("3.50"), 7, -0.0, float("nan"), "x")])
        >>> b = normalize_rows_for_compare([(3.5000000000004, Decimal("7"), 0.0, Decimal("NaN"), "x")])
        >>> a == b, a[0][:3]
        (True, (3.5, 7.0, 0.0))
    """
    if float_digits < 1:
        raise ValueError(f"float_digits must be at least 1, got {float_digits}")
    return tuple(tuple(_canonical_number(value, float_digits) for value in row) for row in rows)


def utc_naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def to_str(value: Any) -> Any:
    return str(value)


def time_of_day(value: Any) -> Any:
    # PyMySQL returns TIME as a timedelta because MySQL TIME is a duration (-838h..838h);
    # only values within one day are times of day, the rest stay durations.
    if isinstance(value, timedelta) and timedelta(0) <= value < timedelta(days=1):
        return (datetime.min + value).time()
    return value


def row_converter(
    converters: list[Callable[[Any], Any] | None],
) -> Callable[[Sequence[Row]], tuple[Row, ...]]:
    """A function turning a fetched batch into normalised row tuples."""
    active = [(i, fn) for i, fn in enumerate(converters) if fn is not None]
    if not active:
        # The common case (integers, decimals, text, naive timestamps) costs one tuple().
        return lambda batch: tuple(tuple(row) for row in batch)

    def convert(batch: Sequence[Row]) -> tuple[Row, ...]:
        out = []
        for row in batch:
            values = list(row)
            for i, fn in active:
                if values[i] is not None:
                    values[i] = fn(values[i])
            out.append(tuple(values))
        return tuple(out)

    return convert


_NAN = float("nan")


def _canonical_number(value: Any, digits: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return _NAN
        if math.isinf(value):
            return value
        # repr() is the shortest text that round-trips, so 0.1 compares as Decimal('0.1')
        # rather than as 0.1000000000000000055…, which would round differently at a tie.
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if value.is_nan():
            return _NAN
        if value.is_infinite():
            return float(value)
        number = value
    else:
        number = Decimal(value)
    if number.is_zero():
        return 0.0
    quantum = Decimal(1).scaleb(number.adjusted() - digits + 1)
    # quantize() fails when the result needs more digits than the context allows.
    with localcontext() as context:
        context.prec = max(context.prec, digits + 2)
        return float(number.quantize(quantum))
