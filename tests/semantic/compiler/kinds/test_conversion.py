"""semantic.compiler.kinds.conversion: conversions of an entity within a window after a base event."""

from __future__ import annotations

from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.kinds.conversion import conversion_select
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import leaves_of
from semantic.compiler.resolve import parse_group_by
from semantic.compiler.spec import MetricQuery


def test_conversions_by_plan_match_the_compiled_metric(manifest: Manifest, duck: Any) -> None:
    """The stage's SELECT counts 14-day trial→paid conversions per plan, as the compile does."""
    query = MetricQuery(metrics=("trial_to_paid_conversions_14d",), group_by=("account__plan",))
    _, converted = leaves_of(manifest.metrics["trial_to_paid_conversions_14d"], manifest, (), ())
    select = conversion_select(
        converted, [parse_group_by("account__plan", "group_by[0]")], manifest, query
    )
    stage = duck.execute(select.sql("duckdb")).fetchall()
    compiled = duck.execute(compile_query(query, manifest).sql).fetchall()
    assert sorted(stage, key=str) == sorted(compiled, key=str)
    assert sum(count for _, count in stage) > 0


def test_a_hand_written_conversion_count_agrees(manifest: Manifest, duck: Any) -> None:
    """Accounts purchasing on the day of a trial start or in the 13 days after, by hand."""
    query = MetricQuery(metrics=("trial_to_paid_conversions_14d",))
    _, converted = leaves_of(manifest.metrics["trial_to_paid_conversions_14d"], manifest, (), ())
    (row,) = duck.execute(
        conversion_select(converted, [], manifest, query).sql("duckdb")
    ).fetchall()
    (expected,) = duck.execute(
        "SELECT COUNT(DISTINCT c.account_id) FROM events b JOIN events c "
        "ON b.account_id = c.account_id "
        "AND CAST(b.occurred_at AS DATE) <= CAST(c.occurred_at AS DATE) "
        "AND CAST(b.occurred_at AS DATE) > CAST(c.occurred_at AS DATE) - INTERVAL 14 DAY "
        "WHERE b.event_type = 'trial_started' AND c.event_type = 'purchase'"
    ).fetchone()
    assert row == (expected,)


# The conversion step, written as MetricFlow defines it and with no reduction of the rows:
# every event is a conversion row, credited to the latest trial start of its account within
# 14 days; a month whose trials were matched only by non-purchase events still has a row.
UNREDUCED = """
WITH base AS (
  SELECT account_id, CAST(occurred_at AS DATE) AS d, DATE_TRUNC('month', occurred_at) AS m
  FROM events WHERE event_type = 'trial_started'
), conv AS (
  SELECT ROW_NUMBER() OVER () AS id, account_id, CAST(occurred_at AS DATE) AS d, revenue AS v
  FROM events
), matched AS (
  SELECT b.m, c.v, ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY b.d DESC) AS r
  FROM conv AS c JOIN base AS b
    ON b.account_id = c.account_id AND b.d <= c.d AND b.d > c.d - INTERVAL 14 DAY
)
SELECT m, SUM(v) FROM matched WHERE r = 1 GROUP BY 1
"""


def test_reduced_conversion_rows_give_the_unreduced_answer(manifest: Manifest, duck: Any) -> None:
    """Issue 17's speed-up reads NULL-valued conversion rows once per (entity, day) and
    distinct rows for count_distinct: a sum over conversions (every row kept) and the groups
    matched only by NULL rows come out as MetricFlow's unreduced join gives them."""
    from dataclasses import replace

    metric_spec = {
        "name": "trial_revenue_14d",
        "type": "conversion",
        "type_params": {
            "conversion_type_params": {
                "entity": "account",
                "calculation": "conversions",
                "window": "14 days",
                "base_measure": {
                    "name": "trial_accounts",
                    "filter": "{{ Dimension('event__event_type') }} = 'trial_started'",
                },
                "conversion_measure": "event_revenue",
            }
        },
    }
    from semantic.compiler.manifest import Metric

    extended = replace(
        manifest,
        metrics={
            **manifest.metrics,
            "trial_revenue_14d": Metric("trial_revenue_14d", "conversion", metric_spec, "1"),
        },
    )
    query = MetricQuery(metrics=("trial_revenue_14d",), group_by=("metric_time__month",))
    sql = compile_query(query, extended).sql
    assert "UNION ALL" in sql  # a sum keeps every non-NULL row
    got = sorted(duck.execute(sql).fetchall(), key=str)
    expected = sorted(duck.execute(UNREDUCED).fetchall(), key=str)
    assert [(m, float(v or 0)) for m, v in got] == [(m, float(v or 0)) for m, v in expected]
    assert len(got) == len(expected) and sum(float(v or 0) for _, v in got) > 0


