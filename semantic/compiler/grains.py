"""Calendar periods of the standard grains (day, week, month, quarter, year), in Python.

The one definition of "the period containing a day" in Python: the compiler's period bounds,
stored values, compute chunks and the time spine's coverage check all use it. (In SQL the
compiler truncates with ``time.trunc``, rendered per dialect.) Django-free.

Example:
    >>> period_floor(dt.date(2024, 5, 17), "month"), period_floor(dt.date(2024, 5, 17), "week")
    (datetime.date(2024, 5, 1), datetime.date(2024, 5, 13))
    >>> period_next(dt.date(2024, 11, 1), "quarter")
    datetime.date(2025, 2, 1)
"""

from __future__ import annotations

import datetime as dt

GRAINS: tuple[str, ...] = ("day", "week", "month", "quarter", "year")
# Finer than a day, for time dimensions whose time_granularity allows (issue 17). Kept apart
# from GRAINS: stored values, compute chunks and the UI's periods are whole days.
SUB_DAILY: tuple[str, ...] = ("millisecond", "second", "minute", "hour")
ALL_GRAINS: tuple[str, ...] = SUB_DAILY + GRAINS


def period_floor(day: dt.date, grain: str) -> dt.date:
    """The first day of the period of ``grain`` containing ``day`` (ISO weeks start Monday)."""
    if grain == "day":
        return day
    if grain == "week":
        return day - dt.timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    if grain == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if grain == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown grain {grain!r}")


def period_next(start: dt.date, grain: str) -> dt.date:
    """The first day of the period after the one starting at ``start``."""
    if grain == "day":
        return start + dt.timedelta(days=1)
    if grain == "week":
        return start + dt.timedelta(days=7)
    months = {"month": 1, "quarter": 3, "year": 12}[grain]
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1, day=1)
