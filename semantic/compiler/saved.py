"""Saved queries from the definitions → MetricQuery (Django-free)."""

from __future__ import annotations

import re

from registry.definitions.issues import did_you_mean
from semantic.compiler.manifest import Manifest
from semantic.compiler.resolve import object_item_name
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError

_METRIC_ORDER = re.compile(
    r"""^\s*Metric\(\s*'([^']+)'\s*\)(?:\.descending\(\s*(True|False)\s*\))?\s*$"""
)


def _item_name(text: str, location: str, custom_grains: tuple[str, ...] = ()) -> tuple[str, bool]:
    """``TimeDimension('metric_time', 'day')`` → (``metric_time__day``, descending?)."""
    metric = _METRIC_ORDER.match(text)
    if metric:
        # Metric('x') in a saved query's order_by names an output column, not a filter item.
        return metric.group(1).lower(), metric.group(2) == "True"

    item = text.strip()
    if item.startswith("{{") and item.endswith("}}"):
        item = item[2:-2].strip()
    name = object_item_name(item.replace(".descending(True)", ""), location, custom_grains)
    return name, ".descending(True)" in text.replace(" ", "")


def saved_query_to_query(manifest: Manifest, name: str, query: MetricQuery) -> MetricQuery:
    """The saved query's metrics, group-by, filters, order and limit, plus the caller's
    extra filters; the caller's limit and order win when given."""

    saved = manifest.saved_queries.get(name)
    if saved is None:
        raise QueryError(
            f"unknown saved query {name!r}",
            code="unknown_saved_query",
            location="saved_query",
            hint=did_you_mean(name, manifest.saved_queries),
        )
    params = saved.get("query_params") or {}
    grains = manifest.time_spine.custom_grain_names
    group_by = tuple(
        _item_name(g, f"saved_query.group_by[{i}]", grains)[0]
        for i, g in enumerate(params.get("group_by") or [])
    )
    where = params.get("where") or ()
    where = (where,) if isinstance(where, str) else tuple(where)
    order_by = []
    for index, item in enumerate(params.get("order_by") or []):
        item_name, descending = _item_name(item, f"saved_query.order_by[{index}]", grains)
        order_by.append(("-" if descending else "") + item_name)
    return MetricQuery(
        metrics=tuple(params.get("metrics") or ()),
        group_by=group_by,
        where=where + query.where,
        start_time=query.start_time,
        end_time=query.end_time,
        order_by=query.order_by or tuple(order_by),
        limit=query.limit if query.limit is not None else params.get("limit"),
        dialect=query.dialect,
        min_max_only=query.min_max_only,
        apply_group_by=query.apply_group_by,
        having=query.having,
    )
