"""semantic.compiler.plan: metrics expand to the leaf aggregations they read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from semantic.compiler.manifest import Manifest
from semantic.compiler.plan import (
    Cumulative,
    leaf_alias,
    leaves_of,
    metric_inputs,
    metric_measures,
    metric_parts,
)


def test_simple_metric_reads_one_leaf_with_its_filter(manifest: Manifest) -> None:
    """A filtered simple metric is one leaf whose alias carries a digest of the filter."""
    (leaf,) = leaves_of(manifest.metrics["revenue"], manifest, (), ())
    assert leaf.measure.name == "invoice_amount"
    assert leaf.filters == manifest.metrics["revenue"].filters
    assert leaf.alias == leaf_alias("invoice_amount", leaf.filters)
    assert leaf.alias.startswith("invoice_amount__f")


def test_ratio_inputs_with_different_filters_are_different_leaves(manifest: Manifest) -> None:
    """paid_invoice_rate reads invoices_issued twice, under two filters: two aliases."""
    numerator, denominator = leaves_of(manifest.metrics["paid_invoice_rate"], manifest, (), ())
    assert numerator.measure.name == denominator.measure.name == "invoices_issued"
    assert numerator.alias != denominator.alias
    assert "paid" in numerator.filters[0] and "void" in denominator.filters[0]


def test_leaf_alias_is_stable_and_ignores_filter_order() -> None:
    """Aliases depend on the set of filters only, so goldens never change run to run."""
    assert leaf_alias("m", ()) == "m"
    assert leaf_alias("m", ("a", "b")) == leaf_alias("m", ("b", "a"))
    assert leaf_alias("m", ("a",)) != leaf_alias("m", ("b",))


def test_cumulative_leaf_carries_its_window(manifest: Manifest) -> None:
    """weekly_active_users: a 7-day trailing window, last value per period."""
    (leaf,) = leaves_of(manifest.metrics["weekly_active_users"], manifest, (), ())
    assert leaf.cumulative == Cumulative((7, "day"), None, "last")
    assert leaf.alias == "active_users__w7day_last"


def test_offset_input_of_a_derived_metric_is_its_own_leaf(manifest: Manifest) -> None:
    """revenue_growth_mom reads revenue now and one month earlier: two leaves."""
    now, prior = leaves_of(manifest.metrics["revenue_growth_mom"], manifest, (), ())
    assert now.offset is None
    assert prior.offset == ("window", "1 month")
    assert prior.alias == now.alias + "__offset_1_month"


def test_conversion_metric_reads_base_and_conversion_leaves(manifest: Manifest) -> None:
    """trial_to_paid_rate_14d: base events filtered to trials, conversions within 14 days."""
    base, converted = leaves_of(manifest.metrics["trial_to_paid_rate_14d"], manifest, (), ())
    assert base.measure.name == "trial_accounts" and base.conversion is None
    assert converted.conversion is not None
    assert (converted.conversion.entity, converted.conversion.window) == ("account", (14, "day"))
    assert converted.conversion.base_measure.name == "trial_accounts"


def test_metric_inputs_of_ratio_and_derived(manifest: Manifest) -> None:
    """A ratio's inputs are numerator then denominator; a derived metric's are listed."""
    assert [r["name"] for r in metric_inputs(manifest.metrics["stickiness"])] == [
        "daily_active_users",
        "monthly_active_users",
    ]
    assert [r["name"] for r in metric_inputs(manifest.metrics["net_new_accounts"])] == [
        "new_accounts",
        "churned_accounts",
    ]


@pytest.mark.parametrize(
    ("metric", "measures"),
    [
        ("stickiness", ["active_users"]),
        ("net_new_accounts", ["new_accounts", "churned_accounts"]),
        ("activation_rate_7d", ["signup_accounts", "activated_accounts"]),
    ],
)
def test_metric_measures_lists_each_measure_once(
    manifest: Manifest, metric: str, measures: list[str]
) -> None:
    """Every measure a metric aggregates, through its inputs, without duplicates."""
    assert [m.name for m in metric_measures(manifest, metric)] == measures


def test_metric_parts_name_the_role_of_each_leaf(manifest: Manifest) -> None:
    """Ratio parts are numerator/denominator; conversion parts are base events/conversions."""
    roles = [role for role, _, _ in metric_parts(manifest.metrics["stickiness"], manifest)]
    assert roles == ["numerator", "denominator"]
    conversion = metric_parts(manifest.metrics["activation_rate_7d"], manifest)
    assert [role for role, _, _ in conversion] == ["base events", "conversions"]


def test_leaves_are_kept_per_manifest_for_its_own_metrics_only(manifest: Manifest) -> None:
    """A metric's expansion is cached on the manifest (compile speed, issue #16): each call
    still gets its own list, and a metric object that is not the manifest's own (same name,
    other spec) is expanded from its own spec, never served another's leaves."""
    metric = manifest.metrics["revenue"]
    first = leaves_of(metric, manifest, (), ())
    first.append(first[0])
    assert leaves_of(metric, manifest, (), ()) == first[:1]
    other = replace(
        metric, spec={**metric.spec, "filter": "{{ Dimension('invoice__status') }} = 'x'"}
    )
    (leaf,) = leaves_of(other, manifest, (), ())
    assert leaf.filters == other.filters != metric.filters
    assert leaves_of(metric, manifest, (), ())[0].filters == metric.filters