UNREDUCED_ACTIVATIONS = """
WITH base AS (
  SELECT account_id, CAST(occurred_at AS DATE) AS d, DATE_TRUNC('month', occurred_at) AS m
  FROM events WHERE event_type = 'signup'
), conv AS (
  SELECT ROW_NUMBER() OVER () AS id, account_id, CAST(occurred_at AS DATE) AS d,
         CASE WHEN event_type = 'report_created' THEN account_id END AS v
  FROM events
), matched AS (
  SELECT b.m, c.v, ROW_NUMBER() OVER (PARTITION BY c.id ORDER BY b.d DESC) AS r
  FROM conv AS c JOIN base AS b
    ON b.account_id = c.account_id AND b.d <= c.d AND b.d > c.d - INTERVAL 7 DAY
)
SELECT m, COUNT(DISTINCT v) FROM matched WHERE r = 1 GROUP BY 1
"""


def test_self_matched_conversions_read_only_conversion_rows(manifest: Any, duck: Any) -> None:
    """activation_rate_7d: base and conversion events share a model and the conversions are
    unfiltered, so every signup matches itself; Tally reads only report events and takes the
    months from the signups, and gives MetricFlow's unreduced counts, 0 included."""
    query = MetricQuery(metrics=("activation_rate_7d",), group_by=("metric_time__month",))
    base, converted = leaves_of(manifest.metrics["activation_rate_7d"], manifest, (), ())
    select = conversion_select(
        converted, [parse_group_by("metric_time__month", "g")], manifest, query
    )
    sql = select.sql("duckdb")
    # The CASE of the measure becomes its condition, which the scan applies itself.
    assert "(events.event_type = 'report_created') AND NOT events.account_id IS NULL" in sql
    assert "NOT CASE WHEN" not in sql
    got = sorted(duck.execute(sql).fetchall(), key=str)
    assert got == sorted(duck.execute(UNREDUCED_ACTIVATIONS).fetchall(), key=str)
    assert base.measure.semantic_model == converted.measure.semantic_model


@pytest.mark.parametrize("dialect", ["clickhouse", "spark", "databricks"])
def test_base_groups_from_the_join(manifest: Any, duck: Any, dialect: str) -> None:
    """On ClickHouse and Spark the months without activations come from a LEFT JOIN of the
    signups to the reports, not from a second scan of the signups (most of the gap to
    hand-written SQL on chdb, a tenth of Spark's CPU). The same tree, rendered for DuckDB,
    gives the unreduced counts, 0 included."""
    query = MetricQuery(
        metrics=("activation_rate_7d",), group_by=("metric_time__month",), dialect=dialect
    )
    _, converted = leaves_of(manifest.metrics["activation_rate_7d"], manifest, (), ())
    select = conversion_select(
        converted, [parse_group_by("metric_time__month", "g")], manifest, query
    )
    sql = select.sql("duckdb")
    assert sql.count("events.event_type = 'signup'") == 1, sql
    assert "LEFT JOIN" in sql and "present" not in sql
    got = sorted(duck.execute(sql).fetchall(), key=str)
    want = sorted(duck.execute(UNREDUCED_ACTIVATIONS).fetchall(), key=str)
    assert got == want
    assert any(count == 0 for _, count in got), "a month without activations is kept, as 0"
