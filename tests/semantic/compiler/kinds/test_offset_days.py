"""semantic.compiler.kinds.offset_days: offsets joined to spine days before aggregation.

By a grain coarser than the offset, with date parts, custom grains, an agg_time_dimension
instead of metric_time, and windows of custom periods — each against SQL written by hand on
the demo warehouse (MetricFlow's semantics: the input's rows of each spine day's source day,
aggregated by the report day's periods).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from functools import cache
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from semantic.demo import build_demo_warehouse
from tally.errors import QueryError
from tests.conftest import ROOT


def _derived(name: str, expr: str, *inputs: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "type": "derived", "type_params": {"expr": expr, "metrics": inputs}}


# Offset metrics the fixtures do not have, added to them for these tests (and goldens).
EXTRA_METRICS = (
    _derived(
        "revenue_7_days_ago",
        "revenue_lagged",
        {"name": "revenue", "alias": "revenue_lagged", "offset_window": "7 days"},
    ),
    _derived(
        "events_tracked_7_days_ago",
        "events_lagged",
        {"name": "events_tracked", "alias": "events_lagged", "offset_window": "7 days"},
    ),
    _derived(
        "revenue_since_month_start",
        "revenue - revenue_at_month_start",
        {"name": "revenue"},
        {"name": "revenue", "alias": "revenue_at_month_start", "offset_to_grain": "month"},
    ),
    _derived(
        "revenue_5_days_ago",
        "2 * revenue_lagged",
        {"name": "revenue", "alias": "revenue_lagged", "offset_window": "5 days"},
    ),
    _derived(
        "revenue_5_then_2_days_ago",
        "revenue_5_lagged",
        {"name": "revenue_5_days_ago", "alias": "revenue_5_lagged", "offset_window": "2 days"},
    ),
    _derived(
        "revenue_5_days_then_1_month_ago",
        "revenue_5_lagged",
        {"name": "revenue_5_days_ago", "alias": "revenue_5_lagged", "offset_window": "1 month"},
    ),
    _derived(
        "revenue_1_month_ago",
        "revenue_lagged",
        {"name": "revenue", "alias": "revenue_lagged", "offset_window": "1 month"},
    ),
    _derived(
        "mrr_7_days_ago",
        "mrr_lagged",
        {"name": "mrr", "alias": "mrr_lagged", "offset_window": "7 days"},
    ),
    _derived(
        "revenue_last_fiscal_quarter",
        "revenue_before",
        {"name": "revenue", "alias": "revenue_before", "offset_window": "1 fiscal_quarter"},
    ),
)


@cache
def offset_manifest(schema: str = "main") -> Manifest:
    """fixtures/ plus ``EXTRA_METRICS``, its tables in ``schema``."""
    project = load_project(ROOT / "fixtures")
    rows = [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()]
    rows += [("metric", spec["name"], spec, "1.0") for spec in EXTRA_METRICS]
    if schema == "main":
        return build_manifest(rows, release="r1")
    return build_manifest(rows, release="r1", default_schema=schema, schema_map={"main": schema})


def _rows(duck: duckdb.DuckDBPyConnection, query: MetricQuery) -> list[tuple[Any, ...]]:
    compiled = compile_query(query, offset_manifest())
    return sorted(duck.execute(compiled.sql).fetchall(), key=repr)


def _hand(duck: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(duck.execute(sql).fetchall(), key=repr)


PAID_BY_DAY = """(SELECT CAST(issued_at AS DATE) AS d, amount FROM main.invoices
                  WHERE status = 'paid')"""


def test_day_lag_by_month_sums_each_days_lagged_value(duck: duckdb.DuckDBPyConnection) -> None:
    """By month, a 7-day lag is the month's days' revenue 7 days earlier (MetricFlow's
    derived_metric_offset_window_and_granularity; the old compiler gave no rows)."""
    got = _rows(
        duck, MetricQuery(metrics=("revenue_7_days_ago",), group_by=("metric_time__month",))
    )
    expected = _hand(
        duck,
        f"""SELECT DATE_TRUNC('month', s.date_day), SUM(p.amount)
        FROM main.time_spine s JOIN {PAID_BY_DAY} p ON p.d = s.date_day - INTERVAL 7 DAY
        GROUP BY 1""",
    )
    assert len(got) > 3
    assert [(row[0].date(), row[1]) for row in got] == [(row[0].date(), row[1]) for row in expected]


def test_count_distinct_lag_counts_the_shifted_rows(duck: duckdb.DuckDBPyConnection) -> None:
    """A count distinct is counted over the month's shifted rows, not summed from days."""
    got = _rows(
        duck, MetricQuery(metrics=("events_tracked_7_days_ago",), group_by=("metric_time__month",))
    )
    expected = _hand(
        duck,
        """SELECT DATE_TRUNC('month', s.date_day), COUNT(DISTINCT e.event_id)
        FROM main.time_spine s JOIN main.events e
          ON CAST(e.occurred_at AS DATE) = s.date_day - INTERVAL 7 DAY
        GROUP BY 1""",
    )
    assert got and [row[1] for row in got] == [row[1] for row in expected]


