"""Simple metrics: a measure's aggregation function as a sqlglot expression.

Every kind reads its measures through ``aggregate``; ``PARTIAL_AGGREGATIONS`` lists how the
aggregations re-aggregate over a cumulative window.
"""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.manifest import Measure
from semantic.compiler.nodes import INT
from semantic.compiler.plan import MSG_UNSUPPORTED
from semantic.compiler.resolve import query_error

AGGREGATIONS = {
    "sum": lambda e: exp.Sum(this=e),
    "max": lambda e: exp.Max(this=e),
    "min": lambda e: exp.Min(this=e),
    "average": lambda e: exp.Avg(this=e),
    "count": lambda e: exp.Count(this=e),
    "count_distinct": lambda e: exp.Count(this=exp.Distinct(expressions=[e])),
    "sum_boolean": lambda e: exp.Sum(this=exp.Cast(this=e, to=INT.copy())),
}


# How partial aggregates of a decomposable aggregation combine: daily sums and counts add
# up, minima and maxima take the min/max again.
PARTIAL_AGGREGATIONS = {
    "sum": lambda e: exp.Sum(this=e),
    "count": lambda e: exp.Sum(this=e),
    "sum_boolean": lambda e: exp.Sum(this=e),
    "min": lambda e: exp.Min(this=e),
    "max": lambda e: exp.Max(this=e),
}


def aggregate(measure: Measure, value: exp.Expr) -> exp.Expr:
    if measure.agg in AGGREGATIONS:
        return AGGREGATIONS[measure.agg](value)
    if measure.agg in ("median", "percentile"):
        quantile = 0.5 if measure.agg == "median" else float(measure.percentile or 0.5)
        cls = exp.PercentileDisc if measure.use_discrete_percentile else exp.PercentileCont
        return exp.WithinGroup(
            this=cls(this=exp.Literal.number(quantile)),
            expression=exp.Order(expressions=[exp.Ordered(this=value)]),
        )
    raise query_error(
        MSG_UNSUPPORTED.format(what=f"aggregation {measure.agg!r}"),
        code="unsupported_metric",
        location=measure.name,
    )
