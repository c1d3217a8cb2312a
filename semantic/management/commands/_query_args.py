"""Flags shared by `tally compile` and `tally query` (MetricFlow's `mf query` names).

List flags (``--metrics``, ``--group-by``, ``--order``) are split on top-level commas by a
small tokenizer, not ``str.split``: ``TimeDimension('metric_time', 'month')`` and quoted
strings keep their commas. A flag may also be repeated. Object-syntax items
(``Dimension('account__plan')``, ``TimeDimension('metric_time', 'month')``, ``Entity('account')``)
are read by the compiler's own filter parser and become dunder names.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandParser

from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MetricQuery
from tally.errors import UserError

_CLOSE = {"(": ")", "[": "]", "{": "}"}
MSG_UNBALANCED = "--{flag}: {problem} in {value!r}"
HINT_UNBALANCED = (
    "separate items with commas and close every bracket and quote, e.g. "
    "--group-by \"metric_time__month,TimeDimension('metric_time', 'week')\""
)
MSG_EMPTY_ITEM = "--{flag}: an empty item in {value!r}"
MSG_DATE_PART = "--group-by {item!r}: grouping by a date part ({date_part}) is not supported"
HINT_DATE_PART = "group by a grain instead, e.g. TimeDimension('metric_time', 'week')"


def split_items(value: str, *, flag: str) -> tuple[str, ...]:
    """Splits a list flag on commas outside brackets and quotes.

    Example:
        >>> split_items("metric_time__month, TimeDimension('metric_time', 'week')", flag="group-by")
        ('metric_time__month', "TimeDimension('metric_time', 'week')")
        >>> split_items("a,'b,c'", flag="order")
        ('a', "'b,c'")

    Raises:
        UserError: an unclosed or stray bracket or quote, or an empty item (``a,,b``).
    """
    items: list[str] = []
    stack: list[str] = []
    quote: str | None = None
    start = 0
    for index, char in enumerate(value):
        if quote:
            # SQL's doubled quote ('it''s') closes and reopens: the item stays whole.
            if char == quote:
                quote = None
            continue
        if char in "'\"":
            quote = char
        elif char in _CLOSE:
            stack.append(_CLOSE[char])
        elif char in ")]}":
            if not stack or stack.pop() != char:
                problem = f"a stray {char!r} at character {index + 1}"
                raise _unbalanced(flag, value, problem)
        elif char == "," and not stack:
            items.append(value[start:index])
            start = index + 1
    if quote:
        raise _unbalanced(flag, value, f"an unclosed {quote}")
    if stack:
        raise _unbalanced(flag, value, f"a missing {stack[-1]!r}")
    items.append(value[start:])
    stripped = tuple(item.strip() for item in items)
    if len(stripped) > 1 and not all(stripped):
        raise UserError(
            MSG_EMPTY_ITEM.format(flag=flag, value=value),
            code="bad_argument",
            location=flag.replace("-", "_"),
            hint=HINT_UNBALANCED,
        )
    return tuple(item for item in stripped if item)


def _unbalanced(flag: str, value: str, problem: str) -> UserError:
    return UserError(
        MSG_UNBALANCED.format(flag=flag, problem=problem, value=value),
        code="bad_argument",
        location=flag.replace("-", "_"),
        hint=HINT_UNBALANCED,
    )


def list_option(values: list[str] | tuple[str, ...], *, flag: str) -> tuple[str, ...]:
    """Every item of a repeatable list flag, in order."""
    return tuple(item for value in values for item in split_items(value, flag=flag))


def group_by_name(item: str, *, location: str) -> str:
    """A group-by item as the compiler's dunder name: ``TimeDimension('metric_time',
    'month')`` → ``metric_time__month``; a dunder name is returned as it is.

    Example:
        >>> group_by_name("Dimension('account__plan')", location="group_by[0]")
        'account__plan'
        >>> group_by_name("metric_time__week", location="group_by[0]")
        'metric_time__week'
    """
    if "(" not in item:
        return item
    from semantic.compiler.where import parse_where

    # The filter parser reads one {{ … }} item with DSI's own builders; IS NULL makes it a
    # condition it accepts, and the item's name and grain are all that is kept.
    ref = parse_where("{{ " + item + " }} IS NULL", location=location).refs[0]
    if ref.date_part:
        raise UserError(
            MSG_DATE_PART.format(item=item, date_part=ref.date_part),
            code="unsupported_group_by",
            location=location,
            hint=HINT_DATE_PART,
        )
    return "__".join([*ref.entity_path, ref.name] + ([ref.grain] if ref.grain else []))


def add_query_arguments(parser: CommandParser) -> None:
    parser.add_argument(
        "--metrics", action="append", default=[], help="metric names, comma-separated"
    )
    parser.add_argument(
        "--group-by",
        action="append",
        default=[],
        help="e.g. metric_time__month,account__plan or \"TimeDimension('metric_time', 'week')\"",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        help="filter, e.g. \"{{ Dimension('account__plan') }} = 'pro'\"",
    )
    parser.add_argument(
        "--having",
        action="append",
        default=[],
        help='filter on the outputs after aggregation, e.g. "revenue > 1000" (repeatable)',
    )
    parser.add_argument("--start-time", default=None, help="ISO date/timestamp, inclusive")
    parser.add_argument("--end-time", default=None, help="ISO date/timestamp, inclusive")
    parser.add_argument(
        "--order-by",
        "--order",
        dest="order_by",
        action="append",
        default=[],
        help="outputs; prefix - for descending (--order is mf's name)",
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--min-max-only",
        action="store_true",
        help="without metrics: the least and greatest value of the one --group-by item",
    )
    parser.add_argument(
        "--apply-group-by",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="without metrics: --no-apply-group-by lists every joined row, duplicates kept",
    )
    parser.add_argument(
        "--saved-query", default=None, help="run a saved query from the definitions"
    )
    parser.add_argument("--release", default=None, help="pin a release (default: latest)")
    parser.add_argument(
        "--timings", action="store_true", help="also print compile stage timings (on stderr)"
    )
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
    """The query of the shared flags; list flags tokenized, object-syntax group-by items
    turned into names (bad input: a UserError naming the flag, exit 1)."""
    group_by = list_option(opts["group_by"], flag="group-by")
    return MetricQuery(
        metrics=list_option(opts["metrics"], flag="metrics"),
        group_by=tuple(
            group_by_name(item, location=f"group_by[{index}]")
            for index, item in enumerate(group_by)
        ),
        where=tuple(opts["where"]),
        having=tuple(opts.get("having") or ()),
        start_time=opts["start_time"],
        end_time=opts["end_time"],
        order_by=list_option(opts["order_by"], flag="order"),
        limit=opts["limit"],
        dialect=dialect,
        min_max_only=bool(opts.get("min_max_only")),
        apply_group_by=opts.get("apply_group_by", True) is not False,
    )


__all__ = [
    "DIALECTS",
    "add_query_arguments",
    "as_user_from_options",
    "group_by_name",
    "list_option",
    "principal_from_options",
    "query_from_options",
    "split_items",
]