def test_two_grains_and_a_date_part(duck: duckdb.DuckDBPyConnection) -> None:
    """Several time items (month and week) and a date part (ISO dow) come from the lagged day."""
    got = _rows(
        duck,
        MetricQuery(
            metrics=("revenue_7_days_ago",),
            group_by=("metric_time__month", "metric_time__week", "metric_time__extract_dow"),
        ),
    )
    expected = _hand(
        duck,
        f"""SELECT ISODOW(s.date_day), DATE_TRUNC('month', s.date_day),
               DATE_TRUNC('week', s.date_day), SUM(p.amount)
        FROM main.time_spine s JOIN {PAID_BY_DAY} p ON p.d = s.date_day - INTERVAL 7 DAY
        GROUP BY 1, 2, 3""",
    )
    assert len(got) > 20
    # MetricFlow's column order: the date part first.
    assert [(r[0], r[1].date(), r[2].date(), r[3]) for r in got] == [
        (r[0], r[1].date(), r[2].date(), r[3]) for r in expected
    ]


def test_agg_time_dimension_in_place_of_metric_time(duck: duckdb.DuckDBPyConnection) -> None:
    """invoice__issued_at (revenue's agg_time_dimension) is shifted as metric_time is."""
    by_metric_time = _rows(
        duck, MetricQuery(metrics=("revenue_7_days_ago",), group_by=("metric_time__quarter",))
    )
    by_issued_at = _rows(
        duck,
        MetricQuery(metrics=("revenue_7_days_ago",), group_by=("invoice__issued_at__quarter",)),
    )
    assert by_issued_at == by_metric_time and by_issued_at


def test_to_grain_by_week_reads_the_first_day_of_the_weeks_month(
    duck: duckdb.DuckDBPyConnection,
) -> None:
    """By week, revenue at the start of the month is the revenue of the first day of the
    month of the week's Monday (MetricFlow: one spine row per requested period)."""
    got = _rows(
        duck,
        MetricQuery(metrics=("revenue_since_month_start",), group_by=("metric_time__week",)),
    )
    expected = _hand(
        duck,
        f"""WITH weekly AS (SELECT DATE_TRUNC('week', d) AS w, SUM(amount) AS r
                            FROM {PAID_BY_DAY} GROUP BY 1),
        at_start AS (SELECT s.date_day AS w, SUM(p.amount) AS r
                     FROM main.time_spine s
                     JOIN {PAID_BY_DAY} p ON p.d = DATE_TRUNC('month', s.date_day)
                     WHERE DATE_TRUNC('week', s.date_day) = s.date_day GROUP BY 1)
        SELECT COALESCE(weekly.w, at_start.w), weekly.r - at_start.r
        FROM weekly FULL JOIN at_start ON weekly.w = at_start.w""",
    )
    assert len(got) > 10
    assert [(r[0].date(), r[1]) for r in got] == [(r[0].date(), r[1]) for r in expected]


