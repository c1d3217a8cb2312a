"""drilldown_selects: the source-row reads behind one value, for every fixture metric."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from semantic.compiler.drilldown import drilldown_selects
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import DIALECTS
from tally.errors import QueryError
from tests.semantic.conftest import fixtures_manifest


@pytest.mark.parametrize("metric", sorted(fixtures_manifest().metrics))
def test_every_fixture_metric_drills_down_in_every_dialect(manifest: Manifest, metric: str) -> None:
    """Each metric type (simple, ratio, derived with offsets, cumulative, conversion) yields
    one read per aggregation, sliced through a join, that renders and parses back in all
    dialects; a part not exactly re-aggregable says why in a note."""
    parts = drilldown_selects(
        manifest,
        metric=metric,
        grain="month",
        period_start=dt.date(2026, 3, 1),
        slice_values={"account__plan": "pro"} if metric != "signups" else {},
    )
    assert parts
    for part in parts:
        assert part.exact or part.notes, part
        for dialect in DIALECTS:
            sql = part.sql(dialect)
            assert sqlglot.parse_one(sql, read=dialect) is not None, (dialect, sql)


def test_offset_input_reads_the_earlier_period(manifest: Manifest) -> None:
    """revenue_growth_mom's prior-month input reads the month before the value's."""
    current, prior = drilldown_selects(
        manifest, metric="revenue_growth_mom", grain="month", period_start=dt.date(2026, 3, 1)
    )
    assert (current.first_day, current.last_day) == (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert prior.role == "input revenue_prior_month"
    assert (prior.first_day, prior.last_day) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))


def test_to_date_cumulative_covers_the_period_to_date(manifest: Manifest) -> None:
    """revenue_month_to_date on a day reads from the first of its month to that day."""
    (part,) = drilldown_selects(
        manifest, metric="revenue_month_to_date", grain="day", period_start=dt.date(2026, 3, 17)
    )
    assert (part.first_day, part.last_day) == (dt.date(2026, 3, 1), dt.date(2026, 3, 17))
    assert part.exact


def test_unknown_metric_and_unreachable_slice_are_query_errors(manifest: Manifest) -> None:
    """Bad input is a QueryError with a code, never another exception."""
    with pytest.raises(QueryError) as caught:
        drilldown_selects(manifest, metric="nope", grain="day", period_start=dt.date(2026, 1, 1))
    assert caught.value.code == "unknown_metric"
    with pytest.raises(QueryError) as caught:
        drilldown_selects(
            manifest,
            metric="revenue",
            grain="day",
            period_start=dt.date(2026, 1, 1),
            slice_values={"user__country": "DE"},
        )
    assert caught.value.code == "unreachable_dimension"


def test_offset_input_by_a_coarser_grain_reads_the_days_the_compiler_joins() -> None:
    """By month, a 7-day lag reads each day of the month 7 days back (Feb 22 … Mar 24 for
    March); by week, the start of the month is the first day of the Monday's month alone."""
    from tests.semantic.compiler.kinds.test_offset_days import offset_manifest

    manifest = offset_manifest()
    (lagged,) = drilldown_selects(
        manifest, metric="revenue_7_days_ago", grain="month", period_start=dt.date(2026, 3, 1)
    )
    assert (lagged.first_day, lagged.last_day) == (dt.date(2026, 2, 22), dt.date(2026, 3, 24))
    _, at_start = drilldown_selects(
        manifest,
        metric="revenue_since_month_start",
        grain="week",
        period_start=dt.date(2026, 3, 9),
    )
    assert (at_start.first_day, at_start.last_day) == (dt.date(2026, 3, 1), dt.date(2026, 3, 1))


def test_month_offset_by_a_coarser_grain_drills_to_each_day_read_once() -> None:
    """By quarter, a 1-month window reads the days a month forward lands in the quarter:
    for Q2 2020, 1 March … 31 May (May 31 moves to June 30); by year, 2019-12-01 … 2020-11-30."""
    from tests.semantic.compiler.kinds.test_offset_days import offset_manifest

    for grain, start, days in [
        ("quarter", dt.date(2020, 4, 1), (dt.date(2020, 3, 1), dt.date(2020, 5, 31))),
        ("year", dt.date(2020, 1, 1), (dt.date(2019, 12, 1), dt.date(2020, 11, 30))),
    ]:
        (lagged,) = drilldown_selects(
            offset_manifest(), metric="revenue_1_month_ago", grain=grain, period_start=start
        )
        assert (lagged.first_day, lagged.last_day) == days, grain
