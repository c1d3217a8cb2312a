"""semantic.compiler.kinds.conversion: conversions of an entity within a window after a base event."""

from __future__ import annotations

from typing import Any

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
