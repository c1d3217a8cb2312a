"""semantic.compiler.kinds.offset: an input of a derived metric read from an earlier period."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlglot import exp

from semantic.compiler.api import compile_query
from semantic.compiler.definition_sql import definition_expr
from semantic.compiler.filters import filter_conditions
from semantic.compiler.joins import Source
from semantic.compiler.kinds.offset import offset_select
from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import leaves_of
from semantic.compiler.resolve import parse_group_by
from semantic.compiler.spec import MetricQuery


def test_one_month_offset_reads_the_previous_months_value(manifest: Manifest, duck: Any) -> None:
    """revenue_prior_month for each month is the compiled revenue of the month before."""
    _, prior = leaves_of(manifest.metrics["revenue_growth_mom"], manifest, (), ())
    assert prior.offset == ("window", "1 month")
    month = parse_group_by("metric_time__month", "group_by[0]")
    source = Source(manifest.semantic_models["invoices"], manifest, "revenue_growth_mom")
    value = definition_expr(prior.measure.expr, source.alias)
    inner = exp.select(
        source.item_expr(month, prior.measure).as_(month.column),
        aggregate(prior.measure, value).as_(prior.alias),
    )
    inner = source.from_clause(inner)
    for condition in filter_conditions(prior.filters, source, prior.measure, "filter"):
        inner = inner.where(condition)
    inner = inner.group_by(exp.Literal.number(1))
    query = MetricQuery(metrics=("revenue_growth_mom",), group_by=("metric_time__month",))

    shifted = offset_select(inner, [month], [prior], manifest, query, month)

    stage = {
        row[0].date(): row[1] for row in duck.execute(shifted.sql("duckdb")).fetchall() if row[1]
    }
    revenue = compile_query(MetricQuery(metrics=("revenue",), group_by=(month.text,)), manifest)
    by_month = {row[0].date(): row[1] for row in duck.execute(revenue.sql).fetchall()}
    assert stage  # the fixture warehouse has revenue in several months
    for day, prior_value in stage.items():
        previous = (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        assert prior_value == by_month[previous]
