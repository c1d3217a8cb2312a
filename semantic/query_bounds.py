"""Size bounds of a metric query's body, checked before anything is parsed: the REST API's
serializer and the MCP tools refuse the same oversized input with the same message.
Django-free (the MCP server loads it without the REST framework)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tally.errors import UserError

MAX_ITEMS = 100
MAX_FILTER_CHARS = 10_000
# All filters of one query together: each is parsed, and parse time grows with the text.
MAX_FILTER_TOTAL_CHARS = 20_000
MAX_NAME_CHARS = 255
# Lists of names and their longest item; strings and their longest value.
_LISTS = {"metrics": MAX_NAME_CHARS, "group_by": MAX_NAME_CHARS, "order_by": MAX_NAME_CHARS}
_TEXTS = {"start_time": 40, "end_time": 40, "release": 40, "saved_query": MAX_NAME_CHARS}
MSG_TOO_MANY = "{field}: {count} items; at most {limit} are accepted"
MSG_TOO_LONG = "{field}: an item has {length:,} characters; at most {limit:,} are accepted"
MSG_FILTERS_TOO_LONG = "{field}: the filters have {length:,} characters; at most {limit:,} in all"
HINT_TOO_LARGE = (
    "split the question into smaller queries, or save it as a saved query; filters: use "
    "an IN list of fewer values or a coarser condition"
)


class QueryTooLarge(UserError):
    """A query body over a size bound, refused before anything is parsed (400)."""

    default_code = "query_too_large"


def query_input_bounds(data: Any) -> None:
    """Refuses an oversized query body (list lengths, item lengths, the filters' total
    text) with a hint, before validation or parsing.

    Example:
        >>> query_input_bounds({"metrics": ["revenue"], "where": ["1 = 1"]})
        >>> query_input_bounds({"metrics": ["m"] * 101})
        Traceback (most recent call last):
        ...
        semantic.query_bounds.QueryTooLarge: metrics: 101 items; at most 100 are accepted
    """
    if not isinstance(data, Mapping):
        return
    limits = {**_LISTS, "where": MAX_FILTER_CHARS, "having": MAX_FILTER_CHARS}
    for field, chars in {**limits, **_TEXTS}.items():
        value = data.get(field)
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > MAX_ITEMS:
            message = MSG_TOO_MANY.format(field=field, count=len(value), limit=MAX_ITEMS)
            raise QueryTooLarge(message, hint=HINT_TOO_LARGE, location=field)
        longest = max((len(item) for item in items if isinstance(item, str)), default=0)
        if longest > chars:
            message = MSG_TOO_LONG.format(field=field, length=longest, limit=chars)
            raise QueryTooLarge(message, hint=HINT_TOO_LARGE, location=field)
    for field in ("where", "having"):
        filters = data.get(field)
        if not isinstance(filters, list):
            continue
        total = sum(len(item) for item in filters if isinstance(item, str))
        if total > MAX_FILTER_TOTAL_CHARS:
            message = MSG_FILTERS_TOO_LONG.format(
                field=field, length=total, limit=MAX_FILTER_TOTAL_CHARS
            )
            raise QueryTooLarge(message, hint=HINT_TOO_LARGE, location=field)
