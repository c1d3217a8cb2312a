"""semantic.compiler.kinds.conversion_base: the base measure of a conversion rate comes from
the conversion's own aggregation where that reads the same base events and groups."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest, Metric
from semantic.compiler.query import query_select
from semantic.compiler.spec import MetricQuery

DIALECTS = ["duckdb", "postgres", "clickhouse", "spark", "databricks"]
SIGNUP = "{{ Dimension('event__event_type') }} = 'signup'\n"

# activation_rate_7d with signup rows (a sum, not a distinct count) as its base measure.
SIGNUP_ROWS_RATE = {
    "name": "signup_rows_activation_7d",
    "type": "conversion",
    "type_params": {
        "conversion_type_params": {
            "entity": "account",
            "calculation": "conversion_rate",
            "window": "7 days",
            "base_measure": {"name": "event_rows", "filter": SIGNUP},
            "conversion_measure": "activated_accounts",
        }
    },
}
# Another measure under activation_rate_7d's base filter: an aggregation with its base leaf.
SIGNUP_EVENTS = {
    "name": "signup_events",
    "type": "simple",
    "type_params": {"measure": {"name": "events_tracked", "filter": SIGNUP}},
}
# The base leaf of activation_rate_7d, read by a simple metric of its own.
SIGNUP_ACCOUNTS = {
    "name": "signup_accounts_seen",
    "type": "simple",
    "type_params": {"measure": {"name": "signup_accounts", "filter": SIGNUP}},
}


def with_metrics(manifest: Manifest, *specs: dict[str, Any]) -> Manifest:
    added = {s["name"]: Metric(s["name"], s["type"], s, "1") for s in specs}
    return replace(manifest, metrics={**manifest.metrics, **added})


def ctes(query: MetricQuery, manifest: Manifest) -> list[str]:
    select, _ = query_select(query, manifest, {})
    return [cte.alias for cte in select.args["with_"].expressions]


@pytest.fixture
def month_of_earlier_signups() -> Any:
    """Account 1 signs up on 31 Jan and 2 Feb and creates a report on 3 Feb: the report is
    credited to the February signup, and January's only signup is matched only as an
    earlier one. Account 2 signs up in March and never reports."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE main.events (event_id INT, occurred_at TIMESTAMP, account_id INT, "
        "user_id INT, event_type VARCHAR, revenue DOUBLE)"
    )
    con.execute(
        "INSERT INTO main.events VALUES "
        "(1, '2025-01-31 10:00', 1, 1, 'signup', NULL), "
        "(2, '2025-02-02 10:00', 1, 1, 'signup', NULL), "
        "(3, '2025-02-03 10:00', 1, 1, 'report_created', NULL), "
        "(4, '2025-03-05 10:00', 2, 2, 'signup', NULL)"
    )
    yield con
    con.close()


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("metric", ["activation_rate_7d", "signup_rows_activation_7d"])
def test_a_month_whose_signups_were_only_earlier_ones_converts_zero(
    manifest: Manifest, month_of_earlier_signups: Any, dialect: str, metric: str
) -> None:
    """Bug: on ClickHouse and Spark (base groups from the LEFT JOIN) January came out NULL,
    its signup's only match ranked below February's and was dropped before the aggregation;
    MetricFlow and DuckDB count 0 there. Each dialect's tree, rendered for DuckDB."""
    query = MetricQuery(metrics=(metric,), group_by=("metric_time__month",), dialect=dialect)
    select, _ = query_select(query, with_metrics(manifest, SIGNUP_ROWS_RATE), {})
    rows = sorted(month_of_earlier_signups.execute(select.sql("duckdb")).fetchall())
    months = [dt.datetime(2025, m, 1) for m in (1, 2, 3)]
    assert rows == list(zip(months, [0.0, 1.0, 0.0], strict=True))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_the_conversion_aggregation_outputs_its_base_measure(
    manifest: Manifest, dialect: str
) -> None:
    """activation_rate_7d by month is one aggregation: its signups are read for the join and,
    off ClickHouse and Spark, once more for the base groups, not a third time for the rate's
    denominator (Spark: 7 stages, as the hand-written SQL of bench sql_speed)."""
    query = MetricQuery(
        metrics=("activation_rate_7d",), group_by=("metric_time__month",), dialect=dialect
    )
    select, _ = query_select(query, manifest, {})
    (cte,) = select.args["with_"].expressions
    assert [c.alias_or_name for c in cte.this.expressions][1:] == [
        "activated_accounts__conv_account_7day_signup_accounts",
        "signup_accounts__f27f740d5",
    ]
    reads = 1 if dialect in ("clickhouse", "spark", "databricks") else 2
    scan = "FROM main.events AS events WHERE events.event_type = 'signup'"
    assert select.sql("duckdb").count(scan) == reads


