"""Plan: metrics expand to the leaf measure aggregations they read.

Ratio and derived metrics recurse into their inputs (offsets and input filters travel along);
simple and cumulative metrics read one measure; a conversion metric reads a base and a
conversion measure. Each ``Leaf`` carries a stable alias (measure + digest of its filters),
so leaves that read the same thing share one aggregation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from semantic.compiler.manifest import Manifest, Measure, Metric
from semantic.compiler.resolve import query_error

MSG_UNSUPPORTED = "{what} is not supported yet"


MSG_BAD_CONSTANT_PROPERTY = (
    "constant_properties[{index}] of conversion metric {metric!r} needs a base_property and a "
    "conversion_property"
)


@dataclass(frozen=True)
class Leaf:
    """A measure aggregation feeding a metric: measure + filters, named by a stable alias."""

    alias: str
    measure: Measure
    filters: tuple[str, ...]
    join_to_timespine: bool = False
    cumulative: Cumulative | None = None
    fill_nulls_with: Any = None
    offset: tuple[str, str] | None = None  # ("window", "1 month") | ("to_grain", "month")
    conversion: Conversion | None = None


@dataclass(frozen=True)
class Conversion:
    """A conversion leaf: conversions of ``entity`` within ``window`` after a base event."""

    entity: str
    window: tuple[int, str] | None
    base_measure: Measure
    base_filters: tuple[str, ...]
    # (base_property, conversion_property) pairs the two events must share besides the entity.
    constant_properties: tuple[tuple[str, str], ...] = ()
    metric: str = field(default="", compare=False)  # for error messages only

    @property
    def tag(self) -> str:
        window = f"{self.window[0]}{self.window[1]}" if self.window else "ever"
        tag = f"conv_{self.entity}_{window}_{self.base_measure.name}"
        for base_property, conversion_property in self.constant_properties:
            tag += f"_{base_property}" + (
                f"_{conversion_property}" if conversion_property != base_property else ""
            )
        return tag


@dataclass(frozen=True)
class Cumulative:
    """How a cumulative metric accumulates: a trailing window, to-date, or all time."""

    window: tuple[int, str] | None  # (28, "day")
    grain_to_date: str | None
    period_agg: str  # "first" | "last" | "average"

    @property
    def tag(self) -> str:
        if self.window:
            return f"w{self.window[0]}{self.window[1]}_{self.period_agg}"
        if self.grain_to_date:
            return f"td{self.grain_to_date}_{self.period_agg}"
        return f"all_{self.period_agg}"


def measure_leaf(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    offset: tuple[str, str] | None = None,
) -> Leaf:
    """The one aggregation a simple or cumulative metric reads (its alias is its identity)."""
    # Pure in (metric, manifest, filters, offset) and asked for by every stage: kept per
    # manifest, for the manifest's own metric objects only (the name alone is not the key).
    key = ("measure_leaf", metric.name, filters, offset)
    cacheable = manifest.metrics.get(metric.name) is metric
    if cacheable:
        found = manifest.leaf_cache.get(key)
        if found is not None:
            return found
    leaf = _measure_leaf(metric, manifest, filters, offset)
    if cacheable:
        manifest.leaf_cache[key] = leaf
    return leaf


def _measure_leaf(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    offset: tuple[str, str] | None,
) -> Leaf:
    params = metric.params
    measure_ref = params.get("measure") or {}
    ref = measure_ref if isinstance(measure_ref, Mapping) else {"name": str(measure_ref)}
    filters = filters + as_tuple(ref.get("filter"))
    measure = manifest.measures[str(ref["name"])]
    spine = bool(ref.get("join_to_timespine"))
    cumulative = None
    if metric.type == "cumulative":
        cparams = params.get("cumulative_type_params") or {}
        window = cparams.get("window") or params.get("window")
        grain_to_date = cparams.get("grain_to_date") or params.get("grain_to_date")
        parsed_window = None
        if window:
            count, unit = str(window).split()
            parsed_window = (int(count), unit.rstrip("s").lower())
        cumulative = Cumulative(
            parsed_window,
            str(grain_to_date).lower() if grain_to_date else None,
            str(cparams.get("period_agg") or "first").lower(),
        )
    alias = leaf_alias(measure.name, filters) + ("__spine" if spine else "")
    if cumulative is not None:
        alias += "__" + cumulative.tag
    if offset is not None:
        alias += "__offset_" + "_".join(offset[1].split())
    return Leaf(alias, measure, filters, spine, cumulative, ref.get("fill_nulls_with"), offset)


# Days of the units nested windows can add up exactly (months and years vary in length).
WINDOW_DAYS = {"day": 1, "week": 7}


def input_offset(
    ref: Mapping[str, Any], outer: tuple[str, str] | None, metric: str
) -> tuple[str, str] | None:
    """The offset an input is read at: its own, the enclosing input's, or for an offset
    inside an offset the two windows added up (``2 days`` of ``5 days`` ago is ``7 days``
    ago: exact for day and week windows; others are refused).

    Example:
        >>> input_offset({"offset_window": "5 days"}, ("window", "1 week"), "m")
        ('window', '12 days')
    """
    inner = offset_of(ref)
    if inner is None or outer is None:
        return inner or outer
    total = 0
    for kind, text in (inner, outer):
        count, unit = [*text.split(), ""][:2]
        unit = unit[:-1] if unit.endswith("s") else unit
        if kind != "window" or unit not in WINDOW_DAYS or not count.isdigit():
            raise query_error(
                MSG_UNSUPPORTED.format(
                    what="an offset inside another offset unless both are offset_windows in "
                    "days or weeks"
                ),
                code="unsupported_metric",
                location=f"metric {metric}",
                hint="offsets in months, quarters, years or to a grain do not add up exactly",
            )
        total += int(count) * WINDOW_DAYS[unit]
    return ("window", f"{total} days")


def offset_of(ref: Mapping[str, Any]) -> tuple[str, str] | None:
    if ref.get("offset_window"):
        return ("window", str(ref["offset_window"]).lower())
    if ref.get("offset_to_grain"):
        return ("to_grain", str(ref["offset_to_grain"]).lower())
    return None


def conversion_params(metric: Metric) -> Mapping[str, Any]:
    return metric.params.get("conversion_type_params") or {}


def conversion_leaves(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    offset: tuple[str, str] | None,
) -> tuple[Leaf, Leaf]:
    """The base aggregation and the conversions aggregation of a conversion metric."""
    params = conversion_params(metric)
    base_ref = input_ref(params["base_measure"])
    conv_ref = input_ref(params["conversion_measure"])
    base_filters = filters + as_tuple(base_ref.get("filter"))
    base_measure = manifest.measures[str(base_ref["name"])]
    conv_measure = manifest.measures[str(conv_ref["name"])]
    window = params.get("window")
    parsed = None
    if window:
        count, unit = str(window).split()
        parsed = (int(count), unit.rstrip("s").lower())
    spec = Conversion(
        str(params["entity"]),
        parsed,
        base_measure,
        base_filters,
        constant_property_pairs(metric),
        metric.name,
    )
    # The conversion measure's own filter applies to conversion events (MetricFlow drops it;
    # see the conformance suite). Query filters apply to the base events, whose dimensions
    # the conversions are reported under.
    conv_filters = as_tuple(conv_ref.get("filter"))
    conv_alias = leaf_alias(conv_measure.name, conv_filters) + "__" + spec.tag
    suffix = ("__offset_" + "_".join(offset[1].split())) if offset else ""
    converted = Leaf(
        conv_alias + suffix, conv_measure, conv_filters, offset=offset, conversion=spec
    )
    return base_leaf(converted), converted


def base_leaf(converted: Leaf) -> Leaf:
    """The base-measure aggregation of a conversion leaf: its base events, aggregated as a
    simple metric would (the rate's denominator)."""
    spec = converted.conversion
    assert spec is not None
    offset = converted.offset
    suffix = ("__offset_" + "_".join(offset[1].split())) if offset else ""
    alias = leaf_alias(spec.base_measure.name, spec.base_filters) + suffix
    return Leaf(alias, spec.base_measure, spec.base_filters, offset=offset)


def constant_property_pairs(metric: Metric) -> tuple[tuple[str, str], ...]:
    """``constant_properties`` of a conversion metric as (base, conversion) element names."""
    pairs = []
    for index, raw in enumerate(conversion_params(metric).get("constant_properties") or ()):
        base = raw.get("base_property") if isinstance(raw, Mapping) else None
        conversion = raw.get("conversion_property") if isinstance(raw, Mapping) else None
        if not (isinstance(base, str) and isinstance(conversion, str)):
            raise query_error(
                MSG_BAD_CONSTANT_PROPERTY.format(metric=metric.name, index=index),
                code="bad_metric",
                location=f"metric {metric.name}",
                hint="write {base_property: <name>, conversion_property: <name>}",
            )
        pairs.append((base.strip().lower(), conversion.strip().lower()))
    return tuple(pairs)


def leaves_of(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    seen: tuple[str, ...],
    offset: tuple[str, str] | None = None,
) -> list[Leaf]:
    """Expands a metric to the measure aggregations it needs (a new list each call)."""
    key = ("leaves_of", metric.name, filters, seen, offset)
    cacheable = manifest.metrics.get(metric.name) is metric
    if cacheable:
        found = manifest.leaf_cache.get(key)
        if found is not None:
            return list(found)
    leaves = _leaves_of(metric, manifest, filters, seen, offset)
    if cacheable:
        manifest.leaf_cache[key] = tuple(leaves)
    return leaves


def _leaves_of(
    metric: Metric,
    manifest: Manifest,
    filters: tuple[str, ...],
    seen: tuple[str, ...],
    offset: tuple[str, str] | None,
) -> list[Leaf]:
    filters = filters + metric.filters
    if metric.type in ("simple", "cumulative"):
        return [measure_leaf(metric, manifest, filters, offset)]
    if metric.type == "conversion":
        return list(conversion_leaves(metric, manifest, filters, offset))
    if metric.type in ("ratio", "derived"):
        out: list[Leaf] = []
        for ref in metric_inputs(metric):
            child_offset = input_offset(ref, offset, metric.name)
            child = manifest.metrics[ref["name"]]
            child_filters = filters + as_tuple(ref.get("filter"))
            out.extend(
                leaves_of(child, manifest, child_filters, (*seen, metric.name), child_offset)
            )
        return out
    raise query_error(
        MSG_UNSUPPORTED.format(what=f"{metric.type} metric {metric.name!r}"),
        code="unsupported_metric",
        location=f"metric {metric.name}",
        hint="conversion metrics arrive with the next compiler release",
    )


def as_tuple(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def metric_inputs(metric: Metric) -> list[Mapping[str, Any]]:
    params = metric.params
    if metric.type == "ratio":
        return [input_ref(params["numerator"]), input_ref(params["denominator"])]
    return [input_ref(m) for m in params.get("metrics") or []]


def input_ref(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {"name": str(value)}


def leaf_alias(measure: str, filters: tuple[str, ...]) -> str:
    if not filters:
        return measure
    # Stable, readable, distinct per filter set: goldens must not change run to run.
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(filters)).encode()).hexdigest()[:8]
    return f"{measure}__f{digest}"


def metric_measures(manifest: Manifest, metric: str) -> tuple[Measure, ...]:
    """Every measure a metric aggregates (through ratio, derived and conversion inputs).

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> model = {"name": "orders", "model": "ref('orders')", "defaults":
        ...     {"agg_time_dimension": "ordered_at"}, "entities": [{"name": "order",
        ...     "type": "primary", "expr": "id"}], "dimensions": [{"name": "ordered_at",
        ...     "type": "time", "type_params": {"time_granularity": "day"}}], "measures":
        ...     [{"name": "amount", "agg": "sum"}, {"name": "orders", "agg": "count", "expr": "id"}]}
        >>> specs = [("semantic_model", "orders", model, "1.0"), ("metric", "aov", {"name": "aov",
        ...     "type": "ratio", "type_params": {"numerator": "sales", "denominator": "n"}}, "1.0")]
        >>> specs += [("metric", n, {"name": n, "type": "simple", "type_params": {"measure": m}},
        ...     "1.0") for n, m in (("sales", "amount"), ("n", "orders"))]
        >>> [m.name for m in metric_measures(build_manifest(specs), "aov")]
        ['amount', 'orders']
    """
    # By name: a semi-additive measure's spec is a dict, so Measure is not hashable.
    found = {leaf.measure.name: leaf.measure for _, _, leaf in metric_parts(
        manifest.metrics[metric], manifest)}  # fmt: skip
    return tuple(found.values())


def metric_parts(metric: Metric, manifest: Manifest) -> list[tuple[str, str, Leaf]]:
    """(role, input metric, leaf) for every aggregation: the compiler's own expansion
    (``leaves_of``), applied per input so each part says which input it belongs to."""
    if metric.type in ("ratio", "derived"):
        out: list[tuple[str, str, Leaf]] = []
        for index, ref in enumerate(metric_inputs(metric)):
            if metric.type == "ratio":
                role = ("numerator", "denominator")[index]
            else:
                role = f"input {ref.get('alias') or ref['name']}"
            child = manifest.metrics[str(ref["name"])]
            # As leaves_of does for a ratio/derived metric: its own filters, then the input's.
            filters = metric.filters + as_tuple(ref.get("filter"))
            for leaf in leaves_of(child, manifest, filters, (metric.name,), offset_of(ref)):
                out.append((role, child.name, leaf))
        return out
    leaves = leaves_of(metric, manifest, (), ())
    if metric.type == "conversion":
        return [("base events", metric.name, leaves[0]), ("conversions", metric.name, leaves[1])]
    return [("value", metric.name, leaf) for leaf in leaves]
