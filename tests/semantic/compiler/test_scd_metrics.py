"""Every metric kind over the SCD dimension of the fixtures (plan_history: the account's plan
at the time), on the demo warehouse: the numbers agree with the same metrics without it
(issue #16)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import MetricQuery

PLANS = {"free", "starter", "pro", "enterprise", None}


def rows(duck: duckdb.DuckDBPyConnection, manifest: Manifest, **query: object) -> list[tuple]:
    return duck.sql(compile_query(MetricQuery(**query), manifest).sql).fetchall()  # type: ignore[arg-type]


def by_first(found: list[tuple]) -> dict[object, Decimal]:
    totals: dict[object, Decimal] = defaultdict(Decimal)
    for row in found:
        totals[row[0]] += Decimal(str(row[-1] or 0))
    return dict(totals)


def nonzero(totals: dict[object, Decimal]) -> dict[object, Decimal]:
    return {key: value for key, value in totals.items() if value}


@pytest.mark.parametrize(
    "metric",
    [
        "accounts_created_to_date",  # cumulative (all-time, to date)
        "trial_to_paid_conversions_14d",  # conversion, grouped under the base event's plan
        "new_accounts",  # simple, join_to_timespine
        "late_events",  # simple sum_boolean
    ],
)
def test_plan_at_time_groups_add_up_per_month(
    duck: duckdb.DuckDBPyConnection, manifest: Manifest, metric: str
) -> None:
    """Grouped by the plan at the time as well, each month adds up to the month's value:
    the validity window picks exactly one plan row (or none: NULL) per measured row."""
    plain = by_first(rows(duck, manifest, metrics=(metric,), group_by=("metric_time__month",)))
    split = rows(
        duck, manifest, metrics=(metric,), group_by=("metric_time__month", "account__plan_at_time")
    )
    assert {row[1] for row in split} <= PLANS
    # Months with a zero (a spine-filled month) may have no plan rows at all.
    assert nonzero(by_first(split)) == nonzero(plain)


def test_a_filter_on_the_scd_dimension_equals_its_group(
    duck: duckdb.DuckDBPyConnection, manifest: Manifest
) -> None:
    """paid_plan_events (filtered on account__is_paid_at_time) is the 'true' group of
    events_tracked by account__is_paid_at_time, month by month; the ratio is their quotient."""
    filtered = {
        r[0]: r[1]
        for r in rows(
            duck, manifest, metrics=("paid_plan_events",), group_by=("metric_time__month",)
        )
    }
    grouped = {
        r[0]: r[2]
        for r in rows(
            duck,
            manifest,
            metrics=("events_tracked",),
            group_by=("metric_time__month", "account__is_paid_at_time"),
        )
        if r[1] is True
    }
    assert filtered == grouped and sum(filtered.values()) > 0
    share = rows(
        duck,
        manifest,
        metrics=("paid_plan_event_share", "paid_plan_events", "events_tracked"),
        group_by=("metric_time__month",),
    )
    for _, ratio, paid, total in share:
        assert ratio == pytest.approx((paid or 0) / total) if paid else ratio in (None, 0)


def test_the_plan_then_differs_from_the_plan_now(
    duck: duckdb.DuckDBPyConnection, manifest: Manifest
) -> None:
    """The point of the SCD model: events under the plan then are not events under the plan
    now, and both add up to every event (one of them had no plan yet: NULL)."""
    then = dict(rows(duck, manifest, metrics=("event_rows",), group_by=("account__plan_at_time",)))
    now = dict(rows(duck, manifest, metrics=("event_rows",), group_by=("account__plan",)))
    assert then != now
    assert sum(then.values()) == sum(now.values()) == 20_000
