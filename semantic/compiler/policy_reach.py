"""Which metrics a row policy can narrow: the models a metric reads and every model they join.

Asked before a metric's stored values are shown to a principal (semantic.permissions): a
metric whose reads no row policy can touch shows the same numbers to everyone, so its
precomputed values may be served; any doubt (unknown metric, unreadable filter, malformed
policy) answers True, fail closed.
"""

from __future__ import annotations

from collections.abc import Mapping

from semantic.compiler.manifest import Manifest, relation_key
from semantic.compiler.plan import metric_inputs, metric_measures
from semantic.compiler.where import parse_where
from tally.errors import QueryError


def metric_family(manifest: Manifest, metric: str) -> tuple[set[str], bool]:
    """The metric and every metric it reads (inputs, cumulative base, ``Metric()`` filters),
    and whether the walk was complete (False: an unknown metric or an unreadable filter)."""
    seen: set[str] = set()
    todo = [metric]
    complete = True
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        found = manifest.metrics.get(name)
        if found is None:
            complete = False
            continue
        todo += [str(ref["name"]) for ref in metric_inputs(found)]
        cumulative = found.params.get("cumulative_type_params") or {}
        if cumulative.get("metric"):
            base = cumulative["metric"]
            todo.append(str(base["name"] if isinstance(base, Mapping) else base))
        for index, text in enumerate(found.filters):
            try:
                parsed = parse_where(text, location=f"filter[{index}]")
            except QueryError:
                complete = False
                continue
            todo += [ref.name for ref in parsed.refs if ref.kind == "metric"]
    return seen, complete


def metric_has_row_policies(manifest: Manifest, metric: str) -> bool:
    """Whether a read of ``metric`` can be narrowed by a row policy: some semantic model it
    aggregates, or any model reachable from those by entity joins (slices and filters join
    them), carries an entity that has a row policy. Unknown metrics and unreadable filters
    count as policied when the manifest has any policy (fail closed).

    Stored values are computed by trusted runs over every row, so a restricted principal may
    read them only for metrics where this is False.

    Args:
        manifest: The release the metric is read in.
        metric: The metric's name.

    Returns:
        True when a row policy can apply to one of the metric's reads.

    Example:
        >>> from semantic.compiler.manifest import build_manifest
        >>> model = {"name": "people", "node_relation": {"alias": "people", "schema_name":
        ...     "main"}, "defaults": {"agg_time_dimension": "joined_at"}, "entities":
        ...     [{"name": "person", "type": "primary", "expr": "id"}], "dimensions": [{"name":
        ...     "joined_at", "type": "time", "type_params": {"time_granularity": "day"}}],
        ...     "measures": [{"name": "people", "agg": "count", "expr": "id"}]}
        >>> spec = {"name": "n", "type": "simple", "type_params": {"measure": "people"}}
        >>> metric_has_row_policies(build_manifest([("semantic_model", "people", model,
        ...     "1.0"), ("metric", "n", spec, "1.0")]), "n")
        False
    """
    security = manifest.security
    if security is not None:
        # An older release: the current release's policies apply to its reads too. The
        # metric may not exist (or read other models) there: then any policy counts.
        if metric in security.metrics:
            if metric_has_row_policies(security, metric):
                return True
        elif any(m.row_policies for m in security.semantic_models.values()):
            return True
    policies = [p for m in manifest.semantic_models.values() for p in m.row_policies]
    if not policies:
        return False
    if any(not isinstance(p, Mapping) or not isinstance(p.get("entity"), str) for p in policies):
        return True  # a malformed policy could be on any entity: fail closed
    policied = {str(p["entity"]) for p in policies}

    family, complete = metric_family(manifest, metric)
    if not complete:
        return True
    try:
        models = {m.semantic_model for name in family for m in metric_measures(manifest, name)}
    except (KeyError, QueryError):
        return True  # a metric the compiler cannot expand either: fail closed
    # Every model a join can reach: a policy on a joined model changes sliced and filtered
    # values even when the aggregated rows themselves are not narrowed.
    todo = list(models)
    while todo:
        model = manifest.semantic_models.get(todo.pop())
        if model is None:
            return True
        for entity in model.entities:
            for other in manifest.models_with_unique_entity(entity):
                if other.name not in models:
                    models.add(other.name)
                    todo.append(other.name)
    if any(
        entity in policied for name in models for entity in manifest.semantic_models[name].entities
    ):
        return True
    # A model over a table (case-folded) that a policied model also reads is secured by that
    # model's policies at compile time (secure_tables), so its values are narrowed too.
    covered = {
        relation_key(m.relation)
        for m in manifest.semantic_models.values()
        if policied & set(m.entities)
    }
    return any(relation_key(manifest.semantic_models[name].relation) in covered for name in models)
