"""A metric's meaning in plain words, from its definition (for people, not for the compiler)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from semantic.compiler.manifest import Manifest

AGG_WORDS = {
    "sum": "the total of",
    "count": "the number of rows with",
    "count_distinct": "the number of distinct",
    "average": "the average of",
    "min": "the smallest",
    "max": "the largest",
    "median": "the median of",
    "percentile": "a percentile of",
    "sum_boolean": "the number of rows where",
}
_JINJA = re.compile(r"\{\{\s*(?:Dimension|TimeDimension|Entity|Metric)\(\s*'([^']+)'[^}]*\}\}")


def _filter_words(filters: Any) -> str:
    if not filters:
        return ""
    items = [filters] if isinstance(filters, str) else list(filters)
    text = " and ".join(_JINJA.sub(r"\1", str(f)).strip() for f in items)
    return f", counting only rows where {text}"


def _measure_words(manifest: Manifest, name: str) -> str:
    measure = manifest.measures.get(name)
    if measure is None:
        return f"the measure {name}"
    agg = AGG_WORDS.get(measure.agg, measure.agg)
    model = manifest.semantic_models.get(measure.semantic_model)
    table = ".".join(p for p in model.relation if p) if model else measure.semantic_model
    return f"{agg} {measure.expr} in {table} (by {measure.agg_time_dimension})"


def _input_name(ref: Any) -> str:
    if isinstance(ref, Mapping):
        return str(ref.get("alias") or ref.get("name"))
    return str(ref)


def explain_metric(manifest: Manifest, name: str) -> str:
    """One or two sentences saying what a metric counts, its inputs and its filters.

    Args:
        manifest: the release the metric belongs to.
        name: the metric's name.

    Returns:
        Plain text; an unknown metric gets a sentence saying so.

    Example:
        >>> from semantic.compiler.manifest import Manifest, Metric, TimeSpine
        >>> m = Manifest("r1", {}, {"n": Metric("n", "derived", {"type_params": {"expr": "a + b",
        ...     "metrics": [{"name": "a"}, {"name": "b"}]}})}, {}, {}, TimeSpine((None, "m", "t"), "d"))
        >>> explain_metric(m, "n")
        'n is computed as a + b from the metrics a and b.'
    """
    metric = manifest.metrics.get(name)
    if metric is None:
        return f"{name} is not in release {manifest.release}."
    params = metric.params
    filters = _filter_words(metric.spec.get("filter"))
    if metric.type == "simple":
        measure = params.get("measure")
        measure_name = measure.get("name") if isinstance(measure, Mapping) else measure
        return f"{name} is {_measure_words(manifest, str(measure_name))}{filters}."
    if metric.type == "ratio":
        num, den = _input_name(params.get("numerator")), _input_name(params.get("denominator"))
        return f"{name} is {num} divided by {den}{filters}."
    if metric.type == "derived":
        # Input names, not aliases: an offset input (revenue AS revenue_prior_month) is
        # still the metric revenue, and the alias shows in the expression itself.
        refs = params.get("metrics") or []
        names = " and ".join(
            dict.fromkeys(str(m.get("name")) if isinstance(m, Mapping) else str(m) for m in refs)
        )
        return f"{name} is computed as {params.get('expr')} from the metrics {names}{filters}."
    if metric.type == "cumulative":
        measure = params.get("measure")
        measure_name = measure.get("name") if isinstance(measure, Mapping) else measure
        window = params.get("window") or (params.get("cumulative_type_params") or {}).get("window")
        to_grain = params.get("grain_to_date") or (params.get("cumulative_type_params") or {}).get(
            "grain_to_date"
        )
        span = (
            f"over a trailing {window}"
            if window
            else f"from the start of each {to_grain}"
            if to_grain
            else "over all time"
        )
        return (
            f"{name} is the running {_measure_words(manifest, str(measure_name))} {span}{filters}."
        )
    if metric.type == "conversion":
        conv = params.get("conversion_type_params") or {}
        base = _input_name(conv.get("base_measure"))
        target = _input_name(conv.get("conversion_measure"))
        window = conv.get("window")
        within = f" within {window}" if window else ""
        return (
            f"{name} is the share of {base} (per {conv.get('entity')}) that are followed by "
            f"{target}{within}{filters}."
        )
    return f"{name} is a {metric.type} metric{filters}."