def test_to_grain_of_a_cumulative_by_week_reads_its_daily_value(
    duck: duckdb.DuckDBPyConnection,
) -> None:
    """mrr (a derived metric of all-time cumulatives) at the start of the month, by week: the
    daily MRR of the first day of the month of the week's Monday, even before the range."""
    week = _rows(
        duck,
        MetricQuery(
            metrics=("mrr", "mrr_change_month_to_date"),
            group_by=("metric_time__week",),
            start_time="2026-01-01",
            end_time="2026-03-31",
        ),
    )
    daily = dict(_rows(duck, MetricQuery(metrics=("mrr",), group_by=("metric_time__day",))))
    assert len(week) == 14  # 2025-12-29 … 2026-03-30
    for monday, mrr, change in week:
        month_start = monday.date().replace(day=1)
        assert change == pytest.approx(mrr - daily[month_start]), monday


def test_window_of_one_fiscal_quarter_reads_the_previous_fiscal_quarter(
    duck: duckdb.DuckDBPyConnection,
) -> None:
    """``offset_window: 1 fiscal_quarter`` by fiscal quarter is the previous fiscal quarter's
    revenue: each day moves to its position in the next fiscal quarter (the last day when
    that quarter is shorter), so no day is lost or counted twice."""
    got = _rows(
        duck,
        MetricQuery(
            metrics=("revenue", "revenue_last_fiscal_quarter"),
            group_by=("metric_time__fiscal_quarter",),
        ),
    )
    by_quarter = {row[0]: row[1] for row in got}
    quarters = sorted(q for q in by_quarter if q is not None)
    assert len(quarters) > 3
    for before, after in itertools.pairwise(quarters):
        lagged = next(row[2] for row in got if row[0] == after)
        assert lagged == pytest.approx(by_quarter[before])


