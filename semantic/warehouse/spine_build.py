"""Builds and refreshes Tally's time spine atomically (see semantic.warehouse.time_spine).

How a refresh stays atomic (a concurrent reader sees the old spine or the new one):
    * The table is missing: the days go into a staging table with a unique name, which is
      then renamed into place. On DuckDB and PostgreSQL the whole build is one transaction
      (their DDL is transactional); on MySQL/MariaDB, whose DDL commits implicitly, the
      rename is the one atomic step, and a reader never sees the staging table.
    * The table exists: one transaction deletes the days outside the range and inserts the
      missing ones (MVCC on all three engines), so a second refresh with the same range
      changes nothing.
    * ClickHouse (chdb or a server) and Spark local have no transactions: a spine that does
      not hold exactly the range is replaced whole in one atomic step, ``CREATE OR REPLACE
      TABLE … AS SELECT`` on ClickHouse (an Atomic database swaps the tables) and a new
      Parquet directory on Spark (semantic.warehouse.spine_spark); a spine that already
      holds the range is left alone.

This module is Django-free.
"""

from __future__ import annotations

import logging
import uuid

from sqlglot import exp

from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.spine_spark import spark_spine_replace
from semantic.warehouse.time_spine import (
    SPINE_COLUMN,
    SPINE_TABLE,
    DayRange,
    SpineTable,
    check_engine,
    checked_range,
    date_literal,
    qualified_name,
    relation_table,
    spine_read,
    string_literal,
)
from semantic.warehouse.writer import Writer, create_schema, schema_exists, statements_apply
from tally.errors import WarehouseError

__all__ = ["spine_build"]

logger = logging.getLogger("tally.time_spine")


# Engines without transactions, where the spine is replaced whole.
_REPLACED_WHOLE = ("chdb", "clickhouse", "spark")
_DAY = exp.Interval(this=string_literal("1"), unit=exp.Var(this="DAY"))
# Date32 (1900..2299), as the loader types DATE columns: Date stops at 2149 and starts at 1970.
# Not Nullable, which the dialect makes of a bare DATE.
_CLICKHOUSE_DAY = exp.DataType.build("Date32", dialect="clickhouse")


def _day_series(config: WarehouseConfig, span: DayRange) -> exp.Select:
    """``SELECT … AS date_day`` yielding each day of ``span`` once."""
    if config.dialect == "clickhouse":
        first = exp.cast(string_literal(span.start.isoformat()), _CLICKHOUSE_DAY.copy())
        shifted = exp.DateAdd(this=first, expression=exp.column("number"), unit=exp.Var(this="DAY"))
        numbers = exp.Table(this=exp.func("numbers", exp.Literal.number(span.days)))
        return exp.select(shifted.as_(SPINE_COLUMN)).from_(numbers)
    if config.engine == "spark":
        days = exp.GenerateSeries(
            start=date_literal(span.start), end=date_literal(span.end), step=_DAY.copy()
        )
        return exp.select(exp.Explode(this=days).as_(SPINE_COLUMN))
    if config.engine in ("duckdb", "postgresql"):
        series = exp.GenerateSeries(
            start=exp.cast(string_literal(span.start.isoformat()), exp.DataType.Type.TIMESTAMP),
            end=exp.cast(string_literal(span.end.isoformat()), exp.DataType.Type.TIMESTAMP),
            step=_DAY.copy(),
        )
        source = exp.Table(
            this=series,
            alias=exp.TableAlias(this=exp.to_identifier("g"), columns=[exp.to_identifier("d")]),
        )
        day = exp.cast(exp.column("d", table="g"), exp.DataType.Type.DATE)
        return exp.select(day.as_(SPINE_COLUMN)).from_(source)
    # MySQL/MariaDB: offsets 0..10^k-1 from k cross-joined digit tables, cut at span.days.
    digits: exp.Query = exp.select(exp.Literal.number(0).as_("n"))
    for digit in range(1, 10):
        digits = exp.union(digits, exp.select(exp.Literal.number(digit).as_("n")), distinct=False)
    places = len(str(span.days - 1)) if span.days > 1 else 1
    offset: exp.Expression = exp.column("n", table="d0")
    select = exp.select().from_(digits.subquery("d0"))
    for place in range(1, places):
        alias = f"d{place}"
        select = select.join(digits.subquery(alias), join_type="CROSS")
        offset = exp.Add(
            this=offset,
            expression=exp.Mul(
                this=exp.column("n", table=alias), expression=exp.Literal.number(10**place)
            ),
        )
    day = exp.DateAdd(this=date_literal(span.start), expression=offset, unit=exp.Var(this="DAY"))
    return select.select(exp.cast(day, exp.DataType.Type.DATE).as_(SPINE_COLUMN), copy=False).where(
        exp.LT(this=offset.copy(), expression=exp.Literal.number(span.days))
    )


