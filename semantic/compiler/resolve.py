"""Resolve: the query's names → typed items, with did-you-mean errors.

Owns the checks on the request itself (dialect, metrics, limit, time range dates), group-by
text → ``GroupByItem`` (``account__plan``, ``metric_time__month``), MetricFlow's output column
order, and ``query_error``, the QueryError every compiler stage raises for user input.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from registry.definitions.issues import did_you_mean
from semantic.compiler.date_parts import DATE_PARTS, EXTRACT_PREFIX
from semantic.compiler.grains import ALL_GRAINS
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import DIALECTS, MAX_LIMIT, MetricQuery
from tally.errors import QueryError

METRIC_TIME = "metric_time"


MSG_UNKNOWN_METRIC = "unknown metric {name!r}"


@dataclass(frozen=True)
class GroupByItem:
    """One requested output column: a dimension, time dimension or entity along a path."""

    text: str
    kind: str  # "time" | "dimension" | "entity"
    element: str
    entity_path: tuple[str, ...]
    grain: str | None = None
    date_part: str | None = None

    @property
    def column(self) -> str:
        return self.text


def query_error(message: str, *, code: str, location: str, hint: str | None = None) -> QueryError:
    return QueryError(message, code=code, location=location, hint=hint)


def check_query(query: MetricQuery, manifest: Manifest) -> None:
    check_request(query)
    if not query.metrics:
        raise query_error(
            "no metrics requested", code="no_metrics", location="metrics", hint="pass --metrics a,b"
        )
    for index, name in enumerate(query.metrics):
        if name not in manifest.metrics:
            raise query_error(
                MSG_UNKNOWN_METRIC.format(name=name),
                code="unknown_metric",
                location=f"metrics[{index}]",
                hint=did_you_mean(name, manifest.metrics),
            )


MSG_MIN_MAX_ONLY = (
    "min_max_only needs exactly one group-by item and no metrics, order_by or limit "
    "(it gives that item's least and greatest value)"
)
MSG_HAVING_WITHOUT_METRICS = "having needs metrics: it filters the aggregated rows"
MSG_APPLY_GROUP_BY = (
    "apply_group_by=false is for queries without metrics (rows of the group-by items, "
    "duplicates kept); metrics are always aggregated by the group-by items"
)


def check_options(query: MetricQuery) -> None:
    """MetricFlow's rules for its options of queries without metrics: ``min_max_only`` with
    exactly one group-by item and no metrics, order or limit; ``apply_group_by=False`` only
    without metrics.

    Example:
        >>> check_options(MetricQuery(metrics=("m",), min_max_only=True))
        Traceback (most recent call last):
        ...
        tally.errors.QueryError: min_max_only needs exactly one group-by item and no metrics, order_by or limit (it gives that item's least and greatest value)
    """
    if query.min_max_only:
        wrong = (
            ("metrics", bool(query.metrics)),
            ("group_by", len(query.group_by) != 1),
            ("order_by", bool(query.order_by)),
            ("limit", query.limit is not None),
        )
        field = next((name for name, bad in wrong if bad), None)
        if field is not None:
            raise query_error(
                MSG_MIN_MAX_ONLY,
                code="bad_query_option",
                location=field,
                hint=f"drop {field} or min_max_only" if field != "group_by" else (
                    "ask for one item, e.g. --group-by metric_time --min-max-only"
                ),
            )  # fmt: skip
    if query.having and not query.metrics:
        raise query_error(
            MSG_HAVING_WITHOUT_METRICS,
            code="bad_having",
            location="having",
            hint="filter the group-by items with where instead",
        )
    if not query.apply_group_by and query.metrics:
        raise query_error(
            MSG_APPLY_GROUP_BY,
            code="bad_query_option",
            location="apply_group_by",
            hint="drop the metrics, or drop apply_group_by=false",
        )


def check_request(query: MetricQuery) -> None:
    """What every query must satisfy, with or without metrics: dialect, limit, time range,
    the options' use."""
    check_options(query)
    if query.dialect not in DIALECTS:
        raise query_error(
            f"unsupported dialect {query.dialect!r}",
            code="unsupported_dialect",
            location="dialect",
            hint=did_you_mean(query.dialect, DIALECTS) or "use one of " + ", ".join(DIALECTS),
        )
    if query.limit is not None and not 0 <= query.limit <= MAX_LIMIT:
        raise query_error(
            f"limit {query.limit} is out of range",
            code="bad_limit",
            location="limit",
            hint=f"use 0 to {MAX_LIMIT:,}",
        )
    if (
        query.start_time
        and query.end_time
        and query_date(query.start_time, "start_time") > query_date(query.end_time, "end_time")
    ):
        raise query_error(
            f"start_time {query.start_time} is after end_time {query.end_time}",
            code="bad_time_range",
            location="start_time",
            hint="swap them",
        )


def output_order(item: GroupByItem) -> tuple[int, int, str]:
    """MetricFlow's column order: metric_time first, then by join depth, then by name."""
    return (0 if item.element == METRIC_TIME else 1, len(item.entity_path), item.text)


def parse_group_by(text: str, location: str, custom_grains: tuple[str, ...] = ()) -> GroupByItem:
    """``metric_time__month`` / ``account__plan`` / ``user__account__region`` / ``account``,
    ``metric_time__extract_dow``, or MetricFlow's object syntax
    (``TimeDimension('metric_time', date_part_name='dow')``, ``Dimension('account__plan')``),
    which names its column as the dundered spelling does.

    Example:
        >>> parse_group_by("user__account__created_at__month", "group_by[0]")
        GroupByItem(text='user__account__created_at__month', kind='time', element='created_at', entity_path=('user', 'account'), grain='month', date_part=None)
        >>> parse_group_by("TimeDimension('metric_time', date_part_name='DOW')", "g").text
        'metric_time__extract_dow'
    """
    stripped = text.strip()
    if stripped.endswith(")") and "(" in stripped:
        stripped = object_item_name(stripped, location, custom_grains)
    parts = stripped.lower().split("__")
    if not all(parts):
        raise query_error(
            f"malformed group-by item {text!r}", code="unknown_dimension", location=location
        )
    name = "__".join(parts)
    date_part = None
    grain = None
    if len(parts) > 1 and parts[-1].startswith(EXTRACT_PREFIX):
        date_part = parts[-1][len(EXTRACT_PREFIX) :]
        if date_part not in DATE_PARTS:
            raise query_error(
                f"unknown date part {date_part!r} in {text.strip()!r}",
                code="unknown_date_part",
                location=location,
                hint=did_you_mean(date_part, DATE_PARTS) or "date parts: " + ", ".join(DATE_PARTS),
            )
        parts = parts[:-1]
    elif len(parts) > 1 and (parts[-1] in ALL_GRAINS or parts[-1] in custom_grains):
        grain = parts[-1]
        parts = parts[:-1]
    elif len(parts) == 2 and parts[0] == METRIC_TIME:
        # metric_time has grains, not dimensions: a custom grain the spine does not define.
        grains = (*ALL_GRAINS, *custom_grains)
        raise query_error(
            f"unknown time grain {parts[1]!r} in {text.strip()!r}",
            code="unknown_grain",
            location=location,
            hint=(did_you_mean(parts[1], grains) or "grains: " + ", ".join(grains))
            + "; a custom grain must be one of the time spine model's custom_granularities",
        )
    if parts == [METRIC_TIME]:
        return GroupByItem(name, "time", METRIC_TIME, (), grain, date_part)
    if len(parts) == 1:
        if date_part:
            raise query_error(
                f"{text.strip()!r}: a date part needs a time dimension",
                code="unknown_dimension",
                location=location,
                hint="e.g. metric_time__extract_year or user__created_at__extract_month",
            )
        return GroupByItem(name, "entity", parts[0], (), None)
    kind = "time" if grain or date_part else "dimension"
    return GroupByItem(name, kind, parts[-1], tuple(parts[:-1]), grain, date_part)


def object_item_name(text: str, location: str, custom_grains: tuple[str, ...] = ()) -> str:
    """``TimeDimension('metric_time', 'month')`` → ``metric_time__month``;
    ``TimeDimension('metric_time', date_part_name='year')`` → ``metric_time__extract_year``;
    ``Dimension('user__account__plan')`` → ``user__account__plan``. Read by the filter parser
    (DSI's own builders), so the object syntax means here what it means in a where filter.

    Example:
        >>> object_item_name("Dimension('account__plan', entity_path=['user'])", "g")
        'user__account__plan'
    """
    from semantic.compiler.where import parse_where

    ref = parse_where(
        "{{ " + text + " }} IS NULL", location=location, custom_granularity_names=custom_grains
    ).refs[0]
    if ref.kind == "metric":
        raise query_error(
            f"{text!r} is a metric, not a group-by item",
            code="unknown_dimension",
            location=location,
            hint="group by Dimension(), TimeDimension() or Entity() items",
        )
    if ref.date_part and ref.grain:
        raise query_error(
            f"{text!r} gives both a grain and a date part",
            code="bad_grain",
            location=location,
            hint="a date part is read at the dimension's own grain: drop the grain",
        )
    suffix = [f"{EXTRACT_PREFIX}{ref.date_part}"] if ref.date_part else []
    suffix = suffix or ([ref.grain] if ref.grain else [])
    return "__".join([*ref.entity_path, ref.name, *suffix])


def item_name(text: str, location: str, custom_grains: tuple[str, ...] = ()) -> str:
    """A group-by or order-by item's output column name (object syntax resolved)."""
    stripped = text.strip()
    if stripped.endswith(")") and "(" in stripped:
        return object_item_name(stripped, location, custom_grains).lower()
    return stripped.lower()


def query_date(value: str, location: str) -> dt.date:
    try:
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        raise query_error(
            f"{value!r} is not an ISO date or timestamp",
            code="bad_time_range",
            location=location,
            hint="use 2026-01-31 or 2026-01-31T12:00:00",
        ) from None
