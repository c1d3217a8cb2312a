"""A bare time dimension in group-by (``event__received_at``) is read at its own grain and
named after it (``event__received_at__day``), as MetricFlow names it; order-by may still use
the bare name (issue 16: MetricFlow's itests compare column names)."""

from __future__ import annotations

from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def test_bare_local_time_dimension_is_named_at_its_grain(manifest: Manifest, duck: Any) -> None:
    """events_tracked by event__received_at: the column is event__received_at__day and the
    rows are those of the explicit __day spelling."""
    bare = compile_query(
        MetricQuery(metrics=("events_tracked",), group_by=("event__received_at",)), manifest
    )
    explicit = compile_query(
        MetricQuery(metrics=("events_tracked",), group_by=("event__received_at__day",)), manifest
    )
    assert bare.columns == ("event__received_at__day", "events_tracked")
    assert sorted(duck.execute(bare.sql).fetchall()) == sorted(
        duck.execute(explicit.sql).fetchall()
    )


def test_bare_joined_time_dimension_is_named_at_its_grain(manifest: Manifest, duck: Any) -> None:
    """Through a join (events → accounts) the name gets the grain too, after metric_time."""
    compiled = compile_query(
        MetricQuery(
            metrics=("events_tracked",), group_by=("account__created_at", "metric_time__month")
        ),
        manifest,
    )
    assert compiled.columns == ("metric_time__month", "account__created_at__day", "events_tracked")
    assert duck.execute(compiled.sql).fetchall()


def test_order_by_the_bare_name_orders_the_renamed_column(manifest: Manifest, duck: Any) -> None:
    """order_by may name the item as it was requested; descending order is kept."""
    compiled = compile_query(
        MetricQuery(
            metrics=("events_tracked",),
            group_by=("event__received_at",),
            order_by=("-event__received_at",),
            limit=3,
        ),
        manifest,
    )
    days = [row[0] for row in duck.execute(compiled.sql).fetchall()]
    assert days == sorted(days, reverse=True) and len(days) == 3


def test_a_categorical_dimension_keeps_its_name(manifest: Manifest) -> None:
    """Only time dimensions get a grain suffix."""
    compiled = compile_query(
        MetricQuery(metrics=("events_tracked",), group_by=("event__event_type",)), manifest
    )
    assert compiled.columns == ("event__event_type", "events_tracked")


MONTHLY = {
    "name": "budgets",
    "model": "ref('budgets')",
    "defaults": {"agg_time_dimension": "budget_month"},
    "entities": [{"name": "budget", "type": "primary", "expr": "id"}],
    "dimensions": [
        {"name": "budget_month", "type": "time", "type_params": {"time_granularity": "month"}},
        {"name": "approved_at", "type": "time", "type_params": {"time_granularity": "day"}},
    ],
    "measures": [{"name": "budget", "agg": "sum", "expr": "amount"}],
}


def _monthly() -> Manifest:
    metric = {"name": "budget", "type": "simple", "type_params": {"measure": "budget"}}
    return build_manifest(
        [("semantic_model", "budgets", MONTHLY, "1"), ("metric", "budget", metric, "1")]
    )


@pytest.mark.parametrize(
    ("item", "column"),
    [
        ("budget__budget_month", "budget__budget_month__month"),
        ("budget__approved_at", "budget__approved_at__day"),
        ("metric_time", "metric_time__month"),
    ],
)
def test_the_suffix_is_the_dimension_own_grain(item: str, column: str) -> None:
    """A monthly dimension is named __month (its data grain), a daily one __day."""
    compiled = compile_query(MetricQuery(metrics=("budget",), group_by=(item,)), _monthly())
    assert compiled.columns[0] == column


def test_an_unknown_bare_item_is_still_refused_by_name() -> None:
    """The rename does not hide a misspelt item: the refusal names what was asked."""
    with pytest.raises(QueryError) as caught:
        compile_query(
            MetricQuery(metrics=("budget",), group_by=("budget__aproved_at",)), _monthly()
        )
    assert "budget__aproved_at" in caught.value.message


ORDERS: dict[str, Any] = {
    "name": "orders",
    "model": "ref('orders')",
    "defaults": {"agg_time_dimension": "ordered_at"},
    "entities": [{"name": "order", "type": "primary", "expr": "id"}],
    "dimensions": [
        {"name": "ordered_at", "type": "time", "type_params": {"time_granularity": "day"}}
    ],
    "measures": [{"name": "orders", "agg": "count", "expr": "id"}],
}
ORDER_METRICS: list[dict[str, Any]] = [
    {"name": "orders", "type": "simple", "type_params": {"measure": "orders"}},
    {
        "name": "orders_monthly",
        "type": "simple",
        "type_params": {"measure": "orders"},
        "time_granularity": "month",
    },
    {
        "name": "orders_doubled",
        "type": "derived",
        "type_params": {"expr": "orders_monthly * 2", "metrics": [{"name": "orders_monthly"}]},
    },
]


@pytest.mark.parametrize(
    ("metrics", "column"),
    [
        (("orders",), "metric_time__day"),
        (("orders_monthly",), "metric_time__month"),
        (("orders", "orders_monthly"), "metric_time__month"),
        # MetricFlow ignores an input metric's time_granularity.
        (("orders_doubled",), "metric_time__day"),
    ],
)
def test_bare_metric_time_takes_the_metrics_own_time_granularity(
    metrics: tuple[str, ...], column: str
) -> None:
    """A metric's time_granularity is its default grain for a bare metric_time (MetricFlow's
    itest max_agg: largest_listing by metric_time is by month); several metrics take the
    coarsest default."""
    rows: list[tuple[str, str, Any, str]] = [("semantic_model", "orders", ORDERS, "1")]
    rows += [("metric", m["name"], m, "1") for m in ORDER_METRICS]
    compiled = compile_query(
        MetricQuery(metrics=metrics, group_by=("metric_time",)), build_manifest(rows)
    )
    assert compiled.columns[0] == column


def test_a_time_range_without_metric_time_covers_whole_periods_of_monthly_data() -> None:
    """start/end 2020-01-15..2020-02-15 on monthly data grouped by another item reads the
    January and February rows whole (MetricFlow widens to the metrics' grain), not only the
    February row that falls inside the dates."""
    compiled = compile_query(
        MetricQuery(
            metrics=("budget",),
            group_by=("budget__approved_at",),
            start_time="2020-01-15",
            end_time="2020-02-15",
        ),
        _monthly(),
    )
    assert "CAST('2020-01-01 00:00:00' AS TIMESTAMP)" in compiled.sql
    assert "CAST('2020-03-01 00:00:00' AS TIMESTAMP)" in compiled.sql
