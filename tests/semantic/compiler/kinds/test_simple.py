"""semantic.compiler.kinds.simple: a measure's aggregation function."""

from __future__ import annotations

import dataclasses

import pytest
from sqlglot import exp

from semantic.compiler.kinds.simple import aggregate
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import MSG_UNSUPPORTED
from tally.errors import QueryError


@pytest.mark.parametrize(
    ("measure", "sql"),
    [
        ("events_tracked", "COUNT(DISTINCT v)"),
        ("invoice_amount", "SUM(v)"),
        ("average_invoice_amount", "AVG(v)"),
        ("first_event_at", "MIN(v)"),
        ("median_invoice_amount", "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY v)"),
        ("p90_invoice_amount", "PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY v)"),
    ],
)
def test_each_aggregation_renders_its_function(manifest: Manifest, measure: str, sql: str) -> None:
    """The fixture's measures cover the aggregations the compiler knows."""
    assert aggregate(manifest.measures[measure], exp.column("v")).sql("postgres") == sql


def test_sum_boolean_counts_true_rows(manifest: Manifest) -> None:
    """sum_boolean sums the flag as an integer (booleans do not add up everywhere)."""
    sql = aggregate(manifest.measures["late_events"], exp.column("v")).sql("postgres")
    assert sql == "SUM(CAST(v AS INT))"


def test_an_unknown_aggregation_is_unsupported(manifest: Manifest) -> None:
    """An aggregation the compiler cannot build is an unsupported_metric error on the measure."""
    odd = dataclasses.replace(manifest.measures["invoice_amount"], agg="mode")
    with pytest.raises(QueryError) as info:
        aggregate(odd, exp.column("v"))
    assert info.value.code == "unsupported_metric"
    assert info.value.message == MSG_UNSUPPORTED.format(what="aggregation 'mode'")
    assert info.value.location == "invoice_amount"
