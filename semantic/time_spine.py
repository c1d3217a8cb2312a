"""Time spine services: report, refresh and (before a query) ensure the warehouse's spine.

The warehouse side (SQL, atomic swaps, engines) is :mod:`semantic.warehouse.time_spine`;
this module decides *which* spine and *which* range: the release's manifest names the spine
(the project's dbt ``time_spine`` model, else Tally's ``tally_time_spine``), and the range of
Tally's spine comes from explicit arguments, then TALLY_TIME_SPINE_START/END, then the data
(every measure's agg_time_dimension, padded to whole years).
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from django.conf import settings

from semantic.compiler.grains import GRAINS, period_floor
from semantic.compiler.manifest import Manifest
from semantic.manifests import manifest_for_release, release_resolve
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.spine_build import spine_build
from semantic.warehouse.time_spine import (
    PROJECT_SPINE_HINT,
    PROJECT_SPINE_MESSAGE,
    SPINE_TABLE,
    DayRange,
    SpineTable,
    TimeSpineOwnedByProject,
    check_engine,
    checked_range,
    data_range,
    is_tally_spine,
    qualified_name,
    spine_read,
    year_padded,
)
from tally.errors import WarehouseError

MISSING_WARNING = "the time spine {table} does not exist in the warehouse"
MISSING_TALLY_HINT = "run `tally time-spine` (a query that needs it also builds it)"
MISSING_PROJECT_HINT = "build the project's time_spine model with dbt"
NOT_COVERING_WARNING = (
    "the time spine {table} covers {spine} but the data runs {data}: cumulative, offset and "
    "join_to_timespine metrics miss the days outside it"
)
GAPS_WARNING = "the time spine {table} has {rows} rows for the {days} days it spans (gaps)"
DATA_RANGE_FAILED = "cannot read the data's range to build the time spine {table}: {reason}"
DATA_RANGE_HINT = (
    "set TALLY_TIME_SPINE_START and TALLY_TIME_SPINE_END, or run `tally time-spine --start "
    "YYYY-MM-DD --end YYYY-MM-DD` once"
)
STALE_WARNING = "the time spine {table} covers {spine}, not the configured {planned}"


@dataclass(frozen=True)
class TimeSpineStatus:
    """Which spine a release reads, what it holds, and whether it covers the data."""

    release: str
    table: str
    column: str
    grain: str
    managed: bool  # Tally's own spine; False: the project's dbt time_spine model
    spine: SpineTable
    data: DayRange | None  # first and last day of the data, unpadded
    planned: DayRange | None  # Tally's spine only: the range a refresh builds now
    planned_from: str
    covers_data: bool
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.spine.exists and self.covers_data


def _trunc(day: dt.date, grain: str) -> dt.date:
    """The first day of ``day``'s period at ``grain``, to compare a coarse spine with data
    (a grain finer than a day, or a custom one, compares day by day)."""
    return period_floor(day, grain) if grain in GRAINS else day


def _planned(
    data: DayRange | None, start: dt.date | None, end: dt.date | None
) -> tuple[DayRange, str]:
    """Tally's spine range, each bound from the argument, else the setting, else the data."""
    low, high = start or settings.TIME_SPINE_START, end or settings.TIME_SPINE_END
    origin = [
        "given" if start else "TALLY_TIME_SPINE_START" if low else "data",
        "given" if end else "TALLY_TIME_SPINE_END" if high else "data",
    ]
    if low is None or high is None:
        if data is None:
            # No rows yet: the current year, so that a fresh warehouse still answers queries.
            today = dt.date.today()
            padded = year_padded(today, today)
            origin = [o if o != "data" else "this year (no data)" for o in origin]
        else:
            padded = year_padded(data.start, data.end)
        low, high = low or padded.start, high or padded.end
    span = checked_range(low, high)
    if origin[0] == origin[1]:
        return span, f"range from {origin[0]}"
    return span, f"start from {origin[0]}, end from {origin[1]}"


