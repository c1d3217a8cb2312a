"""Custom granularities (issue 17): the fixtures' fiscal calendar from the time spine model's
``custom_granularities`` (fiscal years start on 1 February), in group-by, filters, cumulative
metrics and saved queries, against hand-written SQL on the demo warehouse."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.saved import saved_query_to_query
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError

# Paid invoice amount per fiscal quarter, written by hand (no spine: the calendar itself).
FISCAL_REVENUE = """
SELECT CAST(date_trunc('quarter', issued_at - INTERVAL 1 MONTH) + INTERVAL 1 MONTH AS DATE) AS q,
       SUM(amount)
FROM main.invoices WHERE status = 'paid' GROUP BY 1 ORDER BY 1
"""


def test_spine_custom_granularities_reach_the_manifest(manifest: Manifest) -> None:
    """dbt's time spine YAML: each custom granularity's name and column."""
    assert manifest.time_spine.custom_granularities == (
        ("fiscal_year", "fiscal_year_start"),
        ("fiscal_quarter", "fiscal_quarter_start"),
    )


def test_group_by_fiscal_quarter_equals_hand_written_sql(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """metric_time__fiscal_quarter reads the spine's column for each row's day."""
    compiled = compile_query(
        MetricQuery(
            metrics=("revenue",),
            group_by=("metric_time__fiscal_quarter",),
            order_by=("metric_time__fiscal_quarter",),
        ),
        manifest,
    )
    assert compiled.columns == ("metric_time__fiscal_quarter", "revenue")
    assert "fiscal_quarter_start" in compiled.sql
    got = duck.execute(compiled.sql).fetchall()
    assert got == duck.execute(FISCAL_REVENUE).fetchall()
    assert {row[0].month for row in got} <= {2, 5, 8, 11}


def test_filter_on_fiscal_year_and_cumulative_by_fiscal_quarter(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """A where on TimeDimension('metric_time', 'fiscal_year'); a month-to-date metric by fiscal
    quarter keeps its value at the quarter's last day (period_agg: last), i.e. the revenue of
    the quarter's last month (January, April, July, October)."""
    compiled = compile_query(
        MetricQuery(
            metrics=("revenue_month_to_date",),
            group_by=("metric_time__fiscal_quarter",),
            where=("{{ TimeDimension('metric_time', 'fiscal_year') }} = '2025-02-01'",),
            order_by=("metric_time__fiscal_quarter",),
        ),
        manifest,
    )
    got = duck.execute(compiled.sql).fetchall()
    assert [row[0] for row in got] == [
        dt.date(2025, 2, 1),
        dt.date(2025, 5, 1),
        dt.date(2025, 8, 1),
        dt.date(2025, 11, 1),
    ]
    last_months = duck.execute(
        "SELECT date_trunc('month', issued_at) AS m, SUM(amount) FROM main.invoices "
        "WHERE status = 'paid' AND month(issued_at) IN (4, 7, 10, 1) "
        "AND issued_at >= '2025-02-01' AND issued_at < '2026-02-01' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [row[1] for row in got] == [row[1] for row in last_months]


def test_saved_query_groups_by_a_custom_grain(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """The fixtures' fiscal_revenue saved query: TimeDimension('metric_time', 'fiscal_quarter')."""
    query = saved_query_to_query(manifest, "fiscal_revenue", MetricQuery(metrics=()))
    assert query.group_by == ("metric_time__fiscal_quarter",)
    rows = duck.execute(compile_query(query, manifest).sql).fetchall()
    assert [(row[0], row[1]) for row in rows] == duck.execute(FISCAL_REVENUE).fetchall()


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"metrics": ("revenue",), "group_by": ("metric_time__retail_week",)}, "unknown_grain"),
        (
            {
                "metrics": ("revenue",),
                "where": ("{{ TimeDimension('metric_time', 'retail_week') }} > '2025-01-01'",),
            },
            "bad_where",
        ),
    ],
)
def test_custom_grain_not_in_the_spine_is_refused(
    manifest: Manifest, query: dict, code: str
) -> None:
    """A custom grain the spine does not define is a clear error, naming where they come
    from. (Offsets in custom grains are computed: tests/semantic/compiler/kinds/
    test_offset_days.py.)"""
    with pytest.raises(QueryError) as info:
        compile_query(MetricQuery(**query), manifest)
    assert info.value.code == code, info.value
    if code == "unknown_grain":
        assert "custom_granularities" in (info.value.hint or "")
