"""Flags shared by `tally compile` and `tally query` (MetricFlow's `mf query` names)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MetricQuery
from tally.errors import UserError


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
        "--principal-attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="inspect row policies: compile as a principal with this attribute (a value with "
        "commas is a list, e.g. regions=EU,US); repeatable",
    )
    parser.add_argument(
        "--no-pii",
        action="store_true",
        help="compile as a principal that may not view PII (PII columns masked)",
    )
    parser.add_argument(
        "--as-user",
        default=None,
        help="compile for this user's roles and attributes (row policies, masking); "
        "default: the operator, unrestricted",
    )


def principal_from_options(opts: dict[str, Any]) -> Principal | None:
    """The principal the operator asked to compile as (a testing aid), or None (trusted)."""
    pairs = opts.get("principal_attr") or []
    if not pairs and not opts.get("no_pii"):
        return None
    attributes: dict[str, Any] = {}
    for index, pair in enumerate(pairs):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise UserError(
                f"--principal-attr {pair!r} is not KEY=VALUE",
                code="bad_principal",
                location=f"principal_attr[{index}]",
                hint="e.g. --principal-attr tenant_id=t1 --principal-attr regions=EU,US",
            )
        items = [v.strip() for v in value.split(",")]
        attributes[key.strip()] = items if len(items) > 1 else items[0]
    return Principal(name="cli", attributes=attributes, view_pii=not opts.get("no_pii"))


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


__all__ = [
    "DIALECTS",
    "add_query_arguments",
    "as_user_from_options",
    "principal_from_options",
    "query_from_options",
]
