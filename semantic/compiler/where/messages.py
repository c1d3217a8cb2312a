"""Filter error texts: every ``MSG_*`` message, ``HINT_*`` hint and ``DETAIL_*`` detail template.

Module constants so that the tests import and snapshot the rendered texts; ``USAGE`` says how
each of the four builder calls is written. Every refusal has code ``ERROR_CODE``.
"""

from __future__ import annotations

EXAMPLE_DIMENSION = "{{ Dimension('account__plan') }}"
EXAMPLE_FILTER = "{{ Dimension('account__plan') }} = 'enterprise'"


# Message and hint templates (imported by the tests, which snapshot the rendered texts).
MSG_NOT_TEXT = "a filter must be text, not {type}"
MSG_EMPTY = "empty filter"
HINT_EMPTY = "write a condition such as {example}, or leave the filter out"
MSG_TOO_LONG = "filter is {length:,} characters long; filters must be shorter than {limit:,}"
HINT_TOO_LONG = "split it into several filters (they are combined with AND)"
MSG_BAD_CHARACTER = "character {codepoint} ({name}) is not allowed in filters"
HINT_BAD_CHARACTER = "remove it; invisible and control characters usually come from copy and paste"
MSG_CONFUSABLE_QUOTE = "{char} ({name}) is not a SQL quote"
HINT_CONFUSABLE_QUOTE = "write strings in ASCII single quotes, e.g. {example}"
MSG_JINJA_STATEMENT = "Jinja statements ({% … %}) are not allowed in filters"
MSG_JINJA_COMMENT = "Jinja comments ({# … #}) are not allowed in filters"
HINT_JINJA_ITEMS = (
    "use only {{ Dimension('…') }}, {{ TimeDimension('…') }}, {{ Entity('…') }} "
    "and {{ Metric('…', group_by=['…']) }} between double braces"
)
MSG_JINJA_UNCLOSED = "'{{' is not closed by '}}'"
HINT_JINJA_UNCLOSED = "close the item with '}}', e.g. {{ Dimension('account__plan') }}"
MSG_JINJA_SYNTAX = "invalid Jinja in {text}: {detail}"
MSG_JINJA_MISMATCH = "the {{ … }} items of the filter could not be read consistently"
MSG_JINJA_NOT_CALL = "{text} is not a query item"
MSG_UNKNOWN_JINJA_FUNCTION = "unknown function {name}() in {text}"
MSG_JINJA_ATTRIBUTE = "attribute {name} is not allowed in {text}"
MSG_JINJA_METHOD = "method .{name}() is not allowed in {text}"
HINT_JINJA_METHOD = (
    "only Dimension(…).grain('month') and Dimension(…).date_part('year') can follow an item"
)
MSG_JINJA_DESCENDING = "descending is not allowed in filters: {text}"
HINT_JINJA_DESCENDING = "sort with order_by (e.g. --order-by -metric_time) instead"
MSG_JINJA_ARGUMENT_VALUE = "arguments of {function}() must be quoted names or lists of quoted names"
MSG_JINJA_ARGUMENTS = "wrong arguments to {function}(): {detail}"
MSG_JINJA_LIST_EXPECTED = "{param} of {function}() must be a list of names, e.g. {param}=['user']"
MSG_JINJA_NAME_EXPECTED = "{param} of {function}() must be a quoted name, not a list"
HINT_USAGE = "usage: {usage}"
MSG_BAD_NAME = "{name!r} is not a valid name in {text}"
HINT_BAD_NAME = (
    "names are lowercase letters, digits and single underscores; '__' joins the entity "
    "path to the name, as in 'account__plan'"
)
MSG_UNKNOWN_GRAIN = "unknown time grain {grain!r} in {text}"
MSG_UNKNOWN_DATE_PART = "unknown date part {date_part!r} in {text}"
HINT_CHOICES = "choose one of: {choices}"
MSG_BAD_ITEM = "{text} is not a valid query item: {detail}"
HINT_BAD_ITEM = "e.g. {example}"
MSG_SQL_SYNTAX = "could not parse the filter as SQL: {detail}"
DETAIL_UNEXPECTED = "unexpected {text}"
DETAIL_INCOMPLETE = "incomplete expression at {text}"
DETAIL_MISSING_PAREN = "missing ')'"
DETAIL_UNTOKENIZABLE = "a quote or a comment is not closed"
HINT_SQL_SYNTAX = "a filter is one SQL condition, e.g. {example}"
MSG_STACKED_STATEMENTS = (
    "a filter is a single condition; ';' and further statements are not allowed"
)
MSG_STATEMENT = "SQL statements ({keyword}) are not allowed in filters"
MSG_SQL_COMMENT = "SQL comments are not allowed in filters"
HINT_SQL_COMMENT = "remove the comment; describe the filter in the metric's description instead"
MSG_SUBQUERY = "subqueries are not allowed in filters"
HINT_SUBQUERY = "filter on a dimension, or on another metric with {{ Metric('…', group_by=['…']) }}"
MSG_SET_OPERATION = "set operations ({keyword}) are not allowed in filters"
MSG_BARE_COLUMN = "column {name} is not allowed in filters"
HINT_BARE_COLUMN = "refer to data through the semantic layer, e.g. {suggestion}"
MSG_REF_IN_STRING = "{text} is inside a quoted string"
HINT_REF_IN_STRING = "remove the quotes around it; compare it with a string instead, e.g. {example}"
MSG_REF_ADJACENT = "{text} runs into the text next to it"
HINT_REF_ADJACENT = "put a space or an operator between the item and its neighbours"
MSG_NOT_ALLOWED = "function {name} is not allowed in filters"
HINT_DID_YOU_MEAN = "did you mean {suggestion}?"
HINT_ALLOWED_FUNCTIONS = "allowed functions: {names}"
MSG_SYNTAX_NOT_ALLOWED = "filters cannot contain {what}"
HINT_SYNTAX_NOT_ALLOWED = (
    "filters allow comparisons, AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE, arithmetic, CASE, "
    "CAST and a few functions"
)
MSG_CAST_TYPE = "CAST to {type} is not allowed in filters"
HINT_CAST_TYPE = "cast to one of: {types}"
MSG_IN_LITERALS = "IN takes a list of literal values"
HINT_IN_LITERALS = "e.g. {{ Dimension('account__plan') }} IN ('pro', 'enterprise')"
MSG_INTERVAL = "INTERVAL takes a literal, e.g. INTERVAL '7' DAY"
HINT_INTERVAL = "e.g. {{ TimeDimension('metric_time', 'day') }} >= CURRENT_DATE - INTERVAL '7' DAY"
MSG_UNIT = "unknown date part {unit} in {function}"
MSG_NOT_CONDITION = "the filter is {what}, not a condition"
HINT_NOT_CONDITION = "compare it with something, e.g. {example}"
MSG_TOO_DEEP = "filter is nested too deeply (more than {limit} levels)"
HINT_TOO_DEEP = "flatten it: chain conditions with AND/OR, or list values with IN (…)"


ERROR_CODE = "bad_where"


# The four builder calls of MetricFlow's object-builder syntax and how to write them.
USAGE: dict[str, str] = {
    "Dimension": "Dimension('entity__dimension', entity_path=['entity']), "
    "optionally followed by .grain('month') or .date_part('year')",
    "TimeDimension": "TimeDimension('entity__time_dimension', 'month', entity_path=['entity'], "
    "date_part_name='year')",
    "Entity": "Entity('entity', entity_path=['entity'])",
    "Metric": "Metric('metric', group_by=['entity'])",
}
