"""Cross-object rules: references (with did-you-mean), cycles, governance, contract coverage,
then dbt-semantic-interfaces' own semantic validations over the whole manifest.

Rules that need the compiler (metric filters, row policies, masks) live on the compiler's
floor, in ``semantic/compiler/definition_checks.py``: this floor never imports the compiler."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import sqlglot
from sqlglot import exp

from registry.definitions.contracts import ContractColumn, contract_tables
from registry.definitions.issues import Severity, did_you_mean
from registry.definitions.objects import (
    CONTRACT,
    DEFAULT_SCHEMA,
    METRIC,
    PROJECT,
    PROJECT_NAME,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    TIERS,
    DefinitionObject,
    Project,
    default_project_configuration,
    governance_of,
    meta_of,
    object_line,
)
from registry.definitions.relations import resolve_relation

MAX_CYCLES_REPORTED = 5


def check_project(project: Project) -> None:
    """Runs every cross-object rule of this floor; issues go to ``project.issues``.

    The rules that need the compiler run after these, in
    ``semantic.compiler.definition_checks.check_definitions``."""
    _check_governance(project)
    _check_governance_domains(project)
    _check_references(project)
    _check_cycles(project)
    _check_contract_coverage(project)
    if not project.issues.has_errors:
        _check_with_dsi(project)
    if not project.issues.has_errors:
        _check_policy_coverage(project)


MSG_POLICY_TABLE = (
    "semantic model {model!r} reads {table}, the table of {other!r}, whose rows row policies "
    "on entity {entity!r} filter; {model!r} does not carry {entity!r}, so its reads would "
    "not be filtered"
)
MSG_POLICY_KEY = (
    "semantic model {model!r} reads column {column!r}, the key of entity {entity!r} in "
    "{other!r}, which row policies filter, but does not carry {entity!r}: tenant filtering "
    "would silently stop applying to its table"
)
HINT_POLICY_ENTITY = (
    "declare entity {entity!r} on {model!r} (type: foreign, expr: {column}) as {other!r} "
    "does; row policies reach a model only through the policy's entity"
)
# Entity types that make a model an entity's home (one row per entity).
_HOME_TYPES = frozenset({"primary", "unique", "natural"})


def _policied_entities(project: Project) -> set[str]:
    found: set[str] = set()
    for obj in project.of_kind(SEMANTIC_MODEL):
        tally = meta_of(obj).get("tally")
        policies = tally.get("row_policies") if isinstance(tally, dict) else None
        for policy in policies if isinstance(policies, list) else ():
            if isinstance(policy, dict) and isinstance(policy.get("entity"), str):
                found.add(policy["entity"])
    return found


def _entities_of(obj: DefinitionObject) -> dict[str, dict[str, Any]]:
    return {str(e.get("name")): e for e in obj.spec.get("entities") or [] if isinstance(e, dict)}


def _key_column(element: dict[str, Any]) -> str | None:
    """The column an entity is keyed on when its expr is one bare column."""
    expr = element.get("expr")
    if expr is None or expr is True:
        return str(element.get("name")).lower()
    try:
        tree = sqlglot.parse_one(str(expr))
    except sqlglot.errors.ParseError:
        return None
    return tree.name.lower() if isinstance(tree, exp.Column) and tree.name else None


def _check_policy_coverage(project: Project) -> None:
    """Fail closed: a row policy reaches a model only through its entity, so a model that
    could read a policy's rows without carrying the entity is refused. Two ways to get there:
    another model over the same table (compared case-folded: ``main.USERS`` is ``users``)
    carries the entity; or the model reads the column another model keys the entity on
    (``account_id``): renaming or dropping the ``account`` entity of ``events`` would
    otherwise silently stop tenant filtering for every event."""
    policied = _policied_entities(project)
    if not policied:
        return
    models = project.of_kind(SEMANTIC_MODEL)
    contracts = project.of_kind(CONTRACT)
    entities = {obj.name: _entities_of(obj) for obj in models}
    tables: dict[str, tuple[str, str, str]] = {}
    on_table: dict[tuple[str, str, str], list[DefinitionObject]] = {}
    for obj in models:
        relation = resolve_relation(obj, contracts, default_schema=DEFAULT_SCHEMA)
        key = (
            (relation.database or "").lower(),
            (relation.schema or "").lower(),
            relation.table.lower(),
        )
        tables[obj.name] = key
        on_table.setdefault(key, []).append(obj)
    # entity → [(key column, carrying model)] over foreign (many-per-entity) carriers: the
    # home's key (often ``id``) names too many unrelated columns to mean the entity.
    keys: dict[str, list[tuple[str, DefinitionObject]]] = {}
    for obj in models:
        for name, element in entities[obj.name].items():
            column = _key_column(element)
            if name in policied and column and element.get("type") not in _HOME_TYPES:
                keys.setdefault(name, []).append((column, obj))
    contract_columns: dict[str, set[str]] = {}
    for contract in contracts:
        for table, columns in contract_tables(contract.spec).items():
            contract_columns.setdefault(table.lower(), set()).update(
                c.name.lower() for c in columns
            )
    for obj in models:
        own = set(entities[obj.name])
        key = tables[obj.name]
        reported: set[str] = set()
        for other in on_table[key]:
            for entity in sorted((set(entities[other.name]) & policied) - own - reported):
                reported.add(entity)
                column = _key_column(entities[other.name][entity]) or entity
                project.issues.add(
                    "policy_entity_missing",
                    MSG_POLICY_TABLE.format(
                        model=obj.name, table=".".join(p for p in key if p), other=other.name,
                        entity=entity,
                    ),
                    file=obj.file,
                    line=object_line(obj, ["entities"]) if obj.spec.get("entities") else obj.line,
                    hint=HINT_POLICY_ENTITY.format(
                        entity=entity, model=obj.name, column=column, other=other.name
                    ),
                    object=obj.name,
                )  # fmt: skip
        # The columns the model reads or its table has (contract), case-folded.
        read = {column.lower() for column, _ in element_columns(obj)}
        read |= contract_columns.get(key[2], set())
        for entity in sorted(policied - own - reported):
            for column, other in keys.get(entity, ()):
                if other is obj or column not in read:
                    continue
                project.issues.add(
                    "policy_entity_missing",
                    MSG_POLICY_KEY.format(
                        model=obj.name, column=column, entity=entity, other=other.name
                    ),
                    file=obj.file,
                    line=object_line(obj, ["entities"]) if obj.spec.get("entities") else obj.line,
                    hint=HINT_POLICY_ENTITY.format(
                        entity=entity, model=obj.name, column=column, other=other.name
                    ),
                    object=obj.name,
                )
                break


# --------------------------------------------------------------------------- governance


# Where each governed kind writes its owner and domain (for file:line and hints).
_GOVERNANCE_PATHS: dict[str, tuple[list[Any], list[Any], str, str]] = {
    METRIC: (["config", "meta", "owner"], ["config", "meta", "domain"], "", ""),
    SEMANTIC_MODEL: (["config", "meta", "owner"], ["config", "meta", "domain"], "", ""),
    SAVED_QUERY: (
        ["config", "meta", "owner"],
        ["config", "meta", "domain"],
        "add config: {meta: {owner: team-slug}}",
        "add config: {meta: {domain: domain-slug}}",
    ),
    CONTRACT: (
        ["customProperties"],
        ["domain"],
        "add customProperties: [{property: owner, value: team-slug}] (the ODCS custom "
        "property Tally reads as the owning team)",
        "add the ODCS top-level domain: domain-slug",
    ),
}


def _check_governance(project: Project) -> None:
    """Owner, domain and tier of every governed definition name declared teams and domains.
    A metric without owner is a warning; so is a contract or saved query without owner or
    domain (it could then be proposed from any domain; the fixtures give every one both)."""
    issues = project.issues
    for kind, (owner_path, domain_path, owner_hint, domain_hint) in _GOVERNANCE_PATHS.items():
        for obj in project.of_kind(kind):
            meta = governance_of(kind, obj.spec)
            _check_governance_meta(project, obj, meta, owner_path, domain_path)
            if kind == METRIC and meta.get("owner") is None:
                issues.add(
                    "no_owner",
                    f"metric {obj.name!r} has no owner",
                    file=obj.file,
                    line=obj.line,
                    hint="add config: {meta: {owner: team-slug}}",
                    object=obj.name,
                    severity=Severity.WARNING,
                )
            if kind not in (SAVED_QUERY, CONTRACT):
                continue
            label = kind.replace("_", " ")
            for field_name, hint in (("owner", owner_hint), ("domain", domain_hint)):
                if meta.get(field_name) is None:
                    issues.add(
                        f"no_{field_name}",
                        f"{label} {obj.name!r} has no {field_name}: an editor of any domain "
                        "may propose changing it",
                        file=obj.file,
                        line=obj.line,
                        hint=hint,
                        object=obj.name,
                        severity=Severity.WARNING,
                    )


def _check_governance_meta(
    project: Project,
    obj: DefinitionObject,
    meta: Mapping[str, Any],
    owner_path: list[Any],
    domain_path: list[Any],
) -> None:
    issues = project.issues
    tier = meta.get("tier")
    if tier is not None and tier not in TIERS:
        issues.add(
            "bad_tier",
            f"tier {tier!r} of {obj.name!r} is not a tier",
            file=obj.file,
            line=object_line(obj, ["config", "meta", "tier"]),
            hint=did_you_mean(str(tier), TIERS) or "use " + ", ".join(TIERS),
            object=obj.name,
        )
    owner = meta.get("owner")
    if owner is not None and project.teams and owner not in project.teams:
        issues.add(
            "unknown_team",
            f"owner {owner!r} of {obj.name!r} is not a declared team",
            file=obj.file,
            line=object_line(obj, owner_path),
            hint=did_you_mean(str(owner), project.teams) or "declare it under teams:",
            object=obj.name,
        )
    domain = meta.get("domain")
    if domain is not None and project.domains and domain not in project.domains:
        issues.add(
            "unknown_domain",
            f"domain {domain!r} of {obj.name!r} is not a declared domain",
            file=obj.file,
            line=object_line(obj, domain_path),
            hint=did_you_mean(str(domain), project.domains) or "declare it under domains:",
            object=obj.name,
        )


def _check_governance_domains(project: Project) -> None:
    issues = project.issues
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
                    line=object_line(obj, path),
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
                    line=object_line(obj, ["query_params", "metrics", index]),
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
                line=object_line(obj, ["config", "meta", "deprecated", "replacement"]),
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
                line=object_line(obj, ["config", "meta", "contract"]),
                hint=did_you_mean(str(wanted), contracts) or "add the ODCS contract file",
                object=obj.name,
            )


def _check_cycles(project: Project) -> None:
    # networkx costs ~0.1 s to import; only validation (sync, lint) reaches this, never a
    # compile that merely reads this module's helpers.
    import networkx as nx

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


def element_columns(obj: DefinitionObject) -> Iterator[tuple[str, list[Any]]]:
    """(column, path in spec) of every column a semantic model's elements read."""
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
            covering[table.lower()] = (contract, columns)
    for obj in project.of_kind(SEMANTIC_MODEL):
        table = semantic_model_table(obj)
        # Case-folded: a model on USERS reads the table the users contract covers.
        if table.lower() not in covering:
            continue
        contract, columns = covering[table.lower()]
        names = {c.name for c in columns}
        reported: set[str] = set()
        for column, path in element_columns(obj):
            if column in names or column in reported:
                continue
            reported.add(column)
            project.issues.add(
                "contract_missing_column",
                f"semantic model {obj.name!r} reads {table}.{column}, which contract "
                f"{contract.name!r} does not cover",
                file=obj.file,
                line=object_line(obj, path),
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
