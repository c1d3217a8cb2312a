"""The time spine: Tally's own day table in the warehouse, and reading any spine's range.

Building the spine is :mod:`semantic.warehouse.spine_build`; this module holds the shared
shapes (ranges, limits, errors) and the reads.

Cumulative, offset and ``join_to_timespine`` metrics read a table with one row per day.
When a project declares none (no dbt ``time_spine`` model), the manifest points at
``tally_time_spine (date_day DATE PRIMARY KEY)`` in the default schema, and this module
builds and refreshes it on DuckDB, PostgreSQL, MySQL/MariaDB, ClickHouse (chdb or a server)
and Spark local.

How a refresh stays atomic (a concurrent reader sees the old spine or the new one):
    * The table is missing: the days go into a staging table with a unique name, which is
      then renamed into place. On DuckDB and PostgreSQL the whole build is one transaction
      (their DDL is transactional); on MySQL/MariaDB, whose DDL commits implicitly, the
      rename is the one atomic step, and a reader never sees the staging table.
    * The table exists: one transaction deletes the days outside the range and inserts the
      missing ones (MVCC on all three engines), so a second refresh with the same range
      changes nothing.
    * ClickHouse and Spark have no transactions: a spine that differs from the range is
      replaced whole, in one atomic step (``CREATE OR REPLACE TABLE … AS SELECT`` on
      ClickHouse; a new Parquet directory swapped in on Spark local, see
      semantic.warehouse.spine_spark); one that already holds the range is left alone.

Every statement is a sqlglot expression rendered for the warehouse's dialect. The days come
from ``generate_series`` on DuckDB and PostgreSQL; MySQL has no series function and caps
recursive CTEs at 1,000 rows by default, so there the day offsets are a cross join of
digit tables. The range and where it came from are written into the table comment.

This module is Django-free.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from registry.definitions.project import DEFAULT_TIME_SPINE
from semantic.compiler.definition_guard import parse_definition
from semantic.compiler.manifest import Manifest, TimeSpine
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.engine_open import spark_table_exists
from semantic.warehouse.execute import execute
from tally.errors import UserError

__all__ = [
    "MAX_SPINE_DAYS",
    "SPINE_COLUMN",
    "SPINE_TABLE",
    "DayRange",
    "SpineTable",
    "TimeSpineError",
    "TimeSpineOwnedByProject",
    "check_engine",
    "checked_range",
    "data_range",
    "data_range_query",
    "date_literal",
    "is_tally_spine",
    "qualified_name",
    "relation_table",
    "spine_read",
    "string_literal",
    "year_padded",
]

logger = logging.getLogger("tally.time_spine")

SPINE_TABLE = DEFAULT_TIME_SPINE
SPINE_COLUMN = "date_day"
SUPPORTED_ENGINES = ("duckdb", "postgresql", "mysql", "chdb", "clickhouse", "spark")
# 200 years of days: far beyond any product's history, small enough to build in a second.
# It stops a typo (year 2204 for 2024) from filling the warehouse with a million rows.
MAX_SPINE_DAYS = 200 * 366

START_AFTER_END_MESSAGE = "the time spine's start {start} is after its end {end}"
START_AFTER_END_HINT = "give an end on or after the start"
TOO_LARGE_MESSAGE = "a time spine of {days} days is larger than the limit of {limit} days"
TOO_LARGE_HINT = "check the years of --start/--end (TALLY_TIME_SPINE_START/END)"
UNSUPPORTED_MESSAGE = "Tally cannot build a time spine on a {engine} warehouse"
UNSUPPORTED_HINT = (
    "supported: duckdb, postgresql, mysql (MariaDB), clickhouse (chdb or a server), spark "
    "(local); elsewhere define a dbt model with `time_spine:` and build it with dbt"
)
SPARK_CONNECT_MESSAGE = "Tally cannot build a time spine on a Spark cluster ({url})"
SPARK_CONNECT_HINT = (
    "define a dbt model with `time_spine:` and build it with dbt on the cluster (Tally builds "
    "its own spine on Spark local only)"
)
PROJECT_SPINE_MESSAGE = "the project defines its own time spine {table}; Tally does not build it"
PROJECT_SPINE_HINT = (
    "build it with dbt, or remove the `time_spine:` model to let Tally maintain tally_time_spine"
)


class TimeSpineError(UserError):
    """A time spine cannot be built as asked (bad range, unsupported warehouse)."""

    default_code = "bad_time_spine"


class TimeSpineOwnedByProject(TimeSpineError):
    """The project declares its own spine (dbt ``time_spine``); Tally leaves it alone."""

    http_status = 409
    default_code = "time_spine_owned_by_project"


@dataclass(frozen=True)
class DayRange:
    """An inclusive range of days.

    Example:
        >>> DayRange(dt.date(2024, 1, 1), dt.date(2024, 12, 31)).days
        366
    """

    start: dt.date
    end: dt.date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True)
class SpineTable:
    """What a spine table holds now; ``exists`` False means the other fields are empty."""

    exists: bool
    start: dt.date | None = None
    end: dt.date | None = None
    rows: int = 0
    comment: str | None = None


def is_tally_spine(spine: TimeSpine) -> bool:
    """Whether the manifest's spine is the one Tally maintains (the project declares none).

    Example:
        >>> is_tally_spine(TimeSpine((None, "main", "tally_time_spine"), "date_day"))
        True
    """
    return spine.relation[2] == SPINE_TABLE


def qualified_name(relation: tuple[str | None, str, str]) -> str:
    """``schema.table`` (or ``db.schema.table``) as people read it.

    Example:
        >>> qualified_name((None, "main", "tally_time_spine"))
        'main.tally_time_spine'
    """
    return ".".join(part for part in relation if part)


def year_padded(low: dt.date, high: dt.date) -> DayRange:
    """January 1 of ``low``'s year to December 31 of ``high``'s, so that offsets and
    cumulative metrics at year grain see whole years.

    Example:
        >>> str(year_padded(dt.date(2024, 3, 5), dt.date(2026, 11, 20)))
        '2024-01-01..2026-12-31'
    """
    return DayRange(dt.date(low.year, 1, 1), dt.date(high.year, 12, 31))


def checked_range(start: dt.date, end: dt.date) -> DayRange:
    """The range, refused when the start is after the end or it is implausibly large.

    Raises:
        TimeSpineError: ``bad_time_spine_range`` or ``time_spine_too_large``.
    """
    if start > end:
        raise TimeSpineError(
            START_AFTER_END_MESSAGE.format(start=start.isoformat(), end=end.isoformat()),
            code="bad_time_spine_range",
            hint=START_AFTER_END_HINT,
            location="end",
        )
    span = DayRange(start, end)
    if span.days > MAX_SPINE_DAYS:
        raise TimeSpineError(
            TOO_LARGE_MESSAGE.format(days=span.days, limit=MAX_SPINE_DAYS),
            code="time_spine_too_large",
            hint=TOO_LARGE_HINT,
        )
    return span


def check_engine(config: WarehouseConfig, *, build: bool = False) -> None:
    """Raises TimeSpineError(``unsupported_warehouse``) unless Tally can read (``build``:
    and build) a spine there."""
    if config.engine not in SUPPORTED_ENGINES:
        raise TimeSpineError(
            UNSUPPORTED_MESSAGE.format(engine=config.engine),
            code="unsupported_warehouse",
            hint=UNSUPPORTED_HINT,
        )
    # A Spark Connect cluster keeps its tables in its metastore, where Tally has no atomic
    # swap it can rely on (Parquet tables have no CREATE OR REPLACE); it can read a spine there.
    if build and config.engine == "spark" and config.host is not None:
        raise TimeSpineError(
            SPARK_CONNECT_MESSAGE.format(url=config.display_url),
            code="unsupported_warehouse",
            hint=SPARK_CONNECT_HINT,
        )


# --- reading -------------------------------------------------------------------------------


def relation_table(relation: tuple[str | None, str, str], alias: str | None = None) -> exp.Table:
    database, schema, name = relation
    table = exp.table_(name, db=schema, catalog=database)
    return table.as_(alias, copy=False) if alias else table


def string_literal(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def date_literal(value: dt.date) -> exp.Cast:
    return exp.cast(string_literal(value.isoformat()), exp.DataType.Type.DATE)


def _as_date(value: Any) -> dt.date | None:
    # A project's spine may be a TIMESTAMP column; a DATE column arrives as a date already.
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else None


def _catalog_query(config: WarehouseConfig, relation: tuple[str | None, str, str]) -> exp.Select:
    """One row (the table's comment) when the table or view exists, none otherwise."""
    _, schema, name = relation
    if config.engine == "postgresql":
        # to_regclass resolves the name as the compiled SQL does (unquoted names fold to
        # lower case) and is NULL for a missing table instead of raising.
        regclass = exp.func(
            "to_regclass", string_literal(relation_table(relation).sql(dialect="postgres"))
        )
        return exp.select(exp.func("obj_description", regclass, string_literal("pg_class"))).where(
            exp.Not(this=exp.Is(this=regclass.copy(), expression=exp.Null()))
        )
    tables = exp.table_("tables", db="information_schema")
    schema_col, name_col = exp.column("table_schema"), exp.column("table_name")
    if config.engine == "duckdb":
        # DuckDB identifiers are case-insensitive; MySQL's table names are not (on Linux).
        schema_col, name_col = exp.Lower(this=schema_col), exp.Lower(this=name_col)
        schema, name = schema.lower(), name.lower()
    return (
        exp.select(exp.column("table_comment"))
        .from_(tables)
        .where(exp.EQ(this=schema_col, expression=string_literal(schema)))
        .where(exp.EQ(this=name_col, expression=string_literal(name)))
    )


def spine_read(
    config: WarehouseConfig,
    relation: tuple[str | None, str, str],
    column: str = SPINE_COLUMN,
    *,
    timeout_s: float = 60,
) -> SpineTable:
    """Whether a spine table exists, and its first and last day, row count and comment.

    Args:
        config: the warehouse.
        relation: (database, schema, table) of the spine.
        column: its day column.
        timeout_s: limit on each query.

    Returns:
        The :class:`SpineTable`.

    Raises:
        TimeSpineError: the warehouse engine is not supported.
        WarehouseError: the warehouse cannot be reached or rejected a query.

    Example:
        >>> memory = WarehouseConfig(engine="duckdb", dialect="duckdb", path=":memory:")
        >>> spine_read(memory, (None, "main", "tally_time_spine")).exists
        False
    """
    check_engine(config)
    if config.engine == "spark":
        # Spark has no information_schema: its catalog answers, and keeps no table comment
        # across sessions (a local table is registered from its directory at start).
        comments: list[Any] = [None] if spark_table_exists(config, relation[1], relation[2]) else []
    else:
        found = execute(config, _catalog_query(config, relation).sql(dialect=config.dialect))
        comments = [row[0] for row in found.rows]
    if not comments:
        return SpineTable(exists=False)
    day = exp.column(column, table="spine")
    bounds = exp.select(
        exp.Min(this=day), exp.Max(this=day.copy()), exp.Count(this=exp.Star())
    ).from_(relation_table(relation, "spine"))
    ((low, high, rows),) = execute(
        config, bounds.sql(dialect=config.dialect), timeout_s=timeout_s
    ).rows
    return SpineTable(True, _as_date(low), _as_date(high), int(rows), comments[0] or None)


@functools.lru_cache(maxsize=1024)
def _parsed(sql: str) -> exp.Expression:
    # Security hook (issue 18): the data-range scan runs definition expressions too.
    return parse_definition(sql, location="time dimension expr")


def _qualified(sql: str, alias: str) -> exp.Expression:
    tree = _parsed(sql).copy()
    for column in tree.find_all(exp.Column):
        if not column.table:
            column.set("table", exp.to_identifier(alias))
    return tree


def data_range_query(manifest: Manifest) -> exp.Select | None:
    """MIN and MAX day over every measure's agg_time_dimension, one scan per model.

    Returns:
        ``SELECT MIN(lo), MAX(hi) FROM (… UNION ALL …)``, or None when no measure has one.

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> m = build_manifest([("semantic_model", "e", {"name": "e", "model": "ref('events')",
        ...     "defaults": {"agg_time_dimension": "at"},
        ...     "dimensions": [{"name": "at", "type": "time",
        ...                     "type_params": {"time_granularity": "day"}}],
        ...     "measures": [{"name": "n", "agg": "count"}]}, "1.0")])
        >>> print(data_range_query(m).sql())
        SELECT MIN(r.lo), MAX(r.hi) FROM (SELECT MIN(CAST(src.at AS DATE)) AS lo, \
MAX(CAST(src.at AS DATE)) AS hi FROM main.events AS src) AS r
    """
    scans: list[exp.Select] = []
    for model in sorted(manifest.semantic_models.values(), key=lambda m: m.name):
        names = sorted({m.agg_time_dimension for m in model.measures.values()} - {""})
        days = [
            exp.cast(_qualified(model.dimensions[name].expr, "src"), exp.DataType.Type.DATE)
            for name in names
            if name in model.dimensions and model.dimensions[name].type == "time"
        ]
        if not days:
            continue
        # One MIN/MAX pair per time dimension: LEAST/GREATEST would fold them into one row,
        # but MySQL returns NULL from them when any argument is NULL (a nullable ended_at).
        for day in days:
            scans.append(
                exp.select(exp.Min(this=day).as_("lo"), exp.Max(this=day.copy()).as_("hi")).from_(
                    relation_table(model.relation, "src")
                )
            )
    if not scans:
        return None
    union: exp.Query = scans[0]
    for scan in scans[1:]:
        union = exp.union(union, scan, distinct=False)
    return exp.select(
        exp.Min(this=exp.column("lo", table="r")), exp.Max(this=exp.column("hi", table="r"))
    ).from_(union.subquery("r"))


def data_range(
    config: WarehouseConfig, manifest: Manifest, *, timeout_s: float = 300
) -> DayRange | None:
    """The first and last day of the data (every measure's agg_time_dimension), unpadded.

    Returns:
        The range, or None when the models hold no rows (or no measure has a time dimension).

    Raises:
        WarehouseError: a model's table is missing or the warehouse is unreachable.
    """
    query = data_range_query(manifest)
    if query is None:
        return None
    ((low, high),) = execute(config, query.sql(dialect=config.dialect), timeout_s=timeout_s).rows
    low, high = _as_date(low), _as_date(high)
    if low is None or high is None:
        return None
    return DayRange(low, high)
