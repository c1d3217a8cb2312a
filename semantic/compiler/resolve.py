"""Resolve: the query's names → typed items, with did-you-mean errors.

Owns the checks on the request itself (dialect, metrics, limit, time range dates), group-by
text → ``GroupByItem`` (``account__plan``, ``metric_time__month``), MetricFlow's output column
order, and ``query_error``, the QueryError every compiler stage raises for user input.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from registry.definitions.issues import did_you_mean
from semantic.compiler.grains import GRAINS
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

    @property
    def column(self) -> str:
        return self.text


def query_error(message: str, *, code: str, location: str, hint: str | None = None) -> QueryError:
    return QueryError(message, code=code, location=location, hint=hint)


def check_query(query: MetricQuery, manifest: Manifest) -> None:
    if query.dialect not in DIALECTS:
        raise query_error(
            f"unsupported dialect {query.dialect!r}",
            code="unsupported_dialect",
            location="dialect",
            hint=did_you_mean(query.dialect, DIALECTS) or "use one of " + ", ".join(DIALECTS),
        )
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


def parse_group_by(text: str, location: str) -> GroupByItem:
    """``metric_time__month`` / ``account__plan`` / ``user__account__region`` / ``account``.

    Example:
        >>> parse_group_by("user__account__created_at__month", "group_by[0]")
        GroupByItem(text='user__account__created_at__month', kind='time', element='created_at', entity_path=('user', 'account'), grain='month')
    """
    parts = text.strip().lower().split("__")
    if not all(parts):
        raise query_error(
            f"malformed group-by item {text!r}", code="unknown_dimension", location=location
        )
    grain = parts[-1] if parts[-1] in GRAINS and len(parts) > 1 else None
    if grain:
        parts = parts[:-1]
    if parts == [METRIC_TIME]:
        return GroupByItem(text.strip().lower(), "time", METRIC_TIME, (), grain)
    if len(parts) == 1:
        return GroupByItem(text.strip().lower(), "entity", parts[0], (), None)
    return GroupByItem(
        text.strip().lower(), "time" if grain else "dimension", parts[-1], tuple(parts[:-1]), grain
    )


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
