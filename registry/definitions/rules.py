"""Cross-object rules: references (with did-you-mean), cycles, governance, contract coverage,
then dbt-semantic-interfaces' own semantic validations over the whole manifest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import networkx as nx
import sqlglot
from sqlglot import exp

from registry.definitions.contracts import ContractColumn, contract_tables
from registry.definitions.issues import Severity, did_you_mean
from registry.definitions.project import (
    CONTRACT,
    METRIC,
    PROJECT,
    PROJECT_NAME,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    TIERS,
    DefinitionObject,
    Project,
    default_project_configuration,
    line_at,
    meta_of,
)

MAX_CYCLES_REPORTED = 5


def check_project(project: Project) -> None:
    """Runs every cross-object rule; issues go to ``project.issues``."""
    _check_governance(project)
    _check_references(project)
    _check_cycles(project)
    _check_contract_coverage(project)
    if not project.issues.has_errors:
        _check_with_dsi(project)
    if not project.issues.has_errors:
        _check_filters(project)
        _check_row_policies(project)
    _check_masks(project)
    # Security hook (issue 18): unconditional, so no later check ever runs a refused expression.
    check_definition_expressions(project)


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


def _check_filters(project: Project) -> None:
    """Every item a metric's filters name must be reachable from that metric (DSI does not
    check filter names; a typo would otherwise surface only when someone queries)."""
    from semantic.compiler.compile import check_filter_metric, queryable_items
    from semantic.compiler.manifest import build_manifest
    from semantic.compiler.where import parse_where
    from tally.errors import QueryError

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
            line = _loc(obj, path)
            try:
                parsed = parse_where(text, location=".".join(map(str, path)))
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


def _check_row_policies(project: Project) -> None:
    """Row policies (``config.meta.tally.row_policies``) the compiler could not apply: shape,
    entity, filter syntax, items not reachable from the entity's home model. The compiler
    refuses them too (fail closed); here they get the file and line."""
    from semantic.compiler.manifest import build_manifest
    from semantic.compiler.policies import check_row_policies

    manifest = build_manifest([(k, n, o.spec, "") for (k, n), o in project.objects.items()])
    for model, index, error in check_row_policies(manifest):
        obj = project.objects[(SEMANTIC_MODEL, model)]
        project.issues.add(
            error.code,
            error.message,
            file=obj.file,
            line=_loc(obj, ["config", "meta", "tally", "row_policies", index]),
            hint=error.hint,
            object=obj.name,
        )


def check_definition_expressions(project: Project) -> None:
    """Definition expressions the guard refuses (subqueries, file and system functions,
    other tables' columns…; see semantic.compiler.definition_guard). The compiler refuses
    them too (fail closed); here they get the file and line, before any check runs them."""
    from semantic.compiler.definition_guard import definition_problems

    for (kind, _name), obj in project.objects.items():
        for path, error in definition_problems(kind, obj.spec):
            project.issues.add(
                error.code,
                f"{kind.replace('_', ' ')} {obj.name!r}, {'.'.join(map(str, path))}: "
                f"{error.message}",
                file=obj.file,
                line=_loc(obj, path),
                hint=error.hint,
                object=obj.name,
            )


def _check_masks(project: Project) -> None:
    """A contract column's ``tallyMask`` custom property must name a mask mode."""
    from semantic.compiler.manifest import MASK_MODES, MASK_PROPERTY

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
                        line=_loc(obj, path),
                        hint=did_you_mean(value, MASK_MODES) or "use hash or null",
                        object=obj.name,
                    )


def _loc(obj: DefinitionObject, path: list[Any]) -> int:
    return line_at(obj.source, path) if obj.source is not None else obj.line


# --------------------------------------------------------------------------- governance


