"""The queries that check definitions against the warehouse, as ``mf validate-configs`` does.

For every semantic model: its table can be read; every entity, dimension and measure
expression binds against that table with a compatible type (a time dimension truncates to
its grain, a measure aggregates with its ``agg``); every dimension's values can be selected.
The queries are built here, Django-free, for a dialect; ``semantic.warehouse.definitions_check``
runs them and turns failures into issues at the definition's ``file:line``.

Binding probes read no rows (``WHERE 1 = 0``: the engine still resolves every column and
function, so a misspelled column or a SUM over text fails); value probes read one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.grains import GRAINS
from semantic.compiler.manifest import Manifest, SemanticModel
from semantic.compiler.time import trunc

ALIAS = "t"
# DSI aggregations → an aggregate that binds with the same argument types.
AGGREGATES = {
    "sum": exp.Sum,
    "sum_boolean": exp.Sum,
    "average": exp.Avg,
    "min": exp.Min,
    "max": exp.Max,
    "count": exp.Count,
    "count_distinct": exp.Count,
    "median": exp.Max,  # any aggregate over a sortable argument: the type check that matters
    "percentile": exp.Max,
}
_MORE_THAN_ONE = exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))


@dataclass(frozen=True)
class Probe:
    """One check query: which model and element it checks, and the SQL."""

    model: str
    element: str  # "table", "dimension 'plan'", "measure 'revenue'", "entity 'account'"
    expr: str | None
    sql: str
    reads_rows: bool = False
    # A key probe: any row it returns is a finding (a key value held by several rows).
    finds_rows: bool = False


def _table(model: SemanticModel) -> exp.Table:
    database, schema, table = model.relation
    return exp.table_(table, db=schema, catalog=database, alias=ALIAS)


def _select(value: exp.Expr, model: SemanticModel, *, bind_only: bool, dialect: str) -> str:
    query = exp.select(value.as_("probe"), copy=False).from_(_table(model))
    query = query.where("1 = 0") if bind_only else query.limit(1)
    return query.sql(dialect=dialect)


def model_probes(model: SemanticModel, dialect: str) -> list[Probe]:
    """The probes of one semantic model, the table first.

    Example:
        >>> from semantic.compiler.manifest import Dimension
        >>> m = SemanticModel("orders", (None, "main", "orders"), {}, {"ordered_at":
        ...     Dimension("ordered_at", "time", "ordered_at", "day")}, {}, None)
        >>> [p.sql for p in model_probes(m, "duckdb")][1]
        "SELECT DATE_TRUNC('DAY', t.ordered_at) AS probe FROM main.orders AS t WHERE 1 = 0"
    """
    probes = [
        Probe(
            model.name,
            "table",
            None,
            exp.select(exp.Star(), copy=False)
            .from_(_table(model))
            .where("1 = 0")
            .sql(dialect=dialect),
        )
    ]
    for entity in model.entities.values():
        value = definition_expr(entity.expr, ALIAS)
        probes.append(
            Probe(
                model.name,
                f"entity {entity.name!r}",
                entity.expr,
                _select(value, model, bind_only=True, dialect=dialect),
            )
        )
    probes += key_probes(model, dialect)
    for dim in model.dimensions.values():
        value = definition_expr(dim.expr, ALIAS)
        if dim.type == "time":
            grain = dim.grain if dim.grain in GRAINS else "day"
            value = trunc(value, grain)
        element = f"dimension {dim.name!r}"
        probes.append(
            Probe(
                model.name,
                element,
                dim.expr,
                _select(value, model, bind_only=True, dialect=dialect),
            )
        )
        # The values themselves: a cast or function that only fails on data fails here.
        probes.append(
            Probe(
                model.name,
                element,
                dim.expr,
                _select(value.copy(), model, bind_only=False, dialect=dialect),
                reads_rows=True,
            )
        )
    for measure in model.measures.values():
        value = definition_expr(measure.expr, ALIAS)
        aggregate = AGGREGATES.get(measure.agg, exp.Max)
        if measure.agg == "count_distinct":
            value = exp.Distinct(expressions=[value])
        elif measure.agg == "sum_boolean":
            value = exp.Cast(this=value, to=exp.DataType.build("int"))
        probes.append(
            Probe(
                model.name,
                f"measure {measure.name!r}",
                measure.expr,
                _select(aggregate(this=value), model, bind_only=True, dialect=dialect),
            )
        )
    return probes


def key_probes(model: SemanticModel, dialect: str) -> list[Probe]:
    """One probe per primary or unique entity: a key value on several rows (per partition,
    for a partitioned model). Joins trust the declared key, so data that breaks it would
    multiply every measure joined through it; the probe returns one such key, or nothing.
    The natural key of an SCD type II model gets one probe too: a key with two rows whose
    validity windows overlap (see ``_valid_together``; it returns the key, the window the
    rows share and how many rows share it).

    Example:
        >>> from semantic.compiler.manifest import Entity
        >>> m = SemanticModel("users", (None, "main", "users"), {"user": Entity("user",
        ...     "primary", "id")}, {}, {}, None)
        >>> key_probes(m, "duckdb")[0].sql
        'SELECT t.id AS probe FROM main.users AS t WHERE NOT t.id IS NULL GROUP BY t.id HAVING COUNT(*) > 1 LIMIT 1'
    """
    parts = [definition_expr(d.expr, ALIAS) for d in model.dimensions.values() if d.is_partition]
    probes = []
    for entity in model.entities.values():
        if entity.type == "natural" and model.validity is not None:
            # An SCD type II key: unique at any one time (windows of one key never overlap).
            overlap = _valid_together(model, entity.name, window=True).limit(1)
            probes.append(
                Probe(
                    model.name,
                    f"entity {entity.name!r}",
                    entity.expr,
                    overlap.sql(dialect=dialect),
                    reads_rows=True,
                    finds_rows=True,
                )
            )
        if entity.type not in ("primary", "unique"):
            continue
        key = definition_expr(entity.expr, ALIAS)
        query = (
            exp.select(key.as_("probe"), copy=False)
            .from_(_table(model))
            .where(exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))
            .group_by(key.copy(), *(p.copy() for p in parts))
            .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1)))
            .limit(1)
        )
        probes.append(
            Probe(
                model.name,
                f"entity {entity.name!r}",
                entity.expr,
                query.sql(dialect=dialect),
                reads_rows=True,
                finds_rows=True,
            )
        )
    return probes


def key_repeats_sql(model: SemanticModel, entity_name: str, dialect: str) -> str:
    """How many values of a join key the data holds on several rows, and the most rows one
    value holds, as one row ``(repeated_keys, most_rows)``: ``(0, NULL)`` while the key holds.

    A key is unique per partition (a partitioned model's joins match the partitions too);
    the natural key of an SCD type II model is unique at any one time: for each (key, start
    of a validity window) the rows valid then are counted, windows compared at their grains as
    the validity join compares them. Key values never leave the warehouse, only counts.

    Example:
        >>> from semantic.compiler.manifest import Entity
        >>> m = SemanticModel("users", (None, "main", "users"), {"user": Entity("user",
        ...     "primary", "id")}, {}, {}, None)
        >>> key_repeats_sql(m, "user", "duckdb")
        'SELECT COUNT(DISTINCT r.k) AS repeated_keys, MAX(r.n) AS most_rows FROM (SELECT t.id AS k, COUNT(*) AS n FROM main.users AS t WHERE NOT t.id IS NULL GROUP BY t.id HAVING COUNT(*) > 1) AS r'
    """
    entity = model.entities[entity_name]
    if entity.type == "natural" and model.validity is not None:
        inner = _valid_together(model, entity_name)
    else:
        key = definition_expr(entity.expr, ALIAS)
        parts = [d for d in model.dimensions.values() if d.is_partition]
        inner = (
            exp.select(key.as_("k"), exp.Count(this=exp.Star()).as_("n"))
            .from_(_table(model))
            .where(exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))
            .group_by(key.copy(), *(definition_expr(p.expr, ALIAS) for p in parts))
            .having(_MORE_THAN_ONE.copy())
        )
    return (
        exp.select(
            exp.Count(this=exp.Distinct(expressions=[exp.column("k", table="r")])).as_(
                "repeated_keys"
            ),
            exp.Max(this=exp.column("n", table="r")).as_("most_rows"),
        )
        .from_(inner.subquery("r"))
        .sql(dialect=dialect)
    )


def _valid_together(model: SemanticModel, entity_name: str, *, window: bool = False) -> exp.Select:
    """The keys of an SCD type II model held by several rows at one time: for each key (and
    partition) and each instant one of its windows opens, the rows valid then, kept where
    there are several. Windows are compared at their dimensions' grains, as the validity
    join compares them, and half-open: a window ending on the day the next opens is no
    overlap. Rows ``(k, n)``; with ``window`` also ``valid_from`` (the instant) and
    ``valid_to`` (the earliest end among those rows, NULL when all are open), the span all
    of them share, ordered by key and instant so the example given is stable.

    Both the query-time key guard (``key_repeats_sql``) and ``tally validate --warehouse``
    (``key_probes``) ask this one query, so the two never disagree about an overlap.
    """
    entity = model.entities[entity_name]
    assert model.validity is not None
    key = definition_expr(entity.expr, ALIAS)
    parts = [d for d in model.dimensions.values() if d.is_partition]
    start, end = (model.dimensions[name] for name in model.validity)

    def at(dim: Any, alias: str) -> exp.Expr:
        return trunc(definition_expr(dim.expr, alias), dim.grain or "day")

    # Every instant a window opens, per key (and partition): the rows valid then.
    instants = (
        exp.select(
            key.as_("k"),
            at(start, ALIAS).as_("at"),
            *(definition_expr(p.expr, ALIAS).as_(f"p{i}") for i, p in enumerate(parts)),
        )
        .distinct()
        .from_(_table(model))
        .where(exp.Not(this=exp.Is(this=key.copy(), expression=exp.Null())))
    )
    condition: exp.Expr = exp.EQ(
        this=exp.column("k", table="a"), expression=definition_expr(entity.expr, "b")
    )
    for i, p in enumerate(parts):
        condition = exp.and_(
            condition,
            exp.EQ(this=exp.column(f"p{i}", table="a"), expression=definition_expr(p.expr, "b")),
        )
    moment = exp.column("at", table="a")
    condition = exp.and_(
        condition,
        exp.LTE(this=at(start, "b"), expression=moment.copy()),
        exp.paren(
            exp.or_(
                exp.LT(this=moment.copy(), expression=at(end, "b")),
                exp.Is(this=definition_expr(end.expr, "b"), expression=exp.Null()),
            )
        ),
    )
    database, schema, table = model.relation
    columns: list[exp.Expr] = [
        exp.column("k", table="a").as_("k"),
        exp.Count(this=exp.Star()).as_("n"),
    ]
    if window:
        columns += [moment.copy().as_("valid_from"), exp.Min(this=at(end, "b")).as_("valid_to")]
    query = (
        exp.select(*columns)
        .from_(instants.subquery("a"))
        .join(exp.table_(table, db=schema, catalog=database, alias="b"), on=condition)
        .group_by(
            exp.column("k", table="a"),
            moment.copy(),
            *(exp.column(f"p{i}", table="a") for i in range(len(parts))),
        )
        .having(_MORE_THAN_ONE.copy())
    )
    if window:
        query = query.order_by(exp.column("k", table="a"), moment.copy())
    return query


def manifest_probes(manifest: Manifest, dialect: str) -> list[Probe]:
    """Every semantic model's probes, models in name order."""
    return [
        probe
        for name in sorted(manifest.semantic_models)
        for probe in model_probes(manifest.semantic_models[name], dialect)
    ]


def columns_read(expr: str) -> list[str]:
    """The column names an expression reads (for did-you-mean on a missing column).

    Example:
        >>> columns_read("CASE WHEN amount > 0 THEN amount_usd END")
        ['amount', 'amount_usd']
    """
    try:
        tree = sqlglot.parse_one(expr)
    except sqlglot.errors.ParseError:
        return []
    names: list[str] = []
    for column in tree.find_all(exp.Column, bfs=False):
        if column.name and column.name not in names:
            names.append(column.name)
    return names
