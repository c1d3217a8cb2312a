"""Errors name what the user asked for: the metric in the query, not the input metric or
measure deep inside it where the compiler noticed the problem (issue 16).

A ratio ``paid_invoice_rate`` over ``invoices_issued`` used to fail with "'user__country'
cannot be reached from metric 'invoices_issued'", and a cumulative metric with "(measure
'invoice_amount')": names the user never typed. ``name_the_metric`` rewrites such a message
at the compiler's boundary to name the requested metric and appends the path it tried, from
the requested metric down to the measure and its semantic model.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError

_NAMED = re.compile(r"\b(metric|measure) '([^']+)'")
# type_params keys that name an input metric or measure (DSI's metric spec).
_INPUT_KEYS = {
    "measure",
    "numerator",
    "denominator",
    "metrics",
    "metric",
    "base_measure",
    "conversion_measure",
    "base_metric",
    "conversion_metric",
}


def _input_names(params: Any) -> Iterator[str]:
    """Every metric or measure name a metric's type_params refers to, in spec order."""
    if isinstance(params, Mapping):
        for key, value in params.items():
            if key in _INPUT_KEYS:
                yield from _names_in(value)
            elif isinstance(value, Mapping):
                yield from _input_names(value)


def _names_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping) and isinstance(value.get("name"), str):
        yield value["name"]
    elif isinstance(value, list):
        for item in value:
            yield from _names_in(item)


def path_to(manifest: Manifest, metric: str, kind: str, name: str) -> list[str] | None:
    """The chain from a requested metric to an input metric or measure, or None.

    Example:
        >>> from semantic.compiler.manifest import Manifest, Measure, Metric
        >>> m = Manifest("r", {}, {"rate": Metric("rate", "ratio", {"type_params": {
        ...     "numerator": "paid", "denominator": {"name": "paid"}}}),
        ...     "paid": Metric("paid", "simple", {"type_params": {"measure": "amount"}})},
        ...     {"amount": Measure("amount", "sum", "amount", "invoices", "ds")}, {}, None)
        >>> path_to(m, "rate", "measure", "amount")
        ['rate', 'paid', "measure amount of semantic model 'invoices'"]
        >>> path_to(m, "rate", "metric", "paid")
        ['rate', 'paid', "measure amount of semantic model 'invoices'"]
    """
    seen: set[str] = set()

    def walk(current: str) -> list[str] | None:
        if current in seen:
            return None
        seen.add(current)
        node = manifest.metrics.get(current)
        if node is None:
            return None
        for child in _input_names(node.params):
            # Messages say "metric" for a simple metric's measure at times: match the name.
            if child == name and child in manifest.metrics:
                return [current, *(_down_to_measure(manifest, child) or [child])]
            if child in manifest.metrics:
                below = walk(child)
                if below is not None:
                    return [current, *below]
            elif child == name and child in manifest.measures:
                return [current, _measure_words(manifest, child)]
        return None

    return walk(metric)


def _measure_words(manifest: Manifest, measure: str) -> str:
    return f"measure {measure} of semantic model {manifest.measures[measure].semantic_model!r}"


def _down_to_measure(manifest: Manifest, metric: str) -> list[str] | None:
    """A simple metric and its measure (the end of a path); None for other kinds."""
    node = manifest.metrics.get(metric)
    if node is None or node.type != "simple":
        return None
    measures = [n for n in _input_names(node.params) if n in manifest.measures]
    return [metric, _measure_words(manifest, measures[0])] if measures else None


def name_the_metric(error: QueryError, query: MetricQuery, manifest: Manifest) -> QueryError:
    """The same error, naming the requested metric and the path tried when its message named
    only an input metric or a measure; unchanged otherwise (returned for ``raise``)."""
    if any(f"'{metric}'" in error.message for metric in query.metrics):
        return error
    for kind, name in _NAMED.findall(error.message):
        for metric in query.metrics:
            chain = path_to(manifest, metric, kind, name)
            if chain is None:
                continue
            message = error.message.replace(f"{kind} '{name}'", f"metric '{metric}'", 1)
            error.message = f"{message} (path tried: {' → '.join(chain)})"
            error.args = (error.message,)
            return error
    return error
