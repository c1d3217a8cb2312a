"""semantic.compiler.resolve: names → typed items, request checks, MetricFlow's column order."""

from __future__ import annotations

import pytest

from semantic.compiler.manifest import Manifest
from semantic.compiler.resolve import (
    METRIC_TIME,
    MSG_UNKNOWN_METRIC,
    GroupByItem,
    check_query,
    output_order,
    parse_group_by,
    query_date,
)
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metric_time__month", GroupByItem("metric_time__month", "time", METRIC_TIME, (), "month")),
        ("metric_time", GroupByItem("metric_time", "time", METRIC_TIME, (), None)),
        ("account", GroupByItem("account", "entity", "account", (), None)),
        ("account__plan", GroupByItem("account__plan", "dimension", "plan", ("account",), None)),
        (
            " User__Account__Region ",
            GroupByItem("user__account__region", "dimension", "region", ("user", "account"), None),
        ),
        (
            "account__created_at__week",
            GroupByItem("account__created_at__week", "time", "created_at", ("account",), "week"),
        ),
    ],
)
def test_parse_group_by_splits_path_element_and_grain(text: str, expected: GroupByItem) -> None:
    """Dundered names split into entity path, element and trailing grain, lower-cased."""
    assert parse_group_by(text, "group_by[0]") == expected


def test_parse_group_by_refuses_an_empty_part() -> None:
    """`account____plan` is malformed, reported at the item's location."""
    with pytest.raises(QueryError) as info:
        parse_group_by("account____plan", "group_by[2]")
    assert (info.value.code, info.value.location) == ("unknown_dimension", "group_by[2]")
    assert info.value.message == "malformed group-by item 'account____plan'"


def test_check_query_suggests_the_closest_metric(manifest: Manifest) -> None:
    """An unknown metric names its position and offers a did-you-mean hint."""
    with pytest.raises(QueryError) as info:
        check_query(MetricQuery(metrics=("signups", "revenu")), manifest)
    assert info.value.code == "unknown_metric"
    assert info.value.location == "metrics[1]"
    assert info.value.message == MSG_UNKNOWN_METRIC.format(name="revenu")
    assert info.value.hint == "did you mean 'revenue'?"


@pytest.mark.parametrize(
    ("query", "code", "location"),
    [
        (MetricQuery(metrics=("signups",), dialect="oracle"), "unsupported_dialect", "dialect"),
        (MetricQuery(metrics=()), "no_metrics", "metrics"),
        (MetricQuery(metrics=("signups",), limit=-1), "bad_limit", "limit"),
        (
            MetricQuery(metrics=("signups",), start_time="2026-02-01", end_time="2026-01-01"),
            "bad_time_range",
            "start_time",
        ),
    ],
)
def test_check_query_refuses_bad_requests(
    manifest: Manifest, query: MetricQuery, code: str, location: str
) -> None:
    """Each request-level problem has its own code and points at the offending field."""
    with pytest.raises(QueryError) as info:
        check_query(query, manifest)
    assert (info.value.code, info.value.location) == (code, location)


def test_check_query_accepts_a_valid_request(manifest: Manifest) -> None:
    """A known metric, a known dialect and an ordered range pass without error."""
    check_query(
        MetricQuery(metrics=("signups",), start_time="2026-01-01", end_time="2026-01-31"), manifest
    )


def test_query_date_reads_dates_and_refuses_garbage() -> None:
    """Dates (and the date part of timestamps) parse; anything else is bad_time_range."""
    assert str(query_date("2026-03-04", "start_time")) == "2026-03-04"
    with pytest.raises(QueryError) as info:
        query_date("last tuesday", "end_time")
    assert (info.value.code, info.value.location) == ("bad_time_range", "end_time")


def test_output_order_puts_metric_time_first_then_by_depth_and_name() -> None:
    """MetricFlow's column order: metric_time, then shallower paths, then by name."""
    texts = ["user__account__region", "account__plan", "metric_time__day", "account", "user__role"]
    items = sorted((parse_group_by(t, "g") for t in texts), key=output_order)
    assert [i.text for i in items] == [
        "metric_time__day",
        "account",
        "account__plan",
        "user__role",
        "user__account__region",
    ]
