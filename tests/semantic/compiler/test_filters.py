"""semantic.compiler.filters: filters bound to a scan's columns, Metric() subqueries, time range."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlglot import exp

from semantic.compiler.filters import (
    FILTER_CTES,
    MSG_FILTER_METRIC_NOT_ENTITY,
    FilterCtes,
    bounded_name,
    check_filter_metric,
    filter_conditions,
    renamed_tables,
    time_range,
)
from semantic.compiler.joins import Source
from semantic.compiler.manifest import Manifest
from semantic.compiler.query import query_select
from semantic.compiler.resolve import parse_group_by
from semantic.compiler.spec import MetricQuery
from semantic.compiler.where import parse_where
from tally.errors import QueryError


@pytest.fixture
def filter_ctes() -> Iterator[FilterCtes]:
    """The per-compile state compile_query sets up, with the real query stage."""
    state = FilterCtes(query_select)
    token = FILTER_CTES.set(state)
    yield state
    FILTER_CTES.reset(token)


def events(manifest: Manifest) -> Source:
    return Source(manifest.semantic_models["events"], manifest, "events_tracked")


def test_dimension_filter_joins_what_it_reads(manifest: Manifest) -> None:
    """A filter on account__plan adds the accounts join to the scan and reads its column."""
    source = events(manifest)
    (condition,) = filter_conditions(
        ("{{ Dimension('account__plan') }} = 'pro'",),
        source,
        manifest.measures["events_tracked"],
        "where",
    )
    assert condition.sql("duckdb") == "account__accounts.plan = 'pro'"
    assert list(source.joins) == ["account__accounts"]


def test_time_dimension_filter_truncates_to_its_grain(manifest: Manifest) -> None:
    """TimeDimension('metric_time', 'month') reads the agg time column truncated by month."""
    (condition,) = filter_conditions(
        ("{{ TimeDimension('metric_time', 'month') }} >= '2026-01-01'",),
        events(manifest),
        manifest.measures["events_tracked"],
        "filter",
    )
    assert condition.sql("duckdb") == "DATE_TRUNC('MONTH', events.occurred_at) >= '2026-01-01'"


def test_metric_filter_compiles_a_subquery_and_joins_it(
    manifest: Manifest, filter_ctes: FilterCtes
) -> None:
    """Metric('revenue', group_by=['account']) becomes a CTE joined on the scan's account."""
    source = events(manifest)
    (condition,) = filter_conditions(
        ("{{ Metric('revenue', group_by=['account']) }} > 100",),
        source,
        manifest.measures["events_tracked"],
        "where",
    )
    assert condition.sql("duckdb") == "filter_revenue_by_account.revenue > 100"
    assert list(source.metric_joins) == ["filter_revenue_by_account"]
    assert "filter_revenue_by_account" in filter_ctes.ctes
    assert filter_ctes.stack == ()  # the nested state was reset after the subquery


def test_metric_filter_on_a_non_entity_is_refused(
    manifest: Manifest, filter_ctes: FilterCtes
) -> None:
    """group_by must end in an entity: the subquery joins on it."""
    with pytest.raises(QueryError) as info:
        filter_conditions(
            ("{{ Metric('revenue', group_by=['plan']) }} > 1",),
            events(manifest),
            manifest.measures["events_tracked"],
            "where",
        )
    assert info.value.message == MSG_FILTER_METRIC_NOT_ENTITY.format(
        group_by="plan", item="Metric('revenue', group_by=['plan'])"
    )
    assert info.value.location == "where[0]"


def test_check_filter_metric_accepts_a_joinable_metric(manifest: Manifest) -> None:
    """Validate time: revenue per account can filter events_tracked (events have account)."""
    ref = parse_where("{{ Metric('revenue', group_by=['account']) }} > 1").refs[0]
    check_filter_metric(manifest, ref, "events_tracked", "filter[0]")


def test_check_filter_metric_refuses_an_entity_the_model_lacks(manifest: Manifest) -> None:
    """invoices have no user entity: a Metric() per user cannot filter revenue."""
    ref = parse_where("{{ Metric('events_tracked', group_by=['user']) }} > 1").refs[0]
    with pytest.raises(QueryError) as info:
        check_filter_metric(manifest, ref, "revenue", "filter[0]")
    assert info.value.code == "unreachable_dimension"


def test_time_range_widens_to_the_grain_and_bounds_the_bare_column(manifest: Manifest) -> None:
    """By month, 2026-01-15..2026-02-10 reads January 1 to February 28."""
    query = MetricQuery(
        metrics=("events_tracked",),
        group_by=("metric_time__month",),
        start_time="2026-01-15",
        end_time="2026-02-10",
    )
    bounds = time_range(
        query,
        events(manifest),
        manifest.measures["events_tracked"],
        [parse_group_by("metric_time__month", "g")],
    )
    assert [b.sql("duckdb") for b in bounds] == [
        "events.occurred_at >= CAST('2026-01-01 00:00:00' AS TIMESTAMP)",
        "events.occurred_at < CAST('2026-03-01 00:00:00' AS TIMESTAMP)",
    ]


def test_bounded_name_keeps_short_names_and_digests_long_ones() -> None:
    """Names stay under PostgreSQL's and MySQL's identifier limits, stably."""
    assert bounded_name("filter_revenue_by_account") == "filter_revenue_by_account"
    long = "filter_" + "x" * 80
    assert bounded_name(long, 40) == bounded_name(long, 40)
    assert len(bounded_name(long, 40)) == 40
    assert bounded_name(long, 40) != bounded_name(long + "y", 40)


def test_renamed_tables_keep_the_old_name_as_alias() -> None:
    """Columns qualified with the old CTE name still resolve after the rename."""
    tree = exp.select("agg_0.x").from_("agg_0")
    assert (
        renamed_tables(tree, {"agg_0": "f__agg_0"}).sql() == "SELECT agg_0.x FROM f__agg_0 AS agg_0"
    )