@pytest.fixture(scope="module")
def duck_2020(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    """The demo warehouse seeded over 2019-07-01 … 2021-06-30 (2020 is a leap year)."""
    path = tmp_path_factory.mktemp("offsets2020") / "demo.duckdb"
    build_demo_warehouse(path, events=5_000, seed=7, end_date=dt.date(2021, 6, 30))
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


@pytest.mark.parametrize(("grain", "months"), [("year", 12), ("quarter", 3)])
def test_month_window_metricflow_counts_29_feb_2020_three_times_and_skips_30_31_jan_tally_not(
    duck_2020: duckdb.DuckDBPyConnection, grain: str, months: int
) -> None:
    """A 1-month window by year (quarter) is the input summed over the period moved back a
    month, each day once: for 2020, 2019-12-01 … 2020-11-30. MetricFlow moves each report day
    back a month instead, so 29, 30 and 31 March read 29 February and no day reads 30 or
    31 January — a different, wrong total, which Tally does not give."""
    back = duck_2020.execute(
        """SELECT CAST(date_day - INTERVAL 1 MONTH AS DATE) AS d, COUNT(*) FROM main.time_spine
        WHERE YEAR(date_day) = 2020 GROUP BY 1"""
    ).fetchall()
    reads = dict(back)
    assert reads[dt.date(2020, 2, 29)] == 3
    assert dt.date(2020, 1, 30) not in reads and dt.date(2020, 1, 31) not in reads

    got = _rows(
        duck_2020,
        MetricQuery(
            metrics=("revenue_1_month_ago",),
            group_by=(f"metric_time__{grain}",),
            start_time="2020-01-01",
            end_time="2020-12-31",
        ),
    )
    starts = ", ".join(
        f"(DATE '2020-{m:02d}-01')" for m in range(1, 13, months)
    )  # the report periods of 2020
    expected = _hand(
        duck_2020,
        f"""SELECT s.p, SUM(paid.amount) FROM (VALUES {starts}) AS s(p)
        JOIN {PAID_BY_DAY} paid ON paid.d >= s.p - INTERVAL 1 MONTH
                               AND paid.d < s.p + INTERVAL {months - 1} MONTH
        GROUP BY 1""",
    )
    metricflow = _hand(
        duck_2020,
        f"""SELECT DATE_TRUNC('{grain}', s.date_day), SUM(paid.amount) FROM main.time_spine s
        JOIN {PAID_BY_DAY} paid ON paid.d = s.date_day - INTERVAL 1 MONTH
        WHERE YEAR(s.date_day) = 2020 GROUP BY 1""",
    )
    assert len(got) == 12 // months
    assert [(r[0].date(), r[1]) for r in got] == [(r[0], r[1]) for r in expected]
    assert [r[1] for r in got] != [r[1] for r in metricflow]


def test_time_range_applies_after_shifting(duck: duckdb.DuckDBPyConnection) -> None:
    """A range keeps the report months in it; their values still read days before it."""
    whole = _rows(
        duck, MetricQuery(metrics=("revenue_7_days_ago",), group_by=("metric_time__month",))
    )
    ranged = _rows(
        duck,
        MetricQuery(
            metrics=("revenue_7_days_ago",),
            group_by=("metric_time__month",),
            start_time="2026-02-01",
            end_time="2026-04-30",
        ),
    )
    assert [row[0].date().isoformat() for row in ranged] == [
        "2026-02-01",
        "2026-03-01",
        "2026-04-01",
    ]
    assert ranged == [row for row in whole if row in ranged]


def test_an_offset_inside_an_offset_adds_the_windows(duck: duckdb.DuckDBPyConnection) -> None:
    """2 days after a 5-day lag is a 7-day lag (MetricFlow's nested_derived_metric_outer_offset),
    the inner metric's expression (2 *) applied, by day and by month."""
    for grain in ("day", "month"):
        nested = _rows(
            duck,
            MetricQuery(
                metrics=("revenue_5_then_2_days_ago",), group_by=(f"metric_time__{grain}",)
            ),
        )
        seven = _rows(
            duck, MetricQuery(metrics=("revenue_7_days_ago",), group_by=(f"metric_time__{grain}",))
        )
        assert len(nested) > 3
        assert [(r[0], r[1]) for r in nested] == [(r[0], 2 * r[1]) for r in seven]


def test_where_on_metric_time_selects_the_days_shown(duck: duckdb.DuckDBPyConnection) -> None:
    """A where on metric_time picks report days (as MetricFlow filters the spine), so the
    rows shown are those days, with the values they have unfiltered."""
    where = ("{{ TimeDimension('metric_time', 'day') }} BETWEEN '2026-02-10' AND '2026-02-12'",)
    for metric in ("revenue_7_days_ago", "revenue_5_then_2_days_ago"):
        whole = _rows(duck, MetricQuery(metrics=(metric,), group_by=("metric_time__day",)))
        picked = _rows(
            duck, MetricQuery(metrics=(metric,), group_by=("metric_time__day",), where=where)
        )
        days = [row[0].isoformat() for row in picked]
        assert days == ["2026-02-10", "2026-02-11", "2026-02-12"], (metric, days)
        assert picked == [row for row in whole if row[0].isoformat() in days]


@pytest.mark.parametrize(
    ("metric", "group_by", "words"),
    [
        ("revenue_since_month_start", "metric_time__extract_month", "offset_to_grain"),
        ("revenue_since_month_start", "metric_time__fiscal_quarter", "offset_to_grain"),
        ("mrr_7_days_ago", "metric_time__quarter", "cumulative"),
        ("revenue_7_days_ago", "invoice__status", "without metric_time"),
        ("revenue_7_days_ago", "metric_time__hour", "metric_time__hour"),
        ("revenue_5_days_then_1_month_ago", "metric_time__day", "inside another offset"),
    ],
)
def test_offsets_it_would_not_get_right_are_refused(metric: str, group_by: str, words: str) -> None:
    """Refusals with the reason, never a wrong number."""
    with pytest.raises(QueryError) as info:
        compile_query(MetricQuery(metrics=(metric,), group_by=(group_by,)), offset_manifest())
    assert info.value.code in ("unsupported_metric", "grain_too_fine"), info.value
    assert words in str(info.value) or words in (info.value.hint or ""), info.value
