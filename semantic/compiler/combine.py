"""Combine: merge the aggregation CTEs on the group-by keys, then order and limit.

The result has the rows of MetricFlow's FULL OUTER JOIN on the group-by keys: a key present
in one aggregation only still appears, with NULLs for the others (see ``combine_ctes`` for
why it is written as a UNION of keys with null-safe LEFT JOINs, and on Spark as one GROUP BY
over a UNION ALL of the aggregations).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from registry.definitions.issues import did_you_mean
from semantic.compiler.grains import ALL_GRAINS
from semantic.compiler.nodes import append_join, cte_ref
from semantic.compiler.resolve import item_name, query_error
from semantic.compiler.spec import MetricQuery

# Engines that run a CTE at each of its references (Spark inlines every deterministic CTE):
# the union of keys reads each aggregation twice there, a conversion's join included, so
# they group a UNION ALL of the aggregations instead, each read once (bench sql_speed
# --engine spark: the conversion case ran 17 Spark jobs instead of 13 with FULL OUTER
# JOINs; see ``union_grouped`` for why not those).
UNION_GROUP_DIALECTS = frozenset({"spark", "databricks"})


def combine_ctes(
    ctes: list[tuple[str, exp.Select]], keys: list[str], dialect: str = "duckdb"
) -> exp.Expr:
    """Merges the aggregations into one row per group-by key, as one subquery.

    MetricFlow FULL OUTER JOINs the aggregations. Here the distinct keys of all of them (a
    UNION, which also merges NULL keys) LEFT JOIN each aggregation null-safely: the same rows,
    and it runs everywhere (MySQL/MariaDB have no FULL JOIN; PostgreSQL refuses a FULL JOIN on
    a null-safe condition). Each aggregation is unique per key, so nothing fans out. On
    ``FULL_JOIN_DIALECTS``, null-safe FULL OUTER JOINs (``full_joined``): the same rows.
    """
    if len(ctes) == 1:
        return (
            exp.select(exp.Star(), copy=False)
            .from_(cte_ref(ctes[0][0]), copy=False)
            .subquery("combined", copy=False)
        )
    values = [(name, [c.alias_or_name for c in cte.expressions[len(keys) :]]) for name, cte in ctes]
    if not keys:
        select = exp.select(
            *[exp.column(v, table=n) for n, names in values for v in names], copy=False
        )
        select = select.from_(cte_ref(ctes[0][0]), copy=False)
        for name, _ in ctes[1:]:
            select = append_join(select, cte_ref(name), kind="CROSS")
        return select.subquery("combined", copy=False)
    if dialect in UNION_GROUP_DIALECTS:
        return union_grouped(values, keys).subquery("combined", copy=False)
    union: exp.Query = exp.select(*[exp.column(k) for k in keys], copy=False).from_(
        cte_ref(ctes[0][0]), copy=False
    )
    for name, _ in ctes[1:]:
        branch = exp.select(*[exp.column(k) for k in keys], copy=False).from_(
            cte_ref(name), copy=False
        )
        union = exp.union(union, branch, distinct=True, copy=False)
    select = exp.select(
        *[exp.column(k, table="all_keys") for k in keys],
        *[exp.column(v, table=n) for n, names in values for v in names],
        copy=False,
    ).from_(union.subquery("all_keys", copy=False), copy=False)
    for name, _ in ctes:
        condition = exp.and_(
            *[
                exp.NullSafeEQ(
                    this=exp.column(k, table="all_keys"), expression=exp.column(k, table=name)
                )
                for k in keys
            ],
            copy=False,
        )
        select = append_join(select, cte_ref(name), on=condition, side="LEFT")
    return select.subquery("combined", copy=False)


def union_grouped(values: list[tuple[str, list[str]]], keys: list[str]) -> exp.Select:
    """The aggregations (name, value columns) as one UNION ALL, each row NULL in the other
    aggregations' values, grouped by the keys: ``MAX`` of a value is the one row its
    aggregation has for the key, or NULL where it has none.

    GROUP BY puts NULL keys in one group, so the keys match null-safely, as MetricFlow's
    FULL OUTER JOIN does. On Spark a null-safe join hashes ``COALESCE(key, …)`` and
    ``key IS NULL``, so a FULL OUTER JOIN shuffled each aggregation again by those (two
    more stages for two aggregations); the GROUP BY shuffles the union's rows once, by the
    key each aggregation is already grouped by (bench sql_speed --engine spark, the
    conversion rate by month: 11 stages to the hand query's 9 with the join, 9 with this).
    """
    rows: exp.Query | None = None
    for name, _ in values:
        # Spark types each NULL as its UNION column, the other branch's value type.
        own_or_null = [
            exp.column(v) if other == name else exp.Null().as_(v, copy=False)
            for other, columns in values
            for v in columns
        ]
        branch = exp.select(*[exp.column(k) for k in keys], *own_or_null, copy=False)
        branch = branch.from_(cte_ref(name), copy=False)
        rows = branch if rows is None else exp.union(rows, branch, distinct=False, copy=False)
    assert rows is not None
    return (
        exp.select(
            *[exp.column(k, table="all_rows") for k in keys],
            *[
                exp.Max(this=exp.column(v, table="all_rows")).as_(v, copy=False)
                for _, columns in values
                for v in columns
            ],
            copy=False,
        )
        .from_(rows.subquery("all_rows", copy=False), copy=False)
        .group_by(*[exp.column(k, table="all_rows") for k in keys], copy=False)
    )


def order_limit(
    select: exp.Select, query: MetricQuery, keys: list[str], custom_grains: tuple[str, ...] = ()
) -> exp.Select:
    outputs = [*keys, *query.metrics]
    for index, raw in enumerate(query.order_by):
        text = raw.strip()
        descending = text.startswith("-")
        if text.replace(" ", "").endswith(".descending(True)"):
            # MetricFlow's object syntax: TimeDimension('metric_time', 'month').descending(True)
            descending, text = True, text[: text.rindex(".descending")]
        name = item_name(text.lstrip("-"), f"order_by[{index}]", custom_grains)
        name = output_column(name, keys, query.metrics) or name
        if name not in outputs:
            raise query_error(
                f"cannot order by {name!r}: it is not an output of the query",
                code="bad_order_by",
                location=f"order_by[{index}]",
                hint=did_you_mean(name, outputs) or "order by a requested metric or group-by item",
            )
        select = select.order_by(exp.Ordered(this=exp.column(name), desc=descending), copy=False)
    if query.limit is not None:
        # An int would go through the parser (its text "N"); the literal is the same node.
        limit = query.limit
        value = exp.Literal.number(limit) if type(limit) is int else limit
        select = select.limit(value, copy=False)
    return select


def output_column(name: str, keys: Sequence[str], metrics: Sequence[str]) -> str | None:
    """The output column ``name`` stands for (order_by and having read names so): itself;
    a bare metric_time or time dimension named after its grain (``metric_time`` →
    ``metric_time__day``, as query.resolve_items renamed it); an item named by the end of
    its entity path (``user__x`` → ``listing__user__x``, query.with_whole_path), never a
    bare name (``day`` is not ``metric_time__day``); None when it names no output.

    Example:
        >>> output_column("metric_time", ["metric_time__month", "account__plan"], ["revenue"])
        'metric_time__month'
        >>> output_column("cost", ["account__plan"], ["revenue"]) is None
        True
    """
    if name in keys or name in metrics:
        return name
    bare = next((k for k in keys if k.rpartition("__")[::2] in _grained(name)), None)
    if bare is not None:
        return bare
    if "__" in name:
        whole = [k for k in keys if k.endswith(f"__{name}") or _ends_grained(k, name)]
        if len(whole) == 1:
            return whole[0]
    return None


def _ends_grained(key: str, name: str) -> bool:
    """Whether ``key`` is ``name`` behind a longer entity path, with a grain appended."""
    stem, _, grain = key.rpartition("__")
    return grain in ALL_GRAINS and stem.endswith(f"__{name}")


def _grained(name: str) -> set[tuple[str, str]]:
    """(name, grain) pairs a bare time item ``name`` may have been renamed to."""
    return {(name, grain) for grain in ALL_GRAINS}
