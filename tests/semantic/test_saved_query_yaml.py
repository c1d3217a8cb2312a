"""Explore's query written as a dbt saved query: group-bys in dbt's object syntax."""

from __future__ import annotations

import yaml

from semantic.compiler.spec import MetricQuery
from semantic.saved_query_file import saved_query_yaml

GRAINS = ("hour", "day", "week", "month", "quarter", "year", "fiscal_quarter")


def test_items_become_dbt_objects_and_the_file_parses() -> None:
    query = MetricQuery(
        metrics=("revenue", "mrr"),
        group_by=("metric_time__fiscal_quarter", "account__plan", "metric_time__extract_dow",
                  "account__created_at__month"),
        where=("{{ Dimension('account__plan') }} <> 'free'",),
        order_by=("-account__plan", "revenue", "-mrr"),
        limit=50,
    )  # fmt: skip
    text = saved_query_yaml(
        name="rev", label="Rev", owner="finance-data", domain="revenue", query=query, grains=GRAINS
    )
    (saved,) = yaml.safe_load(text)["saved_queries"]
    assert saved["config"] == {"meta": {"owner": "finance-data", "domain": "revenue"}}
    params = saved["query_params"]
    assert params["group_by"] == [
        "TimeDimension('metric_time', 'fiscal_quarter')",
        "Dimension('account__plan')",
        "TimeDimension('metric_time', date_part_name='dow')",
        "TimeDimension('account__created_at', 'month')",
    ]
    assert params["order_by"] == [
        "Dimension('account__plan').descending(True)",
        "Metric('revenue')",
        "Metric('mrr').descending(True)",
    ]
    assert params["where"] == ["{{ Dimension('account__plan') }} <> 'free'"]
    assert params["limit"] == 50 and params["metrics"] == ["revenue", "mrr"]