def _create(relation: tuple[str | None, str, str]) -> exp.Create:
    column = exp.ColumnDef(
        this=exp.to_identifier(SPINE_COLUMN),
        kind=exp.DataType.build("DATE"),
        constraints=[
            exp.ColumnConstraint(kind=exp.NotNullColumnConstraint()),
            exp.ColumnConstraint(kind=exp.PrimaryKeyColumnConstraint()),
        ],
    )
    return exp.Create(
        this=exp.Schema(this=relation_table(relation), expressions=[column]), kind="TABLE"
    )


def _create_replacing(
    relation: tuple[str | None, str, str], days: exp.Select, comment: str
) -> exp.Create:
    """ClickHouse: ``CREATE OR REPLACE TABLE … ENGINE = MergeTree ORDER BY date_day AS …``."""
    column = exp.ColumnDef(
        this=exp.to_identifier(SPINE_COLUMN),
        kind=_CLICKHOUSE_DAY.copy(),
    )
    properties = exp.Properties(
        expressions=[
            exp.EngineProperty(this=exp.to_identifier("MergeTree")),
            exp.Order(expressions=[exp.Ordered(this=exp.column(SPINE_COLUMN))]),
            exp.SchemaCommentProperty(this=string_literal(comment)),
        ]
    )
    return exp.Create(
        this=exp.Schema(this=relation_table(relation), expressions=[column]),
        kind="TABLE",
        replace=True,
        properties=properties,
        expression=days,
    )


def _comment(
    config: WarehouseConfig, relation: tuple[str | None, str, str], text: str
) -> exp.Expression:
    if config.engine == "mysql":
        return exp.Alter(
            this=relation_table(relation),
            kind="TABLE",
            actions=[exp.SchemaCommentProperty(this=string_literal(text))],
        )
    return exp.Comment(this=relation_table(relation), kind="TABLE", expression=string_literal(text))


def _rename(
    config: WarehouseConfig,
    source: tuple[str | None, str, str],
    target: tuple[str | None, str, str],
) -> exp.Alter:
    # PostgreSQL and DuckDB take a bare new name (the schema stays); MySQL moves an unqualified
    # name into the session's database, so there the target is qualified.
    new = relation_table(target) if config.engine == "mysql" else exp.table_(target[2])
    return exp.Alter(this=relation_table(source), kind="TABLE", actions=[exp.AlterRename(this=new)])


def _missing_days(relation: tuple[str | None, str, str], series: exp.Select) -> exp.Insert:
    held = (
        exp.select(exp.Literal.number(1))
        .from_(relation_table(relation, "cur"))
        .where(
            exp.EQ(
                this=exp.column(SPINE_COLUMN, table="cur"),
                expression=exp.column(SPINE_COLUMN, table="s"),
            )
        )
    )
    rows = (
        exp.select(exp.column(SPINE_COLUMN, table="s"))
        .from_(series.subquery("s"))
        .where(exp.Not(this=exp.Exists(this=held)))
    )
    return exp.insert(rows, relation_table(relation), columns=[SPINE_COLUMN])


def _outside_days(relation: tuple[str | None, str, str], span: DayRange) -> exp.Delete:
    day = exp.column(SPINE_COLUMN)
    return exp.delete(relation_table(relation)).where(
        exp.or_(
            exp.LT(this=day, expression=date_literal(span.start)),
            exp.GT(this=day.copy(), expression=date_literal(span.end)),
        )
    )


