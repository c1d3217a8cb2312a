"""Dimension values: the distinct values of one group-by item, with no metric computed.

Two shapes, as MetricFlow's ``mf list dimension-values``:

* **with metrics**: the values the item takes on the rows the metrics read. The metric
  query ``metrics × group_by=[item]`` is compiled as any other (joins, metric filters, the
  principal's row policies and masks all apply) and wrapped in a SELECT of its key column;
* **without metrics**: the rows of the query without metrics ``group_by=[item]``
  (``dimension_query``: the base model MetricFlow's rule picks, ``dimension_base``, with
  FULL OUTER JOINs to the models the item and the filters live in), masked and row-filtered
  for the principal as that query is.

So a list of values is always the column of the query it is meant to filter: the SQL
API's ``SELECT DISTINCT d``, ``POST /api/v1/query`` with ``group_by: [d]`` and ``tally list
dimension-values --dimension d`` agree. Either way the outer SELECT searches (case-insensitive substring, on the value as the
principal sees it, so a masked column is searched by pseudonym), orders by the value and
limits to ``limit + 1`` rows: the caller learns whether more values exist. Django-free.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlglot
from sqlglot import exp

from registry.definitions.issues import did_you_mean
from semantic.compiler.compile import CompiledQuery, compile_query
from semantic.compiler.dialects import render
from semantic.compiler.dimension_query import dimension_query_compile
from semantic.compiler.manifest import Manifest
from semantic.compiler.principal import Principal
from semantic.compiler.resolve import METRIC_TIME, GroupByItem, parse_group_by, query_error
from semantic.compiler.spec import DIALECTS, MetricQuery

# Bounds of one request: a dropdown asks for a page, never the whole column.
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
MAX_SEARCH = 200
# The derived table the values are read from (the metric query or the model read).
INNER = "dimension_values"

MSG_NEEDS_METRIC = "{name!r} needs a metric: metric_time is the time of a metric's measure"
MSG_BAD_LIMIT = "limit {limit} is out of range"
MSG_SEARCH_TOO_LONG = "search has {length} characters; at most {limit} are accepted"


def dimension_values_compile(
    manifest: Manifest,
    *,
    dimension: str,
    metrics: Sequence[str] = (),
    where: Sequence[str] = (),
    search: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    dialect: str = "duckdb",
    principal: Principal | None = None,
    mask_default: str = "hash",
    descending: bool = False,
    probe: bool = True,
) -> CompiledQuery:
    """Compiles the query of a group-by item's distinct values.

    Args:
        manifest: the release to read.
        dimension: a group-by item (``account__plan``, ``metric_time__month``, ``account``).
        metrics: metrics whose rows the values come from; empty: the query without metrics.
        where: MetricFlow filters (``{{ Dimension('account__region') }} = 'EU'``).
        search: keep values whose text contains this, case-insensitive.
        limit: at most this many values; the SQL reads ``limit + 1`` so that the caller can
            tell the list was cut. None: every value (the SQL API's DISTINCT without LIMIT,
            bounded by its row cap).
        dialect: the warehouse dialect.
        principal: whom the values are for (None: trusted); row policies and masks apply.
        mask_default: the mask of PII columns whose contract does not choose.
        descending: order the values from the largest.
        probe: read ``limit + 1`` rows (False: exactly ``limit``, as a SQL LIMIT).

    Returns:
        A CompiledQuery with one column, named as the item.

    Raises:
        QueryError: unknown or unreachable item or metric, bad limit or search, a filter
            on a masked column.

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> model = {"name": "accounts", "node_relation": {"alias": "accounts",
        ...     "schema_name": "main"}, "entities": [{"name": "account", "type": "primary",
        ...     "expr": "id"}], "dimensions": [{"name": "plan", "type": "categorical"}]}
        >>> m = build_manifest([("semantic_model", "accounts", model, "1.0")])
        >>> print(dimension_values_compile(m, dimension="account__plan", limit=5).sql)
        -- tally release unreleased: dimension values of account__plan
        SELECT
          dimension_values.account__plan AS account__plan
        FROM (
          SELECT
            accounts.plan AS account__plan
          FROM main.accounts AS accounts
          GROUP BY
            1
        ) AS dimension_values
        ORDER BY
          account__plan
        LIMIT 6
    """
    item = parse_group_by(dimension, "dimension")
    _check_request(item, limit, search, dialect, metrics)
    timings: dict[str, float] = {}
    read = limit + 1 if limit is not None and probe else limit
    started = time.perf_counter()
    # Both shapes are the query any other interface would run for the item (MetricFlow's
    # `mf list dimension-values` runs the metric query; `mf query --group-by` without
    # metrics reads the base model dimension_base picks): the values are that query's rows,
    # so no list disagrees with the query it filters. It is already secured and rendered:
    # read it back as the derived table (the header comment is dropped, the outer query
    # gets its own).
    query = MetricQuery(
        metrics=tuple(metrics), group_by=(item.text,), where=tuple(where), dialect=dialect
    )
    compile = compile_query if metrics else dimension_query_compile
    compiled = compile(query, manifest, principal=principal, mask_default=mask_default)
    body = "\n".join(line for line in compiled.sql.splitlines() if not line.startswith("-- tally"))
    inner: exp.Expr = sqlglot.parse_one(body, read=dialect)
    # A bare time dimension is read at its own grain and named so (account__created_at__day).
    column = compiled.columns[0]
    outer = _outer(inner, column, item.text, search, read, descending)
    parameters, versions = compiled.parameters, dict(compiled.versions)
    timings["dimension_values"] = time.perf_counter() - started
    header = f"-- tally release {manifest.release or 'unreleased'}: dimension values of {item.text}"
    if versions:
        header += " for " + ", ".join(f"{m}@{v}" for m, v in versions.items())
    return CompiledQuery(
        sql=header + "\n" + render(outer, dialect),
        dialect=dialect,
        columns=(item.text,),
        release=manifest.release,
        versions=versions,
        timings=timings,
        parameters=parameters,
    )


def _check_request(
    item: GroupByItem, limit: int | None, search: str | None, dialect: str, metrics: Sequence[str]
) -> None:
    if dialect not in DIALECTS:
        raise query_error(
            f"unsupported dialect {dialect!r}",
            code="unsupported_dialect",
            location="dialect",
            hint=did_you_mean(dialect, DIALECTS) or "use one of " + ", ".join(DIALECTS),
        )
    if limit is not None and not 0 <= limit <= MAX_LIMIT:
        raise query_error(
            MSG_BAD_LIMIT.format(limit=limit),
            code="bad_limit",
            location="limit",
            hint=f"use 0 to {MAX_LIMIT:,}",
        )
    if search is not None and len(search) > MAX_SEARCH:
        raise query_error(
            MSG_SEARCH_TOO_LONG.format(length=len(search), limit=MAX_SEARCH),
            code="bad_search",
            location="search",
        )
    if item.element == METRIC_TIME and not metrics:
        raise query_error(
            MSG_NEEDS_METRIC.format(name=item.text),
            code="unreachable_dimension",
            location="dimension",
            hint="pass --metrics with a metric whose values you want by time",
        )


def _outer(
    inner: exp.Expr,
    column: str,
    name: str,
    search: str | None,
    limit: int | None,
    descending: bool,
) -> exp.Select:
    """The item's values from the derived table ``inner`` (its column ``column``), named
    ``name``: searched, ordered and limited."""
    value = exp.column(column, table=INNER)
    select = exp.select(value.as_(name, copy=False), copy=False).from_(
        exp.Subquery(this=inner, alias=exp.TableAlias(this=exp.to_identifier(INNER))), copy=False
    )
    if search:
        # A substring test through each dialect's own function (STRPOS, LOCATE, INSTR…): no
        # LIKE pattern, so % and _ in the search are plain characters.
        text = exp.Lower(this=exp.cast(value.copy(), exp.DataType.build("VARCHAR")))
        found = exp.StrPosition(this=text, substr=exp.Lower(this=exp.Literal.string(search)))
        select = select.where(exp.GT(this=found, expression=exp.Literal.number(0)), copy=False)
    ordered = exp.Ordered(this=exp.column(name))
    if descending:
        ordered.set("desc", True)
    select = select.order_by(ordered, copy=False)
    return select if limit is None else select.limit(limit, copy=False)
