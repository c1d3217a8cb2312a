"""semantic.compiler.kinds.derived: ratio and derived expressions over the combined leaves."""

from __future__ import annotations

from semantic.compiler.kinds.derived import metric_value
from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import leaves_of


def _value(manifest: Manifest, metric: str) -> str:
    leaves = {metric: leaves_of(manifest.metrics[metric], manifest, (), ())}
    return metric_value(manifest.metrics[metric], manifest, leaves).sql("duckdb")


def test_ratio_divides_as_double_and_never_by_zero(manifest: Manifest) -> None:
    """paid_invoice_rate: numerator as DOUBLE over NULLIF(denominator, 0), by leaf alias."""
    numerator, denominator = leaves_of(manifest.metrics["paid_invoice_rate"], manifest, (), ())
    assert _value(manifest, "paid_invoice_rate") == (
        f"CAST(combined.{numerator.alias} AS DOUBLE) / NULLIF(combined.{denominator.alias}, 0)"
    )


def test_derived_substitutes_inputs_into_its_expression(manifest: Manifest) -> None:
    """net_new_accounts = new_accounts - churned_accounts, each filled with 0 when missing."""
    sql = _value(manifest, "net_new_accounts")
    assert sql.count("COALESCE(") == 2
    assert " - " in sql
    assert "combined.new_accounts__spine" in sql and "combined.churned_accounts__spine" in sql


def test_simple_metric_reads_its_leaf_column(manifest: Manifest) -> None:
    """A simple metric's value is its aggregation column in the combined row."""
    assert _value(manifest, "signups") == "combined.signups"