def _check_governance(project: Project) -> None:
    issues = project.issues
    for obj in [*project.of_kind(METRIC), *project.of_kind(SEMANTIC_MODEL)]:
        meta = meta_of(obj)
        path = ["config", "meta"]
        tier = meta.get("tier")
        if tier is not None and tier not in TIERS:
            issues.add(
                "bad_tier",
                f"tier {tier!r} of {obj.name!r} is not a tier",
                file=obj.file,
                line=_loc(obj, [*path, "tier"]),
                hint=did_you_mean(str(tier), TIERS) or "use " + ", ".join(TIERS),
                object=obj.name,
            )
        owner = meta.get("owner")
        if owner is not None and project.teams and owner not in project.teams:
            issues.add(
                "unknown_team",
                f"owner {owner!r} of {obj.name!r} is not a declared team",
                file=obj.file,
                line=_loc(obj, [*path, "owner"]),
                hint=did_you_mean(str(owner), project.teams) or "declare it under teams:",
                object=obj.name,
            )
        domain = meta.get("domain")
        if domain is not None and project.domains and domain not in project.domains:
            issues.add(
                "unknown_domain",
                f"domain {domain!r} of {obj.name!r} is not a declared domain",
                file=obj.file,
                line=_loc(obj, [*path, "domain"]),
                hint=did_you_mean(str(domain), project.domains) or "declare it under domains:",
                object=obj.name,
            )
        if obj.kind == METRIC and owner is None:
            issues.add(
                "no_owner",
                f"metric {obj.name!r} has no owner",
                file=obj.file,
                line=obj.line,
                hint="add config: {meta: {owner: team-slug}}",
                object=obj.name,
                severity=Severity.WARNING,
            )
    for domain in project.domains.values():
        if domain.owner and project.teams and domain.owner not in project.teams:
            issues.add(
                "unknown_team",
                f"domain {domain.slug!r} is owned by unknown team {domain.owner!r}",
                file=project.root,
                hint=did_you_mean(domain.owner, project.teams),
            )


# --------------------------------------------------------------------------- references


def metric_inputs(spec: dict[str, Any]) -> Iterator[tuple[str, str, list[Any]]]:
    """Yields (kind, name, path in spec) of every measure and metric a metric reads.

    Example:
        >>> list(metric_inputs({"type": "simple", "type_params": {"measure": {"name": "x"}}}))
        [('measure', 'x', ['type_params', 'measure'])]
    """
    params = spec.get("type_params") or {}
    measure = params.get("measure")
    if measure:
        yield "measure", _name(measure), ["type_params", "measure"]
    for side in ("numerator", "denominator"):
        if params.get(side):
            yield "metric", _name(params[side]), ["type_params", side]
    for index, item in enumerate(params.get("metrics") or []):
        yield "metric", _name(item), ["type_params", "metrics", index]
    cumulative = params.get("cumulative_type_params") or {}
    if cumulative.get("metric"):
        yield "metric", _name(cumulative["metric"]), ["type_params", "cumulative_type_params"]
    conversion = params.get("conversion_type_params") or {}
    for side in ("base_measure", "conversion_measure"):
        if conversion.get(side):
            yield (
                "measure",
                _name(conversion[side]),
                ["type_params", "conversion_type_params", side],
            )


def _name(ref: Any) -> str:
    return str(ref.get("name")) if isinstance(ref, dict) else str(ref)


