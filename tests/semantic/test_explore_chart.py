"""The Explore chart's spec: one series per dimension value, one axis per metric."""

from __future__ import annotations

from semantic.charts import explore_chart

COLUMNS = ["metric_time__month", "account__plan", "revenue", "active_accounts"]
ROWS = [
    ["2026-01-01", plan, revenue, accounts]
    for plan, revenue, accounts in (("free", 0.0, 1500), ("pro", 40e6, 400), ("team", 31e6, 100))
] + [
    ["2026-02-01", plan, revenue, accounts]
    for plan, revenue, accounts in (("free", 0.0, 1600), ("pro", 41e6, 410), ("team", 32e6, 90))
]


def _series(spec: dict, metric: str) -> set[str]:
    return {d["series"] for d in spec["data"]["values"] if d["metric"] == metric}


def test_two_metrics_by_month_and_plan_give_one_line_per_plan_in_each_metric_panel() -> None:
    spec = explore_chart(COLUMNS, ROWS, metrics=["revenue", "active_accounts"])
    assert spec is not None
    assert spec["facet"]["row"]["field"] == "metric"
    assert spec["resolve"]["scale"]["y"] == "independent"
    encoding = spec["spec"]["encoding"]
    assert encoding["color"]["field"] == "series" and encoding["detail"]["field"] == "series"
    assert _series(spec, "revenue") == _series(spec, "active_accounts") == {"free", "pro", "team"}
    # Each (metric, plan) line has exactly one point per month: nothing zig-zags.
    points: dict[tuple[str, str], list[str]] = {}
    for d in spec["data"]["values"]:
        points.setdefault((d["metric"], d["series"]), []).append(d["x"])
    assert all(sorted(xs) == ["2026-01-01", "2026-02-01"] for xs in points.values())
    assert len(points) == 6


def test_two_metrics_without_group_by_get_their_own_axes() -> None:
    spec = explore_chart(["revenue", "active_accounts"], [[71e6, 2000]],
                         metrics=["revenue", "active_accounts"])  # fmt: skip
    assert spec is not None
    assert spec["spec"]["mark"]["type"] == "bar"
    assert spec["resolve"]["scale"]["x"] == "independent"
    assert {d["metric"]: d["value"] for d in spec["data"]["values"]} == {
        "revenue": 71e6,
        "active_accounts": 2000,
    }


def test_one_metric_by_month_and_plan_colours_by_plan() -> None:
    spec = explore_chart(COLUMNS[:3], [r[:3] for r in ROWS], metrics=["revenue"])
    assert spec is not None and "facet" not in spec
    assert spec["encoding"]["color"]["field"] == "series"
    assert spec["encoding"]["color"]["title"] == "account__plan"
    assert _series(spec, "revenue") == {"free", "pro", "team"}


def test_two_dimensions_beside_time_make_one_series_per_pair() -> None:
    columns = ["metric_time__month", "account__plan", "account__region", "revenue"]
    rows = [["2026-01-01", "pro", "eu", 1.0], ["2026-01-01", "pro", "us", 2.0]]
    spec = explore_chart(columns, rows, metrics=["revenue"])
    assert spec is not None
    assert _series(spec, "revenue") == {"pro · eu", "pro · us"}
    assert spec["encoding"]["color"]["title"] == "account__plan, account__region"


def test_nothing_to_plot() -> None:
    assert explore_chart(["account__plan"], [["pro"]], metrics=["revenue"]) is None
    assert explore_chart(COLUMNS, [], metrics=["revenue"]) is None
