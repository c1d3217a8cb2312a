"""Errors name the metric the user asked for, with the path tried, never only the input
metric or measure where the compiler noticed the problem (issue 16: "revenue_amount",
"event_rows" in messages about metrics nobody typed)."""

from __future__ import annotations

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def _message(manifest: Manifest, **query: object) -> str:
    with pytest.raises(QueryError) as caught:
        compile_query(MetricQuery(**query), manifest)  # type: ignore[arg-type]
    return caught.value.message


def test_a_ratio_names_itself_not_its_input_metric(manifest: Manifest) -> None:
    message = _message(manifest, metrics=("paid_invoice_rate",), group_by=("user__country",))
    assert message == (
        "'user__country' cannot be reached from metric 'paid_invoice_rate' (path tried: "
        "paid_invoice_rate → invoices_issued → measure invoices_issued of semantic model "
        "'invoices')"
    )


def test_a_simple_metric_names_itself_not_its_measure(manifest: Manifest) -> None:
    message = _message(manifest, metrics=("tracked_revenue",), group_by=("invoice__status",))
    assert message.startswith("'invoice__status' cannot be reached from metric 'tracked_revenue'")
    assert message.endswith(
        "(path tried: tracked_revenue → measure event_revenue of semantic model 'events')"
    )


def test_a_cumulative_metric_without_metric_time_names_the_metric(manifest: Manifest) -> None:
    message = _message(manifest, metrics=("revenue_month_to_date",), group_by=("invoice__status",))
    assert message == (
        "a cumulative metric over a window or to date (metric 'revenue_month_to_date') needs "
        "metric_time in group_by: its value is defined per day (path tried: "
        "revenue_month_to_date → measure invoice_amount of semantic model 'invoices')"
    )


def test_a_where_filter_error_names_the_metric_not_its_measure(manifest: Manifest) -> None:
    message = _message(
        manifest,
        metrics=("revenue",),
        group_by=("metric_time__month",),
        where=("{{ Dimension('account__nosuch') }} = 1",),
    )
    assert "'invoice_amount'" not in message.split(" (path tried")[0]
    assert "metric 'revenue'" in message
    assert message.endswith(
        "(path tried: revenue → measure invoice_amount of semantic model 'invoices')"
    )


def test_a_message_that_names_the_requested_metric_is_left_alone(manifest: Manifest) -> None:
    message = _message(manifest, metrics=("revenu",))
    assert "path tried" not in message and "'revenu'" in message