def _check_references(project: Project) -> None:
    issues = project.issues
    measures = {
        m["name"] for sm in project.of_kind(SEMANTIC_MODEL) for m in sm.spec.get("measures") or []
    }
    metrics = {o.name for o in project.of_kind(METRIC)}
    known = {"measure": measures, "metric": metrics}
    for obj in project.of_kind(METRIC):
        for kind, name, path in metric_inputs(obj.spec):
            if name not in known[kind]:
                issues.add(
                    f"unknown_{kind}",
                    f"metric {obj.name!r} reads unknown {kind} {name!r}",
                    file=obj.file,
                    line=_loc(obj, path),
                    hint=did_you_mean(name, known[kind]) or f"define a {kind} named {name!r}",
                    object=obj.name,
                )
    for obj in project.of_kind(SAVED_QUERY):
        for index, name in enumerate((obj.spec.get("query_params") or {}).get("metrics") or []):
            if name not in metrics:
                issues.add(
                    "unknown_metric",
                    f"saved query {obj.name!r} reads unknown metric {name!r}",
                    file=obj.file,
                    line=_loc(obj, ["query_params", "metrics", index]),
                    hint=did_you_mean(name, metrics),
                    object=obj.name,
                )
    for obj in project.of_kind(METRIC):
        deprecated = meta_of(obj).get("deprecated")
        replacement = deprecated.get("replacement") if isinstance(deprecated, dict) else None
        if replacement is not None and replacement not in metrics:
            issues.add(
                "unknown_metric",
                f"metric {obj.name!r} is deprecated in favour of unknown metric {replacement!r}",
                file=obj.file,
                line=_loc(obj, ["config", "meta", "deprecated", "replacement"]),
                hint=did_you_mean(str(replacement), metrics),
                object=obj.name,
            )
    contracts = {o.name for o in project.of_kind(CONTRACT)}
    for obj in project.of_kind(SEMANTIC_MODEL):
        wanted = meta_of(obj).get("contract")
        if wanted is not None and wanted not in contracts:
            issues.add(
                "unknown_contract",
                f"semantic model {obj.name!r} names unknown contract {wanted!r}",
                file=obj.file,
                line=_loc(obj, ["config", "meta", "contract"]),
                hint=did_you_mean(str(wanted), contracts) or "add the ODCS contract file",
                object=obj.name,
            )


def _check_cycles(project: Project) -> None:
    graph: nx.DiGraph[str] = nx.DiGraph()
    for obj in project.of_kind(METRIC):
        for kind, name, _ in metric_inputs(obj.spec):
            if kind == "metric":
                graph.add_edge(obj.name, name)
    for count, cycle in enumerate(nx.simple_cycles(graph)):
        if count >= MAX_CYCLES_REPORTED:
            break
        # Rotate so that the report is deterministic: start at the smallest name.
        start = cycle.index(min(cycle))
        ordered = cycle[start:] + cycle[:start]
        obj = project.objects[(METRIC, ordered[0])]
        project.issues.add(
            "metric_cycle",
            "metrics form a cycle: " + " → ".join([*ordered, ordered[0]]),
            file=obj.file,
            line=obj.line,
            hint="a derived metric cannot depend on itself; break one of these references",
            object=obj.name,
        )


# --------------------------------------------------------------------------- contracts


def expr_columns(expr: str) -> set[str]:
    """Column names a SQL expression reads (sqlglot parse; empty when it reads none).

    Example:
        >>> sorted(expr_columns("CASE WHEN event_type = 'purchase' THEN revenue END"))
        ['event_type', 'revenue']
    """
    tree = sqlglot.parse_one(expr)
    return {c.name for c in tree.find_all(exp.Column) if c.name}


def semantic_model_table(obj: DefinitionObject) -> str:
    """The table name a semantic model reads: its ref() name or its node_relation alias."""
    model = obj.spec.get("model")
    if model:
        return str(model).split("'")[1]
    return str((obj.spec.get("node_relation") or {}).get("alias"))


def _element_columns(obj: DefinitionObject) -> Iterator[tuple[str, list[Any]]]:
    for group in ("entities", "dimensions", "measures"):
        for index, element in enumerate(obj.spec.get(group) or []):
            expr = element.get("expr")
            path = [group, index]
            if expr is None or expr is True:
                # No expr: the element reads the column of its own name (count measures
                # default to 1 in MetricFlow, but the name is still the column for others).
                yield element["name"], path
                continue
            try:
                for column in expr_columns(str(expr)):
                    yield column, [*path, "expr"]
            except sqlglot.errors.ParseError:
                continue


