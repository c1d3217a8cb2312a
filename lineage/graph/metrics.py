"""What metric definitions contribute to the graph: inputs, filters, joins and the release pins."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lineage.graph.elements import Elements, Inputs, definition_meta
from lineage.graph.ids import DERIVES_FROM, FILTERS_BY, INDIRECT, JOINS_ON, PINNED_IN, metric_id
from registry.definitions.project import METRIC
from registry.definitions.rules import metric_inputs
from semantic.compiler.manifest import Manifest


def _resolve_dimension(manifest: Manifest, home: str | None, ref: Any) -> str | None:
    """The node a filter's ``{{ Dimension/Entity/TimeDimension(…) }}`` reads, or None.

    ``entity__dim`` names the dimension of the model where the entity is unique (MetricFlow
    joins to it), else of the metric's own model; ``metric_time`` is the home measure's
    agg time dimension.
    """
    models = manifest.semantic_models
    if ref.kind == "entity":
        for model in [models.get(home or ""), *models.values()]:
            if model is not None and ref.name in model.entities:
                return f"entity:{model.name}.{ref.name}"
        return None
    if ref.name == "metric_time":
        return None
    entity = ref.entity_path[-1] if ref.entity_path else None
    candidates = [m for m in models.values() if ref.name in m.dimensions]
    for model in candidates:
        if entity and (entity in model.unique_entities() or model.primary_entity == entity):
            return f"dimension:{model.name}.{ref.name}"
    for model in candidates:
        if entity is None or entity in model.entities:
            return f"dimension:{model.name}.{ref.name}"
    return None


@dataclass(frozen=True)
class FilterRef:
    """One ``{{ Dimension/TimeDimension/Entity(…) }}`` item of a filter, as lineage needs it."""

    kind: str  # dimension | time_dimension | entity
    name: str
    entity_path: tuple[str, ...]


_ITEM_RE = re.compile(
    r"\{\{\s*(Dimension|TimeDimension|Entity)\(\s*['\"]([^'\"]+)['\"]"
    r"(?:[^)]*?entity_path\s*=\s*\[([^\]]*)\])?"
)


@functools.lru_cache(maxsize=16_384)
def filter_refs(text: str) -> tuple[FilterRef, ...]:
    """The query items a MetricFlow filter reads.

    Filters reach the graph already validated (``semantic.compiler.where.parse_where`` at
    sync time, which costs milliseconds per filter); lineage only needs the item names, so it
    reads the ``{{ … }}`` calls by pattern and splits names as dbt-semantic-interfaces does.

    Example:
        >>> filter_refs("{{ Dimension('user__account__plan') }} = 'pro'")
        (FilterRef(kind='dimension', name='plan', entity_path=('user', 'account')),)
    """
    from dbt_semantic_interfaces.naming.dundered import StructuredDunderedName

    refs = []
    for call, name, path in _ITEM_RE.findall(text):
        parsed = StructuredDunderedName.parse_name(name)
        entities = tuple(e.element_name for e in parsed.entity_links)
        extra = tuple(p.strip().strip("'\"") for p in path.split(",") if p.strip()) if path else ()
        kind = (
            "entity"
            if call == "Entity"
            else "time_dimension"
            if call == "TimeDimension"
            else "dimension"
        )
        refs.append(FilterRef(kind, parsed.element_name, extra + entities))
    return tuple(refs)


def _filter_edges(
    el: Elements,
    inputs: Inputs,
    filters: Iterable[str],
    target: str,
    *,
    home: str | None,
    src: str,
    home_time: str | None = None,
) -> None:
    for text in filters:
        shown = " ".join(text.split())
        for ref in filter_refs(text):
            node = _resolve_dimension(inputs.manifest, home, ref)
            if node is None and ref.name == "metric_time" and home_time:
                node = home_time  # metric_time is the measure's agg time dimension
            if node is None:
                continue
            el.edge(
                node, target, FILTERS_BY,
                src=src, subtype=INDIRECT, transformation="filter", expr=shown,
            )  # fmt: skip
            if ref.entity_path[:-1] or (home and node.split(":")[1].split(".")[0] != home):
                # Reaching another model's dimension joins on the entity: its key columns
                # decide which rows meet.
                for entity in ref.entity_path or ():
                    for model_name in (home, node.split(":")[1].split(".")[0]):
                        model = inputs.manifest.semantic_models.get(model_name or "")
                        if model is not None and entity in model.entities:
                            el.edge(
                                f"entity:{model.name}.{entity}", target, JOINS_ON,
                                src=src, subtype=INDIRECT, transformation="join",
                                expr=f"join on {entity}",
                            )  # fmt: skip


def _input_name(ref: Any) -> str:
    return str(ref.get("name")) if isinstance(ref, Mapping) else str(ref)


def _input_filters(ref: Any) -> tuple[str, ...]:
    if not isinstance(ref, Mapping) or not ref.get("filter"):
        return ()
    value = ref["filter"]
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)


def metric_node(inputs: Inputs, name: str) -> str:
    return metric_id(name, inputs.versions.get(f"{METRIC}:{name}", ""))


def _metric_expr(metric: Any, spec: Mapping[str, Any]) -> str:
    params = spec.get("type_params") or {}
    if metric.type == "ratio":
        return f"{_input_name(params.get('numerator'))} / {_input_name(params.get('denominator'))}"
    if metric.type == "derived":
        return str(params.get("expr") or "")
    if metric.type == "cumulative":
        cumulative = params.get("cumulative_type_params") or {}
        window = cumulative.get("window") or (
            f"{cumulative['grain_to_date']} to date"
            if cumulative.get("grain_to_date")
            else "all time"
        )
        inner = _input_name(params.get("measure") or cumulative.get("metric"))
        return f"cumulative {inner} over {window}"
    if metric.type == "conversion":
        conv = params.get("conversion_type_params") or {}
        return (
            f"{conv.get('calculation', 'conversion_rate')}({_input_name(conv.get('base_measure'))}"
            f" → {_input_name(conv.get('conversion_measure'))} by {conv.get('entity')}"
            f" within {conv.get('window', 'any time')})"
        )
    return _input_name(params.get("measure"))


def metric_elements(inputs: Inputs, name: str) -> Elements:
    src = f"{METRIC}:{name}"
    metric = inputs.manifest.metrics[name]
    spec = inputs.specs[src]
    meta = definition_meta(spec)
    el = Elements()
    expr = _metric_expr(metric, spec)
    filters = metric.filters
    shown = expr + "".join(f" where {' '.join(f.split())}" for f in filters)
    node = el.node(
        metric_node(inputs, name),
        "metric",
        name,
        src,
        name=name,
        version=inputs.versions.get(src, ""),
        type=metric.type,
        expr=shown,
        owner=meta.get("owner"),
        domain=meta.get("domain"),
        tier=meta.get("tier"),
    )
    home: str | None = None
    home_time: str | None = None
    for kind, input_name, path in metric_inputs(dict(spec)):
        ref: Any = spec
        for step in path:
            ref = ref[step]
        if kind == "measure":
            measure = inputs.manifest.measures.get(input_name)
            if measure is None:
                continue
            if home is None:
                home = measure.semantic_model
                if measure.agg_time_dimension:
                    home_time = f"dimension:{home}.{measure.agg_time_dimension}"
            source = f"measure:{measure.semantic_model}.{input_name}"
            transformation = "aggregation" if metric.type == "cumulative" else "identity"
        else:
            if input_name not in inputs.manifest.metrics:
                continue
            source = metric_node(inputs, input_name)
            transformation = "identity" if metric.type == "cumulative" else "transformation"
        el.edge(source, node, DERIVES_FROM, src=src, transformation=transformation, expr=expr)
        if isinstance(ref, Mapping) and isinstance(ref.get("measure"), Mapping):
            ref = ref["measure"]  # cumulative: the filter sits on the nested measure
        _filter_edges(
            el, inputs, _input_filters(ref), node, home=home, src=src, home_time=home_time
        )
    _filter_edges(el, inputs, filters, node, home=home, src=src, home_time=home_time)
    conversion = (spec.get("type_params") or {}).get("conversion_type_params") or {}
    if conversion.get("entity"):
        for measure_ref in (conversion.get("base_measure"), conversion.get("conversion_measure")):
            measure = inputs.manifest.measures.get(_input_name(measure_ref))
            if measure is not None:
                el.edge(
                    f"entity:{measure.semantic_model}.{conversion['entity']}", node, JOINS_ON,
                    src=src, subtype=INDIRECT, transformation="join",
                    expr=f"conversion by {conversion['entity']}",
                )  # fmt: skip
    return el


def release_elements(inputs: Inputs, release: str) -> Elements:
    el = Elements()
    node = el.node(f"release:{release}", "release", release, "release")
    for name in inputs.manifest.metrics:
        el.edge(
            metric_node(inputs, name), node, PINNED_IN, src="release", transformation="identity"
        )
    return el
