"""A filter may name a query item by its MetricFlow column name (``metric_time__day >= …``,
``event__occurred_at__day``), as MetricFlow's own filters do (its itest
``test_metric_time_in_where``): the name becomes the item ``{{ Dimension('<name>') }}`` and
goes through the same resolution; every other bare column is still refused (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import MetricQuery
from semantic.compiler.where import MSG_BARE_COLUMN, parse_where
from tally.errors import QueryError


def test_a_dundered_column_is_the_item_of_that_name() -> None:
    """metric_time__day reads as TimeDimension('metric_time', 'day'), behind a placeholder."""
    parsed = parse_where("metric_time__day >= '2026-01-01'")
    (ref,) = parsed.refs
    assert (ref.kind, ref.name, ref.entity_path, ref.grain) == (
        "time_dimension",
        "metric_time",
        (),
        "day",
    )
    assert ref.text == "metric_time__day"
    assert parsed.expression.sql() == f"{ref.placeholder} >= '2026-01-01'"


def test_the_column_and_its_jinja_spelling_share_one_item() -> None:
    """Equal items share one placeholder, whichever way each was written."""
    parsed = parse_where(
        "{{ Dimension('account__plan') }} = 'pro' AND account__plan <> 'free' "
        "AND METRIC_TIME__DAY > '2026-01-01' AND metric_time__day < '2026-02-01'"
    )
    assert [(r.name, r.entity_path) for r in parsed.refs] == [
        ("plan", ("account",)),
        ("metric_time", ()),
    ]


@pytest.mark.parametrize(
    ("where", "name"),
    [
        ("occurred_at > '2026-01-01'", "occurred_at"),
        ("\"metric_time__day\" > '2026-01-01'", '"metric_time__day"'),
        ("events.metric_time__day > '2026-01-01'", "events.metric_time__day"),
        ("__tally_ref_0 = 1", "__tally_ref_0"),
    ],
)
def test_other_bare_columns_are_still_refused(where: str, name: str) -> None:
    """Single names, quoted or qualified names and spoofed placeholders stay bare columns."""
    with pytest.raises(QueryError) as caught:
        parse_where(where)
    assert caught.value.message == MSG_BARE_COLUMN.format(name=name)


def _rows(manifest: Manifest, duck: Any, where: str, metric: str = "events_tracked") -> list[Any]:
    query = MetricQuery(
        metrics=(metric,), group_by=("metric_time__day",), where=(where,), order_by=("metric_time",)
    )
    return duck.execute(compile_query(query, manifest).sql).fetchall()


def test_metric_time_column_filters_as_the_time_dimension(manifest: Manifest, duck: Any) -> None:
    """The rows equal those of the Jinja spelling, and the filter really filters."""
    bare = _rows(manifest, duck, "metric_time__day >= '2026-03-01'")
    jinja = _rows(manifest, duck, "{{ TimeDimension('metric_time', 'day') }} >= '2026-03-01'")
    everything = _rows(manifest, duck, "metric_time__day IS NOT NULL")
    assert bare == jinja
    assert 0 < len(bare) < len(everything)


def test_agg_time_dimension_column_filters(manifest: Manifest, duck: Any) -> None:
    """An agg_time_dimension by its column name (event__occurred_at__day) filters too."""
    bare = _rows(manifest, duck, "event__occurred_at__day < '2026-03-01'")
    jinja = _rows(manifest, duck, "{{ TimeDimension('event__occurred_at', 'day') }} < '2026-03-01'")
    assert bare == jinja and bare


def test_an_unknown_column_name_is_refused_as_an_unknown_item(manifest: Manifest) -> None:
    """A misspelt item name gets the item's refusal, named as written, with a suggestion."""
    with pytest.raises(QueryError) as caught:
        compile_query(
            MetricQuery(metrics=("events_tracked",), where=("event__ocurred_at__day > '2026'",)),
            manifest,
        )
    assert caught.value.code == "unknown_dimension"
    assert "'event__ocurred_at__day'" in caught.value.message
    assert caught.value.hint == "did you mean 'occurred_at'?"
