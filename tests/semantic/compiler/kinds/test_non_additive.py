"""semantic.compiler.kinds.non_additive: semi-additive measures read at the window's end."""

from __future__ import annotations

from typing import Any

from semantic.compiler.api import compile_query
from semantic.compiler.filters import filter_conditions
from semantic.compiler.joins import Source
from semantic.compiler.kinds.non_additive import non_additive_select, non_additive_tag
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import leaves_of
from semantic.compiler.spec import MetricQuery


def test_tag_separates_non_additive_measures_from_plain_ones(manifest: Manifest) -> None:
    """Leaves share a scan only with the same non-additive spec (dimension, choice, groups)."""
    assert non_additive_tag(manifest.measures["mrr_started"]) == ""
    tag = non_additive_tag(manifest.measures["latest_subscription_mrr"])
    assert tag.startswith(manifest.measures["latest_subscription_mrr"].non_additive["name"] + ":")


def test_total_reads_only_the_last_rows_as_the_compile_does(manifest: Manifest, duck: Any) -> None:
    """current_mrr without a group-by: the stage's SELECT and the whole compile agree."""
    (leaf,) = leaves_of(manifest.metrics["current_mrr"], manifest, (), ())
    source = Source(manifest.semantic_models["subscriptions"], manifest, "current_mrr")
    conditions = filter_conditions(leaf.filters, source, leaf.measure, "filter")
    select = non_additive_select(source, [], [leaf], conditions, leaf.measure)
    (stage,) = duck.execute(select.sql("duckdb")).fetchall()
    (compiled,) = duck.execute(
        compile_query(MetricQuery(metrics=("current_mrr",)), manifest).sql
    ).fetchall()
    assert stage == compiled
    # By hand: per account, the active subscription(s) with the latest start, summed.
    expected = duck.execute(
        "SELECT SUM(mrr) FROM subscriptions s WHERE ended_at IS NULL AND started_at = "
        "(SELECT MAX(started_at) FROM subscriptions o "
        "WHERE o.account_id = s.account_id AND o.ended_at IS NULL)"
    ).fetchone()
    assert stage == expected
