"""The MetricFlow itest runner's own pieces (scripts/metricflow/itest_support.py), without a
MetricFlow checkout: check-query rendering for DuckDB, snapshots, case translation and the
row comparison. The check queries below are written in MetricFlow's itest style, not copied."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts" / "metricflow"))

import itest_support as its

CHECK = """
SELECT
  SUM(amount) AS revenue
  , {{ render_date_trunc('ds', TimeGranularity.MONTH) }} AS metric_time__month
  , {{ render_extract('ds', DatePart.DOW) }} AS metric_time__extract_dow
FROM {{ source_schema }}.fct
WHERE {{ render_time_constraint('ds', '2020-01-01', '2020-01-31') }}
GROUP BY 2, 3
"""

SNAPSHOT = """
table_snapshot:
  table_name: fct
  column_definitions:
    - {name: ds, type: TIME}
    - {name: amount, type: FLOAT}
    - {name: is_paid, type: BOOLEAN}
    - {name: n, type: INT}
  rows:
    - ["2020-01-06", "10.5", "True", "1"]
    - ["2020-01-31", "2.5", "false", null]
    - ["2020-02-01", "100", "False", "3"]
"""


def test_render_check_query_is_duckdb_sql_that_runs() -> None:
    """The rendered check query runs on DuckDB and applies the inclusive end date as
    MetricFlow's render_time_constraint does (end + 1 day, exclusive)."""
    sql = its.render_template(CHECK, source_schema="src")
    assert "DATE_TRUNC('month', CAST(ds AS TIMESTAMP))" in sql
    assert "EXTRACT(isodow FROM CAST(ds AS TIMESTAMP))" in sql
    assert "CAST(ds AS TIMESTAMP) < CAST('2020-02-01' AS TIMESTAMP)" in sql
    con = duckdb.connect()
    snapshot = its.parse_snapshot(SNAPSHOT)
    con.execute("CREATE SCHEMA src")
    con.execute(snapshot.create_sql("src"))
    con.executemany("INSERT INTO src.fct VALUES (?, ?, ?, ?)", [list(r) for r in snapshot.rows])
    rows = sorted(con.execute(sql).fetchall())
    assert rows == [(2.5, dt.datetime(2020, 1, 1), 5), (10.5, dt.datetime(2020, 1, 1), 1)]


def test_snapshot_cells_are_typed_from_column_definitions() -> None:
    snapshot = its.parse_snapshot(SNAPSHOT)
    assert snapshot.rows[0] == (dt.datetime(2020, 1, 6), 10.5, True, 1)
    assert snapshot.rows[1] == (dt.datetime(2020, 1, 31), 2.5, False, None)


def test_helpers_render_date_arithmetic_as_metricflow_duckdb_renderer() -> None:
    helpers = its.DuckDbCheckHelpers()
    assert helpers.render_date_sub("a", "ds", 2, its.TimeGranularity.QUARTER) == (
        "a.ds - INTERVAL 6 month"
    )
    assert helpers.render_date_add("d", "c", its.TimeGranularity.DAY) == "d + INTERVAL c day"
    assert helpers.render_percentile_expr("x", 0.5, False, True) == "approx_quantile(x, 0.5)"
    assert helpers.render_percentile_expr("x", 0.5, True, False) == (
        "PERCENTILE_DISC(0.5) WITHIN GROUP (ORDER BY (x))"
    )


def test_where_filter_renders_to_the_engines_own_jinja() -> None:
    where = its.render_template(
        "{{ render_dimension_template('listing__country', entity_path=['booking']) }} = 'us'",
        source_schema="s",
        for_where=True,
    )
    assert where == "{{ Dimension('listing__country', entity_path=['booking']) }} = 'us'"


def _case(**raw: object) -> its.ItestCase:
    return its.ItestCase("itest_x.yaml", "c", "SIMPLE_MODEL", "SELECT 1", dict(raw))


def test_case_request_translates_group_by_objects_and_time_constraint() -> None:
    request = its.case_request(
        _case(
            metrics=["bookings"],
            group_bys=["booking__is_instant"],
            group_by_objs=[
                {"name": "metric_time", "grain": "WEEK"},
                {"name": "metric_time", "date_part": "year"},
            ],
            time_constraint=["2020-01-01", "2020-01-02"],
            order_bys=["-bookings"],
            limit=3,
        ),
        source_schema="s",
    )
    assert isinstance(request, its.TallyRequest)
    assert request.group_by == (
        "booking__is_instant",
        "metric_time__week",
        "metric_time__extract_year",
    )
    assert (request.start_time, request.end_time, request.limit) == ("2020-01-01", "2020-01-02", 3)
    assert request.order_by == ("-bookings",)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            {
                "metrics": ["m"],
                "required_features": ["APPROXIMATE_DISCRETE_PERCENTILE_AGGREGATION"],
            },
            "DuckDB lacks",
        ),
    ],
)
def test_cases_tally_does_not_claim_get_a_reason(raw: dict[str, object], reason: str) -> None:
    answer = its.case_request(_case(**raw), source_schema="s")
    assert isinstance(answer, str) and reason in answer


