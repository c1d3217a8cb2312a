"""The fan-out probe of the MetricFlow itest runner (scripts/metricflow/fan_out.py), without
a MetricFlow checkout: which metrics and group-by items it probes, and its NULL-safe sums."""

from __future__ import annotations

import sys
from decimal import Decimal

from semantic.compiler.api import queryable_items
from semantic.compiler.manifest import Manifest, build_manifest
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "metricflow"))

import fan_out

ORDERS = {
    "name": "orders",
    "model": "ref('orders')",
    "defaults": {"agg_time_dimension": "ordered_at"},
    "entities": [
        {"name": "order", "type": "primary", "expr": "id"},
        {"name": "customer", "type": "foreign", "expr": "customer_id"},
    ],
    "dimensions": [
        {"name": "ordered_at", "type": "time", "type_params": {"time_granularity": "day"}},
        {"name": "status", "type": "categorical"},
    ],
    "measures": [
        {"name": "amount", "agg": "sum"},
        {"name": "order_rows", "agg": "count", "expr": "id"},
        {"name": "top_amount", "agg": "max", "expr": "amount"},
        {"name": "buyers", "agg": "count_distinct", "expr": "customer_id"},
        {
            "name": "open_amount",
            "agg": "sum",
            "expr": "amount",
            "non_additive_dimension": {"name": "ordered_at", "window_choice": "max"},
        },
    ],
}
CUSTOMERS = {
    "name": "customers",
    "model": "ref('customers')",
    "entities": [{"name": "customer", "type": "primary", "expr": "id"}],
    "dimensions": [{"name": "region", "type": "categorical"}],
}


def _simple(name: str, measure: object) -> tuple[str, str, dict[str, object], str]:
    spec = {"name": name, "type": "simple", "type_params": {"measure": measure}}
    return ("metric", name, spec, "1.0")


def manifest() -> Manifest:
    rows = [
        ("semantic_model", "orders", ORDERS, "1.0"),
        ("semantic_model", "customers", CUSTOMERS, "1.0"),
        _simple("revenue", "amount"),
        _simple("orders_n", {"name": "order_rows", "filter": "{{ Dimension('order__status') }} = 'x'"}),
        _simple("top", "top_amount"),
        _simple("buyers_n", "buyers"),
        _simple("open_revenue", "open_amount"),
        _simple("revenue_filled", {"name": "amount", "fill_nulls_with": 0}),
        _simple("revenue_spine", {"name": "amount", "join_to_timespine": True}),
        ("metric", "aov", {"name": "aov", "type": "ratio", "type_params":
            {"numerator": "revenue", "denominator": "orders_n"}}, "1.0"),
    ]  # fmt: skip
    return build_manifest(rows, release="probe")


def test_only_plain_sum_and_count_simple_metrics_are_probed() -> None:
    """max, count_distinct, semi-additive, null-filled, spine-joined and ratio metrics are left
    out: their groups need not add up to the total."""
    m = manifest()
    assert fan_out.additive_metrics(m.metrics, m.measures) == ["orders_n", "revenue"]


def test_items_are_each_dimension_once_without_grains_or_date_parts() -> None:
    items, capped = fan_out.probe_items(queryable_items(manifest(), "revenue"))
    assert "customer__region" in items and "order__status" in items and "customer" in items
    assert "metric_time" in items and "order__ordered_at" in items
    assert not [i for i in items if i.endswith(("__month", "__day", "__hour", "__extract_dow"))]
    assert capped == 0
    few, capped = fan_out.probe_items(queryable_items(manifest(), "revenue"), cap=2)
    assert len(few) == 2 and capped == len(items) - 2


def test_group_sums_are_null_safe_and_compare_within_float_tolerance() -> None:
    rows = [("a", 0.1), ("b", 0.2), (None, None), ("c", Decimal("0.3"))]
    grouped = fan_out.groups_total(rows, 1)
    assert fan_out.totals_equal(grouped, fan_out.number(0.6))
    assert fan_out.totals_equal(fan_out.groups_total([(None, None)], 1), fan_out.number(None))
    assert not fan_out.totals_equal(grouped, fan_out.number(1.2))
    assert not fan_out.totals_equal(Decimal("1000000001"), Decimal("1000000000"))


def test_a_difference_quotes_the_joins_of_the_compiled_sql() -> None:
    sql = "SELECT 1\nFROM t AS a\n  LEFT JOIN u AS b\n    ON a.k = b.k\nGROUP BY 1"
    assert fan_out.join_lines(sql) == ["LEFT JOIN u AS b"]
