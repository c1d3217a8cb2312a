"""Flags shared by `tally compile` and `tally query` (MetricFlow's `mf query` names)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from semantic.compiler.spec import DIALECTS, MetricQuery


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def add_query_arguments(parser: CommandParser) -> None:
    parser.add_argument("--metrics", type=_csv, default=(), help="metric names, comma-separated")
    parser.add_argument(
        "--group-by", type=_csv, default=(), help="e.g. metric_time__month,account__plan"
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        help="filter, e.g. \"{{ Dimension('account__plan') }} = 'pro'\"",
    )
    parser.add_argument("--start-time", default=None, help="ISO date/timestamp, inclusive")
    parser.add_argument("--end-time", default=None, help="ISO date/timestamp, inclusive")
    parser.add_argument(
        "--order-by", type=_csv, default=(), help="outputs; prefix - for descending"
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--saved-query", default=None, help="run a saved query from the definitions"
    )
    parser.add_argument("--release", default=None, help="pin a release (default: latest)")
    parser.add_argument("--explain", action="store_true", help="also print compile stage timings")
    parser.add_argument(
        "--as-user",
        default=None,
        help="compile for this user's roles and attributes (row policies, masking); "
        "default: the operator, unrestricted",
    )


def as_user_from_options(opts: dict[str, Any]) -> tuple[Any, Any]:
    """(principal, acting user) for --as-user: that user's roles and attributes, as the API
    would compile for them; (None, None) is the trusted operator."""
    if not opts.get("as_user"):
        return None, None
    from registry.permissions import principal_for
    from registry.services.access import user_get

    user = user_get(opts["as_user"], field="as_user")
    return principal_for(user), user


def query_from_options(opts: dict[str, Any], *, dialect: str) -> MetricQuery:
    return MetricQuery(
        metrics=opts["metrics"],
        group_by=opts["group_by"],
        where=tuple(opts["where"]),
        start_time=opts["start_time"],
        end_time=opts["end_time"],
        order_by=opts["order_by"],
        limit=opts["limit"],
        dialect=dialect,
    )


__all__ = ["DIALECTS", "add_query_arguments", "as_user_from_options", "query_from_options"]