@pytest.mark.parametrize(
    ("dialect", "metrics", "extra"),
    [
        # A base event is a row once per conversion it matched: a sum would count repeats.
        ("spark", ("signup_rows_activation_7d",), {}),
        ("clickhouse", ("signup_rows_activation_7d",), {}),
        # The base leaf's aggregation outputs another measure as well: it is read anyway.
        ("duckdb", ("activation_rate_7d", "signup_events"), {}),
        # Without metric_time, the time range is widened to the metric's monthly grain for
        # the base aggregation and to days for the conversion's base events.
        ("duckdb", ("monthly_activation",), {"start_time": "2025-01-15"}),
        ("spark", ("activation_rate_7d",), {"group_by": ()}),
    ],
)
def test_the_base_measure_keeps_its_own_aggregation(
    manifest: Manifest, dialect: str, metrics: tuple[str, ...], extra: dict[str, Any]
) -> None:
    """Where the conversion aggregation would not give the base measure's rows, the base
    stays a separate aggregation, merged on the group-by keys."""
    monthly = {
        **manifest.metrics["activation_rate_7d"].spec,
        "name": "monthly_activation",
        "time_granularity": "month",
    }
    extended = with_metrics(manifest, SIGNUP_ROWS_RATE, SIGNUP_EVENTS, monthly)
    query = MetricQuery(
        metrics=metrics,
        group_by=extra.get("group_by", ("account__industry",)),
        start_time=extra.get("start_time"),
        dialect=dialect,
    )
    assert len(ctes(query, extended)) == 2


def test_a_simple_metric_reads_the_fused_base_measure(manifest: Manifest, duck: Any) -> None:
    """A metric whose aggregation is the conversion's base reads it from the conversion's
    aggregation (one aggregation in all), with the values it has on its own."""
    extended = with_metrics(manifest, SIGNUP_ACCOUNTS)
    both = MetricQuery(
        metrics=("activation_rate_7d", "signup_accounts_seen"), group_by=("metric_time__month",)
    )
    alone = MetricQuery(metrics=("signup_accounts_seen",), group_by=("metric_time__month",))
    assert len(ctes(both, extended)) == 1
    got = duck.execute(compile_query(both, extended).sql).fetchall()
    want = dict(duck.execute(compile_query(alone, extended).sql).fetchall())
    assert {month: count for month, _, count in got} == want
    assert len(want) > 3


def test_fuses_base_is_false_for_an_offset(manifest: Manifest) -> None:
    """An offset conversion is shifted after its aggregation: the base keeps its own."""
    derived = {
        "name": "activation_last_month",
        "type": "derived",
        "type_params": {
            "expr": "a",
            "metrics": [{"name": "activation_rate_7d", "alias": "a", "offset_window": "1 month"}],
        },
    }
    query = MetricQuery(metrics=("activation_last_month",), group_by=("metric_time__month",))
    names = ctes(query, with_metrics(manifest, derived))
    assert len(names) == 2, names
