"""Ratio and derived metrics: the metric expression over its inputs' leaf aggregations.

Runs on top of the combined CTEs: a ratio divides (as DOUBLE) its numerator by its
denominator, a derived metric substitutes its inputs into its reviewed ``expr``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from semantic.compiler.definition_guard import derived_definition
from semantic.compiler.division import real_division
from semantic.compiler.manifest import Manifest, Metric
from semantic.compiler.nodes import DOUBLE
from semantic.compiler.plan import (
    Leaf,
    as_tuple,
    conversion_leaves,
    conversion_params,
    input_offset,
    measure_leaf,
    metric_inputs,
)


def metric_value(metric: Metric, manifest: Manifest, leaves: Mapping[str, list[Leaf]]) -> exp.Expr:
    return metric_expr(metric, manifest, ())


def metric_expr(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    offset: tuple[str, str] | None = None,
) -> exp.Expr:
    filters = filters + metric.filters
    params = metric.params
    if metric.type == "conversion":
        base, converted = conversion_leaves(metric, manifest, filters, offset)
        conversions: exp.Expr = exp.column(converted.alias, table="combined")
        if str(conversion_params(metric).get("calculation", "conversion_rate")) == "conversions":
            return conversions
        return exp.Div(
            this=exp.cast(conversions, DOUBLE.copy()),
            expression=exp.Nullif(
                this=exp.column(base.alias, table="combined"), expression=exp.Literal.number(0)
            ),
        )
    if metric.type in ("simple", "cumulative"):
        leaf = measure_leaf(metric, manifest, filters, offset)
        value: exp.Expr = exp.column(leaf.alias, table="combined")
        if leaf.fill_nulls_with is not None:
            # Filled at the input metric, so ratios and derived metrics see the filled value.
            value = exp.Coalesce(this=value, expressions=[exp.Literal.number(leaf.fill_nulls_with)])
        return value
    inputs = metric_inputs(metric)
    values = [
        metric_expr(
            manifest.metrics[ref["name"]],
            manifest,
            filters + as_tuple(ref.get("filter")),
            input_offset(ref, offset, metric.name),
        )
        for ref in inputs
    ]
    if metric.type == "ratio":
        numerator = exp.cast(values[0], DOUBLE.copy())
        return exp.Div(
            this=numerator, expression=exp.Nullif(this=values[1], expression=exp.Literal.number(0))
        )
    # Derived: the expression names inputs by alias (or name); substitute each reference.
    names = {
        ref.get("alias") or ref["name"]: value for ref, value in zip(inputs, values, strict=True)
    }
    # Definitions are data (issue 18): only the inputs' names, literals, operators and
    # allowed functions.
    tree = derived_definition(
        params["expr"], location=f"{metric.name}.type_params.expr", inputs=names
    )
    # Division is real division, as on DuckDB (MetricFlow's reference engine), and a zero
    # denominator gives NULL, as a ratio metric's does, on every engine (MetricFlow shows
    # `inf` for a growth from 0 on DuckDB): the rule of every definition's `/`.
    real_division(tree)

    def substitute(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Column) or node.table or node.name not in names:
            return node
        value = names[node.name].copy()
        return value if isinstance(value, exp.Column) else exp.paren(value, copy=False)

    # transform() (not Column.replace) so that an expression that is just one input's name,
    # `expr: mrr_started_to_date`, is replaced too: the root has no parent to replace it in.
    return tree.transform(substitute, copy=False)
