"""Builds and refreshes Tally's time spine atomically (see semantic.warehouse.time_spine).

How a refresh stays atomic (a concurrent reader sees the old spine or the new one):
    * The table is missing: the days go into a staging table with a unique name, which is
      then renamed into place. On DuckDB and PostgreSQL the whole build is one transaction
      (their DDL is transactional); on MySQL/MariaDB, whose DDL commits implicitly, the
      rename is the one atomic step, and a reader never sees the staging table.
    * The table exists: one transaction deletes the days outside the range and inserts the
      missing ones (MVCC on all three engines), so a second refresh with the same range
      changes nothing.

This module is Django-free.
"""

from __future__ import annotations

import logging
import uuid

from sqlglot import exp

from semantic.warehouse.config import WarehouseConfig
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


def _day_series(config: WarehouseConfig, span: DayRange) -> exp.Select:
    """``SELECT … AS date_day`` yielding each day of ``span`` once."""
    if config.engine in ("duckdb", "postgresql"):
        series = exp.GenerateSeries(
            start=exp.cast(string_literal(span.start.isoformat()), exp.DataType.Type.TIMESTAMP),
            end=exp.cast(string_literal(span.end.isoformat()), exp.DataType.Type.TIMESTAMP),
            step=exp.Interval(this=string_literal("1"), unit=exp.Var(this="DAY")),
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
    check_engine(config)
    span = checked_range(span.start, span.end)
    comment = f"Tally time spine {span}" + (f" ({note})" if note else "")
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
    built = spine_read(config, relation)
    logger.info("time spine %s holds %s (%d rows)", qualified_name(relation), span, built.rows)
    return built


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
