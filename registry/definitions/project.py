"""A folder of definitions → checked objects: dbt Semantic Layer YAML, ODCS contracts, governance.

Both layouts of the dbt Semantic Layer spec are accepted: the dbt project layout
(``semantic_models:``/``metrics:``/``saved_queries:`` lists, ``model: ref('x')``, time spines
as ``models:`` entries) and the MetricFlow layout (one ``semantic_model:``/``metric:`` per
document, with ``node_relation``). Objects are checked with dbt-semantic-interfaces' own JSON
schemas and pydantic models, then the whole manifest with its semantic validation rules; data
contracts with the ODCS JSON schema and pydantic model. Every issue carries ``file:line``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from registry.definitions import contracts as contract_rules
from registry.definitions import rules
from registry.definitions.dbt_manifest import is_semantic_manifest, read_semantic_manifest
from registry.definitions.dbt_placement import dbt_placement
from registry.definitions.dsi_parse import (
    canonical_dsi_spec,
    is_disabled,
    parse_dsi_object,
    time_spine_to_project,
)
from registry.definitions.issues import IssueSet, did_you_mean
from registry.definitions.objects import (
    CONTRACT,
    DEFAULT_SCHEMA,
    DEFAULT_TIME_SPINE,
    KINDS,
    LEGACY_TIME_SPINE,
    METRIC,
    PROJECT,
    PROJECT_NAME,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    TIERS,
    DefinitionObject,
    DomainSpec,
    Project,
    TeamSpec,
    default_project_configuration,
    line_at,
    meta_of,
    plain,
)
from registry.definitions.relations import Relation, resolve_relation
from registry.definitions.yaml_source import (
    LineDict,
    LineList,
    SourceFile,
    dbt_project_at,
    read_tree,
)

# The names callers have always imported from here (a project, its objects and how to load
# one); they live in objects.py and dsi_parse.py so that those need not import the loader.
__all__ = [
    "CONTRACT",
    "DEFAULT_SCHEMA",
    "DEFAULT_TIME_SPINE",
    "KINDS",
    "LEGACY_TIME_SPINE",
    "METRIC",
    "PROJECT",
    "PROJECT_NAME",
    "SAVED_QUERY",
    "SEMANTIC_MODEL",
    "TIERS",
    "DefinitionObject",
    "DomainSpec",
    "Project",
    "Relation",
    "TeamSpec",
    "canonical_dsi_spec",
    "default_project_configuration",
    "line_at",
    "load_project",
    "meta_of",
    "plain",
    "read_project",
    "resolve_relation",
]

# Keys a dbt properties file may hold that Tally does not read (it reads semantic objects).
DBT_OTHER_KEYS = {
    "version", "sources", "seeds", "snapshots", "macros", "exposures", "groups",
    "unit_tests", "data_tests", "analyses", "semantic_layer", "models",
}  # fmt: skip
DBT_LIST_KEYS = {"semantic_models": SEMANTIC_MODEL, "metrics": METRIC, "saved_queries": SAVED_QUERY}
DSI_DOC_KEYS = {
    "semantic_model": SEMANTIC_MODEL,
    "metric": METRIC,
    "saved_query": SAVED_QUERY,
    "project_configuration": PROJECT,
}
GOVERNANCE_KEYS = {"teams", "domains"}


# --------------------------------------------------------------------------- loading


def _objects_in_document(
    doc: Any, source: SourceFile, issues: IssueSet
) -> Iterator[tuple[str, Any, int]]:
    """Yields (kind, raw object, line) for every object a YAML document declares."""
    if not isinstance(doc, dict):
        issues.add(
            "not_a_mapping",
            f"a definitions document must be a mapping, not a {type(doc).__name__}",
            file=source.path,
            line=getattr(doc, "line", 1),
            hint="start with semantic_models:, metrics:, or an ODCS contract (apiVersion/kind)",
        )
        return
    # Every mapping read_tree yields was built by the line-recording loader.
    doc = cast(LineDict, doc)
    if "apiVersion" in doc or doc.get("kind") == "DataContract":
        yield CONTRACT, doc, doc.line
        return
    if GOVERNANCE_KEYS & set(doc):
        yield "governance", doc, doc.line
        return
    dsi_keys = [k for k in doc if k in DSI_DOC_KEYS]
    if dsi_keys:
        extra = [k for k in doc if k not in DSI_DOC_KEYS and k != "mf_config_schema"]
        if len(dsi_keys) > 1 or extra:
            issues.add(
                "document_shape",
                f"a MetricFlow-style document holds exactly one object, found {sorted(doc)}",
                file=source.path,
                line=doc.line,
                hint="separate objects with a line of three dashes (---)",
            )
            return
        key = dsi_keys[0]
        yield DSI_DOC_KEYS[key], doc[key], doc.line_of(key)
        return
    for key in doc:
        if key in DBT_LIST_KEYS:
            items = doc[key]
            if items is None:
                continue
            if not isinstance(items, list):
                issues.add(
                    "schema",
                    f"{key} must be a list of objects",
                    file=source.path,
                    line=doc.line_of(key),
                    hint=f"write each item as '- name: …' under {key}:",
                )
                continue
            lines = cast(LineList, items)  # likewise every list
            for index, item in enumerate(lines):
                if not is_disabled(item):
                    yield DBT_LIST_KEYS[key], item, lines.line_of(index)
        elif key == "models":
            for index, item in enumerate(doc[key] or []):
                if isinstance(item, dict) and "time_spine" in item:
                    yield "time_spine", item, doc[key].line_of(index)
                elif isinstance(item, dict) and item.get("name") == LEGACY_TIME_SPINE:
                    yield "legacy_time_spine", item, doc[key].line_of(index)
        elif key not in DBT_OTHER_KEYS:
            known = [*DBT_LIST_KEYS, *DSI_DOC_KEYS, *GOVERNANCE_KEYS, "models"]
            issues.add(
                "unknown_key",
                f"unknown top-level key {key!r}",
                file=source.path,
                line=doc.line_of(key),
                hint=did_you_mean(key, known) or "expected " + ", ".join(known),
            )


def _load_governance(doc: LineDict, file: str, project: Project) -> None:
    issues = project.issues
    for index, team in enumerate(doc.get("teams") or []):
        line = doc["teams"].line_of(index)
        if not isinstance(team, dict) or not team.get("slug"):
            issues.add("governance", "a team needs a slug", file=file, line=line)
            continue
        members = []
        for member in team.get("members") or []:
            if isinstance(member, str):
                members.append((member, "member"))
            elif isinstance(member, dict) and member.get("username"):
                members.append((str(member["username"]), str(member.get("role", "member"))))
        slug = str(team["slug"])
        if slug in project.teams:
            issues.add("duplicate_name", f"team {slug!r} declared twice", file=file, line=line)
        project.teams[slug] = TeamSpec(
            slug, str(team.get("name", slug)), str(team.get("email", "")), tuple(members)
        )
    for index, domain in enumerate(doc.get("domains") or []):
        line = doc["domains"].line_of(index)
        if not isinstance(domain, dict) or not domain.get("slug"):
            issues.add("governance", "a domain needs a slug", file=file, line=line)
            continue
        slug = str(domain["slug"])
        minimum = domain.get("min_approvals", 1)
        if isinstance(minimum, bool) or not isinstance(minimum, int) or not 1 <= minimum <= 10:
            issues.add(
                "governance",
                f"domain {slug!r}: min_approvals must be a whole number from 1 to 10",
                file=file,
                line=line,
            )
            minimum = 1
        project.domains[slug] = DomainSpec(
            slug,
            str(domain.get("name", slug)),
            str(domain.get("description", "")),
            str(domain["owner"]) if domain.get("owner") else None,
            minimum,
        )


def _add(project: Project, obj: DefinitionObject) -> None:
    existing = project.objects.get(obj.key)
    if existing is not None:
        project.issues.add(
            "duplicate_name",
            f"{obj.kind.replace('_', ' ')} {obj.name!r} is defined twice "
            f"(also at {existing.file}:{existing.line})",
            file=obj.file,
            line=obj.line,
            hint="names are unique across all files; rename or remove one",
            object=obj.name,
        )
        return
    project.objects[obj.key] = obj


def _add_created_metrics(project: Project) -> None:
    """``create_metric: true`` on a measure: the simple metric of the same name, as dbt's
    ``CreateProxyMeasureRule`` makes it (description, label and config from the measure).

    A metric already named after the measure wins when it is simple (dbt only warns); any
    other kind is refused, as dbt refuses it.
    """
    # DSI's own CreateProxyMeasureRule (run again by the DSI validations) would log "metric
    # already exists" for every metric made here: they are its own metrics, said once.
    logging.getLogger("dbt_semantic_interfaces.transformations.proxy_measure").setLevel(
        logging.ERROR
    )
    models = [o for o in list(project.objects.values()) if o.kind == SEMANTIC_MODEL]
    for model in models:
        raw_measures = model.source.get("measures") if isinstance(model.source, dict) else None
        for index, measure in enumerate(getattr(model.parsed, "measures", None) or ()):
            if not measure.create_metric:
                continue
            line = model.line
            if isinstance(raw_measures, LineList):
                line = raw_measures.line_of(index)
            existing = project.get(METRIC, measure.name)
            if existing is not None:
                if existing.spec.get("type") != "simple":
                    project.issues.add(
                        "create_metric_conflict",
                        f"measure {measure.name!r} of {model.name!r} has create_metric: true, "
                        f"but metric {measure.name!r} ({existing.file}:{existing.line}) is "
                        f"{existing.spec.get('type')}, not the simple metric it would create",
                        file=model.file,
                        line=line,
                        hint="rename the metric or drop create_metric from the measure",
                        object=measure.name,
                    )
                continue
            metric = LineDict(
                {
                    "name": measure.name,
                    "type": "simple",
                    "type_params": {"measure": {"name": measure.name}},
                    **({"description": measure.description} if measure.description else {}),
                    **({"label": measure.label} if measure.label else {}),
                }
            )
            config = plain(getattr(measure, "config", None) and measure.config.dict())
            if isinstance(config, dict) and config.get("meta"):
                metric["config"] = {"meta": config["meta"]}
            metric.line, metric.key_lines = line, {}
            result = parse_dsi_object(METRIC, metric, model.file, line, project.issues)
            if result is not None:
                spec, parsed = result
                _add(
                    project,
                    DefinitionObject(METRIC, measure.name, spec, model.file, line, metric, parsed),
                )


def _default_place(name: str) -> tuple[str | None, str, str]:
    return (None, DEFAULT_SCHEMA, name)


def read_project(root: Path) -> Project:
    """Reads every definition under ``root``: parsing- and schema-level issues only.

    Args:
        root: a folder (or one file) of dbt Semantic Layer YAML, ODCS contracts and
            governance (teams/domains) YAML.

    Returns:
        The project with its objects and every issue found; nothing raised for bad input.

    Example:
        >>> read_project(Path("/nonexistent")).issues.errors[0].code
        'no_such_path'
    """
    project = Project(root=str(root))
    issues = project.issues
    spines: list[tuple[dict[str, Any], str, int]] = []
    legacy_spine: tuple[str, int] | None = None
    dbt = dbt_project_at(root) if root.is_dir() else None
    if root.is_dir():
        # In a dbt project only its model-paths hold models (not dbt_packages/, target/).
        for folder in dbt.model_paths if dbt is not None else (root,):
            found = sorted(folder.rglob(f"{LEGACY_TIME_SPINE}.sql")) if folder.is_dir() else []
            if found and legacy_spine is None:
                legacy_spine = (str(found[0]), 1)
    sources: Iterable[SourceFile] = (
        read_semantic_manifest(root, root, issues)
        if is_semantic_manifest(root)
        else read_tree(root, issues)
    )
    place = None
    if dbt is not None:
        # A dbt project root: ref('x') is the table dbt builds x into (its profile's target
        # schema, custom schema, alias), decided now and kept in the spec as node_relation.
        sources = list(sources)
        placement = dbt_placement(root, dbt, sources, issues)
        project.dbt_profiles = placement.search
        place = placement.relation
    for source in sources:
        for doc in source.documents:
            for kind, raw, line in _objects_in_document(doc, source, issues):
                if kind == "governance":
                    _load_governance(raw, source.path, project)
                elif kind == CONTRACT:
                    obj = contract_rules.parse_contract(raw, source.path, line, issues)
                    if obj is not None:
                        _add(project, obj)
                elif kind == "legacy_time_spine":
                    legacy_spine = (source.path, line)
                elif kind == "time_spine":
                    spine = time_spine_to_project(raw, source.path, issues, place)
                    if spine is not None:
                        spines.append((spine, source.path, line))
                else:
                    result = parse_dsi_object(kind, raw, source.path, line, issues, place)
                    if result is not None:
                        spec, parsed = result
                        name = parsed.name if kind != PROJECT else PROJECT_NAME
                        _add(
                            project,
                            DefinitionObject(kind, name, spec, source.path, line, raw, parsed),
                        )
    _add_created_metrics(project)
    if not spines and legacy_spine is not None and project.get(PROJECT, PROJECT_NAME) is None:
        legacy = {
            "time_spine_table_configurations": [
                {
                    "location": ".".join((place or _default_place)(LEGACY_TIME_SPINE)[1:]),
                    "column_name": "date_day",
                    "grain": "day",
                }
            ]
        }
        result = parse_dsi_object(
            PROJECT, LineDict(legacy), legacy_spine[0], legacy_spine[1], issues
        )
        if result is not None:
            project.objects[(PROJECT, PROJECT_NAME)] = DefinitionObject(
                PROJECT, PROJECT_NAME, result[0], legacy_spine[0], legacy_spine[1], None, result[1]
            )
    if spines and project.get(PROJECT, PROJECT_NAME) is None:
        spec = {"time_spines": [s for s, _, _ in spines]}
        result = parse_dsi_object(PROJECT, LineDict(spec), spines[0][1], spines[0][2], issues)
        if result is not None:
            project.objects[(PROJECT, PROJECT_NAME)] = DefinitionObject(
                PROJECT, PROJECT_NAME, result[0], spines[0][1], spines[0][2], None, result[1]
            )
    return project


def load_project(root: Path, *, validate: bool = True) -> Project:
    """Reads every definition under ``root`` and checks it with the rules of this floor.

    The rules that need the compiler (metric filters, row policies, masks) run on top of
    these in ``semantic.compiler.definition_checks.load_project``, which is what
    ``tally validate``, ``tally sync`` and proposals use.

    Args:
        root: a folder (or one file) of dbt Semantic Layer YAML, ODCS contracts and
            governance (teams/domains) YAML.
        validate: also run the cross-object rules (references, contracts, DSI's semantic
            validations). Parsing-level errors are always reported.

    Returns:
        The project with its objects and every issue found; nothing raised for bad input.

    Example:
        >>> load_project(Path("/nonexistent")).issues.errors[0].code
        'no_such_path'
    """
    project = read_project(root)
    if validate and not project.issues.has_errors:
        rules.check_project(project)
    return project