def _status(
    manifest: Manifest,
    warehouse: WarehouseConfig,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    data: DayRange | None = None,
    spine: SpineTable | None = None,
) -> TimeSpineStatus:
    time_spine = manifest.time_spine
    managed = is_tally_spine(time_spine)
    table = qualified_name(time_spine.relation)
    if managed:
        check_engine(warehouse)
    if spine is None:
        spine = spine_read(warehouse, time_spine.relation, time_spine.column)
    if data is None:
        data = data_range(warehouse, manifest)
    planned, planned_from = _planned(data, start, end) if managed else (None, "")
    warnings: list[str] = []
    covers = spine.exists
    if not spine.exists:
        hint = MISSING_TALLY_HINT if managed else MISSING_PROJECT_HINT
        warnings.append(f"{MISSING_WARNING.format(table=table)}: {hint}")
    elif spine.start is not None and spine.end is not None:
        span = DayRange(spine.start, spine.end)
        grain = time_spine.grain
        if data is not None and not (
            spine.start <= _trunc(data.start, grain) and spine.end >= _trunc(data.end, grain)
        ):
            covers = False
            warnings.append(NOT_COVERING_WARNING.format(table=table, spine=span, data=data))
        if grain == "day" and spine.rows != span.days:
            warnings.append(GAPS_WARNING.format(table=table, rows=spine.rows, days=span.days))
        if planned is not None and planned != span:
            warnings.append(STALE_WARNING.format(table=table, spine=span, planned=planned))
    else:
        covers = data is None
    return TimeSpineStatus(
        release=manifest.release,
        table=table,
        column=time_spine.column,
        grain=time_spine.grain,
        managed=managed,
        spine=spine,
        data=data,
        planned=planned,
        planned_from=planned_from,
        covers_data=covers,
        warnings=tuple(warnings),
    )


def time_spine_status(*, release_ref: str | None = None) -> TimeSpineStatus:
    """The release's time spine in the configured warehouse: range, rows, coverage; no writes."""
    manifest = manifest_for_release(release_resolve(release_ref))
    return _status(manifest, settings.WAREHOUSE)


def time_spine_refresh(
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    release_ref: str | None = None,
) -> TimeSpineStatus:
    """Builds or refreshes Tally's spine atomically and idempotently; refuses a project's spine.

    Raises:
        TimeSpineOwnedByProject: the release's project declares its own time spine.
        TimeSpineError: bad range or unsupported warehouse.
    """
    if start is not None and end is not None:
        checked_range(start, end)  # before any warehouse round trip
    manifest = manifest_for_release(release_resolve(release_ref))
    time_spine = manifest.time_spine
    if not is_tally_spine(time_spine):
        table = qualified_name(time_spine.relation)
        raise TimeSpineOwnedByProject(
            PROJECT_SPINE_MESSAGE.format(table=table), hint=PROJECT_SPINE_HINT
        )
    warehouse = settings.WAREHOUSE
    check_engine(warehouse)
    data = data_range(warehouse, manifest)
    planned, note = _planned(data, start, end)
    built = spine_build(warehouse, planned, relation=time_spine.relation, note=note)
    _ensured.add((warehouse.display_url, time_spine.relation))
    return _status(manifest, warehouse, start=start, end=end, data=data, spine=built)


# (warehouse, relation) pairs known to hold Tally's spine in this process: after the first
# query the check costs a set lookup, never a warehouse round trip.
_ensured: set[tuple[str, tuple[str | None, str, str]]] = set()
_ensure_lock = threading.Lock()


def time_spine_ensure(*, sql: str, release_ref: str | None = None) -> None:
    """Builds Tally's spine before a query whose SQL reads it, when the warehouse lacks it."""
    if SPINE_TABLE not in sql:
        return
    manifest = manifest_for_release(release_resolve(release_ref))
    time_spine = manifest.time_spine
    warehouse = settings.WAREHOUSE
    key = (warehouse.display_url, time_spine.relation)
    if key in _ensured or not is_tally_spine(time_spine):
        return
    # One build per process at a time; other processes are handled by the build's own
    # atomic rename (the loser refreshes the winner's table, which is a no-op).
    with _ensure_lock:
        if key in _ensured:
            return
        if not spine_read(warehouse, time_spine.relation, time_spine.column).exists:
            data = None
            if settings.TIME_SPINE_START is None or settings.TIME_SPINE_END is None:
                data = _data_for_query(warehouse, manifest, qualified_name(time_spine.relation))
            planned, note = _planned(data, None, None)
            spine_build(warehouse, planned, relation=time_spine.relation, note=note)
        _ensured.add(key)


def _data_for_query(warehouse: WarehouseConfig, manifest: Manifest, table: str) -> DayRange | None:
    # The range query scans every model's table, also those the user's query does not read:
    # say why a query about one model failed on another, and how to avoid the scan.
    try:
        return data_range(warehouse, manifest)
    except WarehouseError as exc:
        # exc.message is already the generic text (with its log reference): kept, not re-hidden.
        raise exc.in_context(
            DATA_RANGE_FAILED.format(table=table, reason=exc.message), hint=DATA_RANGE_HINT
        ) from exc


def time_spine_forget() -> None:
    """Forgets which spines this process has seen (tests rebuild warehouses)."""
    _ensured.clear()


__all__ = [
    "MISSING_PROJECT_HINT",
    "MISSING_TALLY_HINT",
    "TimeSpineStatus",
    "time_spine_ensure",
    "time_spine_forget",
    "time_spine_refresh",
    "time_spine_status",
]
