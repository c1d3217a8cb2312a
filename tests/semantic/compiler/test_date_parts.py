"""Date parts (issue 17): both spellings, where and order-by, clear refusals."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from semantic.compiler.api import compile_query
from semantic.compiler.date_parts import MARKER
from semantic.compiler.manifest import Manifest
from semantic.compiler.resolve import parse_group_by
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def _error(manifest: Manifest, **query: object) -> QueryError:
    with pytest.raises(QueryError) as info:
        compile_query(MetricQuery(**query), manifest)  # type: ignore[arg-type]
    return info.value


def test_both_spellings_name_the_column_as_metricflow() -> None:
    """``TimeDimension('metric_time', date_part_name='dow')`` is ``metric_time__extract_dow``,
    on metric_time and on a dimension along a join path."""
    assert parse_group_by(
        "TimeDimension('metric_time', date_part_name='dow')", "g"
    ) == parse_group_by("metric_time__extract_dow", "g")
    item = parse_group_by("TimeDimension('user__account__created_at', date_part_name='year')", "g")
    assert (item.text, item.entity_path, item.date_part) == (
        "user__account__created_at__extract_year",
        ("user", "account"),
        "year",
    )


def test_date_parts_group_filter_and_order_on_duckdb(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """Rows by ISO day of week equal a hand-written count; the filter keeps weekdays only."""
    compiled = compile_query(
        MetricQuery(
            metrics=("events_tracked",),
            group_by=("TimeDimension('metric_time', date_part_name='dow')",),
            where=("{{ TimeDimension('metric_time', date_part_name='dow') }} <= 5",),
            order_by=("-metric_time__extract_dow",),
        ),
        manifest,
    )
    assert compiled.columns == ("metric_time__extract_dow", "events_tracked")
    got = duck.execute(compiled.sql).fetchall()
    expected = duck.execute(
        "SELECT isodow(occurred_at) AS d, COUNT(DISTINCT event_id) FROM main.events "
        "WHERE isodow(occurred_at) <= 5 GROUP BY 1 ORDER BY 1 DESC"
    ).fetchall()
    assert got == expected and [row[0] for row in got] == [5, 4, 3, 2, 1]


def test_week_is_a_date_part_in_filters_too(manifest: Manifest) -> None:
    """DSI has no week date part; Tally reads it as the ISO week in filters as in group-by."""
    sql = compile_query(
        MetricQuery(
            metrics=("events_tracked",),
            where=("{{ Dimension('user__signed_up_at').date_part('week') }} = 1",),
        ),
        manifest,
    ).sql
    assert "EXTRACT(WEEK FROM" in sql


@pytest.mark.parametrize(
    ("query", "code", "hint"),
    [
        (
            {"metrics": ("events_tracked",), "group_by": ("metric_time__extract_fortnight",)},
            "unknown_date_part",
            "date parts: year, quarter, month, week, day, dow, doy",
        ),
        (
            {"metrics": ("events_tracked",), "group_by": ("metric_time__extract_yaer",)},
            "unknown_date_part",
            "did you mean 'year'?",
        ),
        (
            {
                "metrics": ("events_tracked",),
                "group_by": ("TimeDimension('metric_time', date_part_name='hour')",),
            },
            "bad_where",
            None,
        ),
        (
            {
                "metrics": ("events_tracked",),
                "where": ("{{ TimeDimension('metric_time', date_part_name='dayofweek') }} = 1",),
            },
            "bad_where",
            None,
        ),
        (
            {"metrics": ("events_tracked",), "group_by": ("user__extract_year",)},
            "unknown_dimension",
            None,
        ),
        (
            {"metrics": ("accounts_created_to_date",), "group_by": ("metric_time__extract_year",)},
            "unsupported_date_part",
            "group by metric_time at a grain instead, e.g. metric_time__year",
        ),
    ],
)
def test_bad_date_parts_are_refused_clearly(
    manifest: Manifest, query: dict, code: str, hint: str | None
) -> None:
    """An unknown date part, a date part on an entity, a date part with a spine metric: each a
    QueryError with a stable code (the API's 400, the CLI's exit 1)."""
    error = _error(manifest, **query)
    assert error.code == code, error
    if hint is not None:
        assert error.hint == hint


def test_bare_metric_time_is_named_after_its_default_grain(manifest: Manifest) -> None:
    """As MetricFlow: group by metric_time → column metric_time__day (the data's grain)."""
    compiled = compile_query(
        MetricQuery(
            metrics=("events_tracked",), group_by=("metric_time",), order_by=("-metric_time",)
        ),
        manifest,
    )
    assert compiled.columns == ("metric_time__day", "events_tracked")
    assert "ORDER BY\n  metric_time__day DESC" in compiled.sql


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "clickhouse"])
def test_a_date_part_only_in_a_filter_is_still_written_per_engine(
    manifest: Manifest, dialect: str
) -> None:
    """Render looks for date-part markers only when the compile built one (compile speed,
    issue #16): a date part reached only through a where filter is still written as the
    engine's own function, also right after a compile that built none."""
    plain = MetricQuery(metrics=("events_tracked",), group_by=("metric_time__month",))
    assert MARKER not in compile_query(replace(plain, dialect=dialect), manifest).sql
    for where in (
        "{{ TimeDimension('metric_time', date_part_name='dow') }} = 1",
        "{{ Dimension('user__account__created_at').date_part('quarter') }} = 1",
    ):
        sql = compile_query(replace(plain, where=(where,), dialect=dialect), manifest).sql
        assert MARKER not in sql, where
        assert sqlglot.parse_one(sql, read=dialect).find(exp.EQ) is not None, where
