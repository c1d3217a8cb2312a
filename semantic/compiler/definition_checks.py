"""The definition rules that need the compiler: metric filters, row policies and masks.

They run after ``registry.definitions.rules.check_project`` (which never imports the
compiler) in ``load_project`` here, the loader ``tally validate``, ``tally sync`` and
proposals use, so that every caller reports the same issues with the same file:line.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.definitions import rules
from registry.definitions.issues import Severity, did_you_mean
from registry.definitions.objects import (
    CONTRACT,
    METRIC,
    PROJECT,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    Project,
    object_line,
)
from registry.definitions.project import read_project
from registry.definitions.project_key import project_key
from semantic.compiler.api import check_filter_metric, queryable_items
from semantic.compiler.definition_guard import definition_problems
from semantic.compiler.entity_graph import is_join_target
from semantic.compiler.manifest import MASK_MODES, MASK_PROPERTY, build_manifest
from semantic.compiler.policy_rules import check_row_policies
from semantic.compiler.where import parse_where
from tally.errors import QueryError
from tally.lru import LRU

# The last projects read, by the exact contents of their folder (registry.definitions.
# project_key): a proposal's checks and a repeated sync read the same tree again.
_LOADED: LRU[str, Project] = LRU(8)


def load_project(root: Path, *, validate: bool = True, cache: bool = True) -> Project:
    """Reads every definition under ``root`` and runs every rule, the compiler's included.

    Args:
        root: a folder (or one file) of dbt Semantic Layer YAML, ODCS contracts and
            governance (teams/domains) YAML.
        validate: also run the cross-object rules (references, contracts, DSI's semantic
            validations, then filters, row policies and masks). Parsing-level errors are
            always reported.
        cache: reuse (and keep) the result for these exact contents; False for a folder
            made for this one read (a temporary folder's path is new, so it never matches).

    Returns:
        The project with its objects and every issue found; nothing raised for bad input.

    Example:
        >>> load_project(Path("/nonexistent")).issues.errors[0].code
        'no_such_path'
    """
    key = project_key(root, validate) if cache else None
    loaded = _LOADED.get(key) if key is not None else None
    if loaded is None:
        loaded = read_project(root)
        if validate and not loaded.issues.has_errors:
            rules.check_project(loaded)
            check_definitions(loaded)
        if key is not None:
            _LOADED.put(key, copy.deepcopy(loaded))
        return loaded
    # A copy: callers may change what they were given; the cached project stays as read.
    return copy.deepcopy(loaded)


def check_definitions(project: Project) -> None:
    """Runs the rules that need the compiler on a project ``rules.check_project`` has checked;
    issues go to ``project.issues`` (filters and row policies only when it found no error)."""
    if not project.issues.has_errors:
        check_filters(project)
        check_row_policy_definitions(project)
        check_shared_entities(project)
    check_masks(project)
    check_saved_query_filters(project)
    # Issue 18: unconditional, so every refused expression gets its file and line (the
    # compiler refuses them too, whichever check reads them first).
    check_definition_expressions(project)


def custom_grains(project: Project) -> tuple[str, ...]:
    """The custom granularities of the project's time spine (dbt ``custom_granularities``)."""
    rows = [(k, n, o.spec, "") for (k, n), o in project.objects.items() if k == PROJECT]
    return build_manifest(rows).time_spine.custom_grain_names


def check_saved_query_filters(project: Project) -> None:
    """A saved query's ``where`` goes through the filter guard, as a metric's filters do:
    found at validate and propose time with file and line, not first when someone runs it
    (the compiler refuses it then too)."""
    for obj in project.of_kind(SAVED_QUERY):
        where = (obj.spec.get("query_params") or {}).get("where") or []
        for index, text in enumerate([where] if isinstance(where, str) else where):
            path = ["query_params", "where", index]
            try:
                parse_where(
                    text,
                    location=".".join(map(str, path)),
                    custom_granularity_names=custom_grains(project),
                )
            except QueryError as exc:
                project.issues.add(
                    "bad_filter",
                    f"where of saved query {obj.name!r}: {exc.message}",
                    file=obj.file,
                    line=object_line(obj, path),
                    hint=exc.hint,
                    object=obj.name,
                )


def check_definition_expressions(project: Project) -> None:
    """Definition expressions the guard refuses (subqueries, file and system functions,
    other tables' columns…; see semantic.compiler.definition_guard). The compiler refuses
    them too (fail closed); here they get the file and line, before any check runs them."""
    for (kind, _name), obj in project.objects.items():
        for path, error in definition_problems(kind, obj.spec):
            project.issues.add(
                error.code,
                f"{kind.replace('_', ' ')} {obj.name!r}, {'.'.join(map(str, path))}: "
                f"{error.message}",
                file=obj.file,
                line=object_line(obj, path),
                hint=error.hint,
                object=obj.name,
            )


def _metric_filters(spec: dict[str, Any]) -> Iterator[tuple[list[Any], str, str | None]]:
    """(path, filter text, input metric whose items it may use or None for the metric itself)."""
    for index, text in enumerate(_texts(spec.get("filter"))):
        yield ["filter", index], text, None
    params = spec.get("type_params") or {}
    measure = params.get("measure")
    if isinstance(measure, dict):
        for text in _texts(measure.get("filter")):
            yield ["type_params", "measure", "filter"], text, None
    for side in ("numerator", "denominator"):
        ref = params.get(side)
        if isinstance(ref, dict):
            for text in _texts(ref.get("filter")):
                yield ["type_params", side, "filter"], text, str(ref.get("name"))
    for index, ref in enumerate(params.get("metrics") or []):
        if isinstance(ref, dict):
            for text in _texts(ref.get("filter")):
                yield ["type_params", "metrics", index, "filter"], text, str(ref.get("name"))
    conversion = params.get("conversion_type_params") or {}
    for side in ("base_measure", "conversion_measure"):
        ref = conversion.get(side)
        if isinstance(ref, dict):
            for text in _texts(ref.get("filter")):
                yield ["type_params", "conversion_type_params", side, "filter"], text, None


def _texts(value: Any) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def check_filters(project: Project) -> None:
    """Every item a metric's filters name must be reachable from that metric (DSI does not
    check filter names; a typo would otherwise surface only when someone queries)."""
    manifest = build_manifest([(k, n, o.spec, "") for (k, n), o in project.objects.items()])
    reachable: dict[str, set[str]] = {}

    def items_of(metric: str) -> set[str] | None:
        if metric not in reachable:
            try:
                reachable[metric] = set(queryable_items(manifest, metric))
            except QueryError:
                reachable[metric] = set()
        return reachable[metric] or None

    for obj in project.of_kind(METRIC):
        for path, text, scope in _metric_filters(obj.spec):
            line = object_line(obj, path)
            try:
                parsed = parse_where(
                    text,
                    location=".".join(map(str, path)),
                    custom_granularity_names=manifest.time_spine.custom_grain_names,
                )
            except QueryError as exc:
                project.issues.add(
                    "bad_filter",
                    exc.message,
                    file=obj.file,
                    line=line,
                    hint=exc.hint,
                    object=obj.name,
                )
                continue
            items = items_of(scope or obj.name)
            if items is None:
                continue
            for ref in parsed.refs:
                if ref.kind == "metric":
                    # Metric('m', group_by=['entity']): m must exist, group by the entity,
                    # and the filtered metric's own models must carry that entity.
                    try:
                        check_filter_metric(
                            manifest, ref, scope or obj.name, ".".join(map(str, path))
                        )
                    except QueryError as exc:
                        project.issues.add(
                            exc.code,
                            f"filter of metric {obj.name!r}: {exc.message}",
                            file=obj.file,
                            line=line,
                            hint=exc.hint,
                            object=obj.name,
                        )
                    continue
                name = "__".join([*ref.entity_path, ref.name])
                if name not in items:
                    project.issues.add(
                        "unknown_dimension",
                        f"filter of metric {obj.name!r} reads {name!r}, which "
                        f"{scope or obj.name!r} cannot reach",
                        file=obj.file,
                        line=line,
                        hint=did_you_mean(name, items),
                        object=obj.name,
                    )


def check_row_policy_definitions(project: Project) -> None:
    """Row policies (``config.meta.tally.row_policies``) the compiler could not apply: shape,
    entity, filter syntax, items not reachable from the entity's home model. The compiler
    refuses them too (fail closed); here they get the file and line."""
    manifest = build_manifest([(k, n, o.spec, "") for (k, n), o in project.objects.items()])
    for model, index, error in check_row_policies(manifest):
        obj = project.objects[(SEMANTIC_MODEL, model)]
        project.issues.add(
            error.code,
            error.message,
            file=obj.file,
            line=object_line(obj, ["config", "meta", "tally", "row_policies", index]),
            hint=error.hint,
            object=obj.name,
        )


MSG_AMBIGUOUS_ITEM = (
    "{item!r} is supplied by both {first!r} and {second!r} (entity {entity!r} is one row per "
    "entity in each): a query for it through a join is refused as ambiguous"
)


def check_shared_entities(project: Project) -> None:
    """Several models may share an entity (MetricFlow resolves an item through the model
    that holds it); a dimension name two of them hold is ambiguous, which a query would only
    find out later: a warning with the model's file and line."""
    manifest = build_manifest([(k, n, o.spec, "") for (k, n), o in project.objects.items()])
    models = list(manifest.semantic_models.values())
    for index, model in enumerate(models):
        for entity in model.entities:
            for other in models[:index]:
                if entity not in other.entities:
                    continue
                # Both a join target for the entity: one row per entity (at a time) in each.
                if not (is_join_target(model, entity) and is_join_target(other, entity)):
                    continue
                for name in sorted(set(model.dimensions) & set(other.dimensions)):
                    obj = project.objects[(SEMANTIC_MODEL, model.name)]
                    project.issues.add(
                        "ambiguous_item",
                        MSG_AMBIGUOUS_ITEM.format(
                            item=f"{entity}__{name}",
                            first=other.name,
                            second=model.name,
                            entity=entity,
                        ),
                        file=obj.file,
                        line=obj.line,
                        hint=f"rename the dimension in one of them (e.g. {name}_{model.name})",
                        object=model.name,
                        severity=Severity.WARNING,
                    )


def check_masks(project: Project) -> None:
    """A contract column's ``tallyMask`` custom property must name a mask mode."""
    for obj in project.of_kind(CONTRACT):
        for s_index, schema_object in enumerate(obj.spec.get("schema") or []):
            for p_index, prop in enumerate(schema_object.get("properties") or []):
                for c_index, custom in enumerate(prop.get("customProperties") or []):
                    if not isinstance(custom, dict) or custom.get("property") != MASK_PROPERTY:
                        continue
                    value = str(custom.get("value") or "").lower()
                    if value in MASK_MODES:
                        continue
                    path = ["schema", s_index, "properties", p_index, "customProperties", c_index]
                    project.issues.add(
                        "bad_mask",
                        f"{MASK_PROPERTY} of {prop.get('name')!r} in contract {obj.name!r} is "
                        f"{custom.get('value')!r}",
                        file=obj.file,
                        line=object_line(obj, path),
                        hint=did_you_mean(value, MASK_MODES) or "use hash or null",
                        object=obj.name,
                    )
