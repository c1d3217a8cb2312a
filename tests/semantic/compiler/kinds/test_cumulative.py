"""semantic.compiler.kinds.cumulative: running values over a trailing window, to date, all time."""

from __future__ import annotations

from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.joins import Source
from semantic.compiler.kinds.cumulative import MSG_WINDOW_WITHOUT_TIME, cumulative_select
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import leaves_of
from semantic.compiler.resolve import parse_group_by
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def _select(manifest: Manifest, metric: str, query: MetricQuery) -> Any:
    leaves = leaves_of(manifest.metrics[metric], manifest, (), ())
    source = Source(manifest.semantic_models[leaves[0].measure.semantic_model], manifest, metric)
    items = [parse_group_by(g, f"group_by[{i}]") for i, g in enumerate(query.group_by)]
    return cumulative_select(source, items, leaves, [], manifest, query, leaves[0].measure)


def test_trailing_window_per_day_matches_the_compiled_metric(manifest: Manifest, duck: Any) -> None:
    """The stage's own SELECT gives weekly_active_users per day, as the whole compile does."""
    query = MetricQuery(
        metrics=("weekly_active_users",),
        group_by=("metric_time__day",),
        start_time="2026-01-01",
        end_time="2026-01-20",
    )
    stage = duck.execute(_select(manifest, "weekly_active_users", query).sql("duckdb")).fetchall()
    compiled = duck.execute(compile_query(query, manifest).sql).fetchall()
    assert sorted(stage) == sorted(compiled)
    assert len(stage) == 20


def test_window_without_metric_time_is_refused(manifest: Manifest) -> None:
    """A trailing window is defined per day: grouping by account alone is an error."""
    query = MetricQuery(metrics=("weekly_active_users",), group_by=("account",))
    with pytest.raises(QueryError) as info:
        _select(manifest, "weekly_active_users", query)
    assert info.value.message == MSG_WINDOW_WITHOUT_TIME.format(name="active_users")


def test_seven_day_sum_without_groups_is_a_running_window(manifest: Manifest, duck: Any) -> None:
    """Issue 17: a trailing sum without groups is a running window over the day spine (no
    range join), with the range join's days and values: each day whose 7 days have paid
    invoices, and their sum."""
    from dataclasses import replace

    from semantic.compiler.manifest import Metric

    spec = {
        "name": "revenue_7d",
        "type": "cumulative",
        "type_params": {
            "measure": {
                "name": "invoice_amount",
                "filter": "{{ Dimension('invoice__status') }} = 'paid'",
            },
            "cumulative_type_params": {"window": "7 days"},
        },
    }
    extended = replace(
        manifest,
        metrics={**manifest.metrics, "revenue_7d": Metric("revenue_7d", "cumulative", spec, "1")},
    )
    query = MetricQuery(
        metrics=("revenue_7d",),
        group_by=("metric_time__day",),
        start_time="2025-03-01",
        end_time="2025-05-31",
    )
    sql = compile_query(query, extended).sql
    assert "ROWS BETWEEN 6 PRECEDING AND CURRENT ROW" in sql
    got = duck.execute(sql).fetchall()
    expected = duck.execute(
        "SELECT s.date_day, SUM(i.amount) FROM main.time_spine AS s JOIN main.invoices AS i "
        "ON i.status = 'paid' AND CAST(i.issued_at AS DATE) <= s.date_day "
        "AND CAST(i.issued_at AS DATE) > s.date_day - 7 "
        "WHERE s.date_day BETWEEN DATE '2025-03-01' AND DATE '2025-05-31' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert sorted(got) == expected and len(expected) > 80