def spine_build(
    config: WarehouseConfig,
    span: DayRange,
    *,
    relation: tuple[str | None, str, str] = (None, "main", SPINE_TABLE),
    note: str = "",
) -> SpineTable:
    """Creates or refreshes Tally's spine to hold exactly the days of ``span``, atomically.

    Idempotent: a second call with the same range deletes and inserts nothing. See the
    module docstring for how each engine keeps readers from seeing a half-built spine.

    Args:
        config: the warehouse.
        span: the days to hold (checked with :func:`checked_range`).
        relation: where the spine lives (the manifest's time spine).
        note: where the range came from, recorded in the table comment.

    Returns:
        The spine as built.

    Raises:
        TimeSpineError: the engine is unsupported or the range is refused.
        WarehouseError: the warehouse cannot be reached or rejected a statement.
    """
    check_engine(config, build=True)
    span = checked_range(span.start, span.end)
    comment = f"Tally time spine {span}" + (f" ({note})" if note else "")
    if config.engine in _REPLACED_WHOLE:
        _replace_whole(config, span, relation, comment)
    else:
        _build_in_transactions(config, span, relation, comment)
    built = spine_read(config, relation)
    logger.info("time spine %s holds %s (%d rows)", qualified_name(relation), span, built.rows)
    return built


def _replace_whole(
    config: WarehouseConfig, span: DayRange, relation: tuple[str | None, str, str], comment: str
) -> None:
    current = spine_read(config, relation)
    # Spark keeps no comment across sessions: there the range and row count decide alone.
    if (current.start, current.end, current.rows) == (span.start, span.end, span.days) and (
        current.comment in (None, comment)
    ):
        return
    if config.engine == "spark":
        spark_spine_replace(config, relation, _day_series(config, span))
        return
    schema = [] if schema_exists(config, relation[1]) else [create_schema(relation[1])]
    writer = Writer(config)
    try:
        # One statement each: ClickHouse DDL is not transactional, and CREATE OR REPLACE is
        # atomic by itself (a reader sees the old table until the new one is complete).
        for statement in (*schema, _create_replacing(relation, _day_series(config, span), comment)):
            writer.run(statement)
    finally:
        writer.close()


def _build_in_transactions(
    config: WarehouseConfig, span: DayRange, relation: tuple[str | None, str, str], comment: str
) -> None:
    writer = Writer(config)
    try:
        current = spine_read(config, relation)
        if not current.exists:
            # Only a missing schema is created: CREATE SCHEMA IF NOT EXISTS still needs the
            # right to create schemas on PostgreSQL, which a table owner may not have.
            schema = [] if schema_exists(config, relation[1]) else [create_schema(relation[1])]
            try:
                _create_by_rename(writer, span, relation, schema, comment)
            except WarehouseError:
                # Another process built it meanwhile (our rename lost the race): refresh theirs.
                if not spine_read(config, relation).exists:
                    raise
                _refresh_in_place(writer, span, relation, comment)
        else:
            _refresh_in_place(writer, span, relation, comment)
    finally:
        writer.close()


def _create_by_rename(
    writer: Writer,
    span: DayRange,
    relation: tuple[str | None, str, str],
    schema: list[exp.Expression],
    comment: str,
) -> None:
    config = writer.config
    # A unique staging name: two processes building at once never share a half-filled table.
    staging = (relation[0], relation[1], f"{relation[2]}__build_{uuid.uuid4().hex[:8]}")
    fill = exp.insert(_day_series(config, span), relation_table(staging), columns=[SPINE_COLUMN])
    if config.engine != "mysql":
        statements_apply(
            writer,
            [
                *schema,
                _create(staging),
                fill,
                _rename(config, staging, relation),
                _comment(config, relation, comment),
            ],
        )
        return
    try:
        for statement in (*schema, _create(staging)):
            writer.run(statement)
        statements_apply(writer, [fill])
        writer.run(_rename(config, staging, relation))
        writer.run(_comment(config, relation, comment))
    finally:
        # After a successful rename there is nothing left to drop; after a failure the staging
        # table would linger, since MySQL cannot roll back its creation.
        try:
            writer.run(exp.Drop(tables=[relation_table(staging)], kind="TABLE", exists=True))
        except WarehouseError:
            logger.warning("could not drop staging table %s", qualified_name(staging))


def _refresh_in_place(
    writer: Writer, span: DayRange, relation: tuple[str | None, str, str], comment: str
) -> None:
    config = writer.config
    statements: list[exp.Expression] = [
        _outside_days(relation, span),
        _missing_days(relation, _day_series(config, span)),
    ]
    if config.engine != "mysql":
        statements.append(_comment(config, relation, comment))
    statements_apply(writer, statements)
    if config.engine == "mysql":
        # ALTER TABLE … COMMENT commits implicitly, so it follows the data transaction.
        writer.run(_comment(config, relation, comment))