def _check_contract_coverage(project: Project) -> None:
    covering: dict[str, tuple[DefinitionObject, list[ContractColumn]]] = {}
    for contract in project.of_kind(CONTRACT):
        for table, columns in contract_tables(contract.spec).items():
            covering[table] = (contract, columns)
    for obj in project.of_kind(SEMANTIC_MODEL):
        table = semantic_model_table(obj)
        if table not in covering:
            continue
        contract, columns = covering[table]
        names = {c.name for c in columns}
        reported: set[str] = set()
        for column, path in _element_columns(obj):
            if column in names or column in reported:
                continue
            reported.add(column)
            project.issues.add(
                "contract_missing_column",
                f"semantic model {obj.name!r} reads {table}.{column}, which contract "
                f"{contract.name!r} does not cover",
                file=obj.file,
                line=_loc(obj, path),
                hint=did_you_mean(column, names) or f"add {column} to {contract.file}",
                object=obj.name,
            )


# --------------------------------------------------------------------------- DSI


def build_manifest(project: Project) -> Any:
    """A DSI semantic manifest of the project (node relations still placeholders)."""
    from dbt_semantic_interfaces.implementations.project_configuration import (
        PydanticProjectConfiguration,
    )
    from dbt_semantic_interfaces.implementations.semantic_manifest import (
        PydanticSemanticManifest,
    )

    config = project.get(PROJECT, PROJECT_NAME)
    return PydanticSemanticManifest(
        semantic_models=[o.parsed for o in project.of_kind(SEMANTIC_MODEL)],
        metrics=[o.parsed for o in project.of_kind(METRIC)],
        saved_queries=[o.parsed for o in project.of_kind(SAVED_QUERY)],
        project_configuration=(
            config.parsed
            if config is not None
            else PydanticProjectConfiguration.parse_obj(default_project_configuration())
        ),
    )


_BOTH_INPUTS = "should not have both"


def _is_transformation_artifact(message: str, project: Project, name: str | None) -> bool:
    """DSI's measure→metric transformation adds a metric input beside the measure an author
    wrote, then its own validator warns that both are present. Drop that warning unless the
    author really wrote both."""
    if _BOTH_INPUTS not in message or name is None:
        return False
    obj = project.get(METRIC, name)
    if obj is None:
        return False
    params = obj.spec.get("type_params") or {}
    written = {
        *(params.get("cumulative_type_params") or {}),
        *(params.get("conversion_type_params") or {}),
        *params,
    }
    return not ({"metric", "base_metric", "conversion_metric"} & written)


def _check_with_dsi(project: Project) -> None:
    from dbt_semantic_interfaces.transformations.semantic_manifest_transformer import (
        PydanticSemanticManifestTransformer,
    )
    from dbt_semantic_interfaces.validations.semantic_manifest_validator import (
        SemanticManifestValidator,
    )

    try:
        manifest = PydanticSemanticManifestTransformer.transform(build_manifest(project))
    except Exception as exc:  # DSI raises plain exceptions from its transformations
        project.issues.add("semantic", str(exc).splitlines()[0], file=project.root)
        return
    results = SemanticManifestValidator().validate_semantic_manifest(manifest)
    for issue in results.all_issues:
        file, line, obj_name = project.root, 0, None
        context = issue.context
        file_context = getattr(context, "file_context", None) if context is not None else None
        if file_context is not None and file_context.file_name:
            file, line = file_context.file_name, file_context.line_number or 0
        for attr, name_attr in (
            ("metric", "metric_name"),
            ("semantic_model", "semantic_model_name"),
            ("semantic_model_element", "semantic_model_name"),
            ("saved_query", "saved_query_name"),
        ):
            ref = getattr(context, attr, None)
            if ref is not None:
                obj_name = getattr(ref, name_attr, None)
        if _is_transformation_artifact(issue.message, project, obj_name):
            continue
        level = issue.level.name
        severity = Severity.ERROR if level in ("ERROR", "FUTURE_ERROR") else Severity.WARNING
        project.issues.add(
            "semantic",
            issue.message.strip().splitlines()[0],
            file=file,
            line=line,
            object=obj_name,
            severity=severity,
        )
    project.manifest = manifest