def test_min_max_only_and_apply_group_by_pass_through_to_the_request() -> None:
    """Tally offers both options now (semantic.compiler.dimension_query): the cases run."""
    minmax = its.case_request(_case(group_bys=["u__s"], min_max_only=True), source_schema="s")
    rows = its.case_request(_case(group_bys=["u__s"], apply_group_by=False), source_schema="s")
    assert isinstance(minmax, its.TallyRequest) and isinstance(rows, its.TallyRequest)
    assert (minmax.min_max_only, minmax.apply_group_by) == (True, True)
    assert (rows.min_max_only, rows.apply_group_by) == (False, False)


def test_a_query_without_metrics_is_a_request() -> None:
    """Tally answers group-by-only queries (semantic.compiler.dimension_query)."""
    answer = its.case_request(_case(group_bys=["user__home_state"]), source_schema="s")
    assert not isinstance(answer, str)
    assert (answer.metrics, answer.group_by) == ((), ("user__home_state",))


def test_compare_ignores_row_and_column_order_and_float_noise() -> None:
    result = its.compare_tables(
        ["b__x", "m"],
        [("a", 1.0), ("b", 2.0)],
        ["M", "b__x"],
        [(2.0000000001, "b"), (1, "a")],
    )
    assert result.ok, result.message


def test_compare_reports_a_wrong_number() -> None:
    result = its.compare_tables(["m"], [(287.0,)], ["m"], [(394.0,)])
    assert not result.ok
    assert "394.0" in result.message and "287.0" in result.message


def test_compare_checks_order_only_when_the_case_does() -> None:
    rows, reversed_rows = [(1,), (2,)], [(2,), (1,)]
    assert its.compare_tables(["m"], rows, ["m"], reversed_rows).ok
    assert not its.compare_tables(["m"], rows, ["m"], reversed_rows, check_order=True).ok


def test_compare_names_a_column_naming_gap_apart_from_wrong_values() -> None:
    result = its.compare_tables(
        ["metric_time__day", "m"],
        [(dt.datetime(2020, 1, 1), 1)],
        ["metric_time", "m"],
        [(dt.date(2020, 1, 1), 1)],
    )
    assert not result.ok and result.message.startswith("values agree")


def test_compare_refuses_an_empty_expectation_unless_allowed() -> None:
    assert not its.compare_tables(["m"], [], ["m"], []).ok
    assert its.compare_tables(["m"], [], ["m"], [], allow_empty=True).ok


def test_every_model_maps_to_a_manifest_folder_name() -> None:
    assert set(its.MODEL_MANIFESTS.values()) >= {"simple_manifest", "scd_manifest"}
    assert Path(its.MANIFESTS_DIR).parts[0] == "metricflow_semantics"


def test_a_listed_difference_is_reported_only_when_tally_gives_our_own_answer() -> None:
    """itests.judge: a case in KNOWN_DIFFERENCES is "MetricFlow differs" (with the reason)
    when Tally's rows equal our own check query's, failed when they equal neither, passed
    when they equal MetricFlow's; each entry names a test of ours that exists."""
    import itests
    from itest_differences import KNOWN_DIFFERENCES

    key = (
        "itest_metrics.yaml",
        "derived_metric_with_offset_window_and_offset_to_grain_and_granularity",
    )
    request = its.TallyRequest(("m",), ("metric_time__year",), (), None, None, (), None)
    columns = ["metric_time__year", "m"]
    year = dt.date(2020, 1, 1)
    expected = {
        "columns": columns,
        "rows": [(year, -215)],
        "own": {"columns": columns, "rows": [(year, -213)]},
    }

    def judge(value: int, which: tuple[str, str] = key) -> tuple[str, str]:
        listed = its.ItestCase(which[0], which[1], "SIMPLE_MODEL", "SELECT 1", raw={})
        actual = {"columns": columns, "rows": [(year, value)]}
        return itests.judge(listed, request, expected, actual, None)

    status, reason = judge(-213)
    assert status == itests.DIFFERS and "29 February" in reason
    assert judge(-212)[0] == "failed" and "nor the rows of our own check" in judge(-212)[1]
    assert judge(-215) == ("passed", "")
    assert judge(-213, (key[0], "another_case"))[0] == "failed"
    for known in KNOWN_DIFFERENCES.values():
        assert (ROOT / known.reason.rsplit("(", 1)[1].rstrip(")")).is_file(), known.reason
