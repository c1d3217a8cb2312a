"""A folder of definitions → checked objects: dbt Semantic Layer YAML, ODCS contracts, governance.

Both layouts of the dbt Semantic Layer spec are accepted: the dbt project layout
(``semantic_models:``/``metrics:``/``saved_queries:`` lists, ``model: ref('x')``, time spines
as ``models:`` entries) and the MetricFlow layout (one ``semantic_model:``/``metric:`` per
document, with ``node_relation``). Objects are checked with dbt-semantic-interfaces' own JSON
schemas and pydantic models, then the whole manifest with its semantic validation rules; data
contracts with the ODCS JSON schema and pydantic model. Every issue carries ``file:line``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

import jsonschema
from jsonschema.exceptions import ValidationError as SchemaError

from registry.definitions.issues import IssueSet, did_you_mean
from registry.definitions.yaml_source import LineDict, LineList, SourceFile, read_tree

SEMANTIC_MODEL = "semantic_model"
METRIC = "metric"
SAVED_QUERY = "saved_query"
CONTRACT = "contract"
PROJECT = "project"
KINDS = (SEMANTIC_MODEL, METRIC, SAVED_QUERY, CONTRACT, PROJECT)
PROJECT_NAME = "default"

TIERS = ("certified", "standard", "experimental")
DEFAULT_SCHEMA = "main"
DEFAULT_TIME_SPINE = "tally_time_spine"
# Before dbt 1.9 the spine was a model of this name with a `date_day` column.
LEGACY_TIME_SPINE = "metricflow_time_spine"
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
# dbt-only config keys that the Semantic Layer spec itself does not define.
DBT_CONFIG_KEYS = {"enabled", "group", "tags", "cache", "docs", "export_as", "schema", "alias"}
REF_RE = re.compile(r"""^\s*ref\(\s*['"]([^'"]+)['"]\s*(?:,\s*['"]([^'"]+)['"]\s*)?\)\s*$""")


@dataclass
class DefinitionObject:
    """One parsed definition: its canonical spec (what is versioned) and where it came from."""

    kind: str
    name: str
    spec: dict[str, Any]
    file: str
    line: int
    source: Any = field(repr=False, default=None)
    parsed: Any = field(repr=False, default=None)

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


@dataclass(frozen=True)
class TeamSpec:
    slug: str
    name: str
    email: str
    members: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class DomainSpec:
    slug: str
    name: str
    description: str
    owner: str | None
    # Review policy: approvals a proposal touching the domain needs (config.meta.review
    # on a definition overrides it).
    min_approvals: int = 1


@dataclass
class Project:
    """Everything read from one folder, plus the issues found."""

    root: str
    objects: dict[tuple[str, str], DefinitionObject] = field(default_factory=dict)
    teams: dict[str, TeamSpec] = field(default_factory=dict)
    domains: dict[str, DomainSpec] = field(default_factory=dict)
    issues: IssueSet = field(default_factory=IssueSet)
    manifest: Any = None

    def of_kind(self, kind: str) -> list[DefinitionObject]:
        return [o for (k, _), o in sorted(self.objects.items()) if k == kind]

    def get(self, kind: str, name: str) -> DefinitionObject | None:
        return self.objects.get((kind, name))


# --------------------------------------------------------------------------- helpers


def plain(value: Any) -> Any:
    """LineDict/LineList → plain dicts and lists (JSON-able, hashable content)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def line_at(node: Any, path: Iterable[Any]) -> int:
    """The line of the deepest node along ``path`` that still has a recorded position."""
    line = getattr(node, "line", 0)
    for step in path:
        if (isinstance(node, LineDict) and step in node) or (
            isinstance(node, LineList) and isinstance(step, int) and step < len(node)
        ):
            line = node.line_of(step) or line
            node = node[step]
        else:
            break
        line = getattr(node, "line", 0) or line
    return line


def _key_line(node: Any, path: Iterable[Any], key: str) -> int:
    """The line of ``key`` itself inside the mapping at ``path`` (not of its value)."""
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return getattr(node, "line", 0)
    return node.line_of(key) if isinstance(node, LineDict) else getattr(node, "line", 0)


@cache
def _dsi_validators() -> dict[str, Any]:
    from dbt_semantic_interfaces.parsing import schemas

    return {
        SEMANTIC_MODEL: schemas.semantic_model_validator,
        METRIC: schemas.metric_validator,
        SAVED_QUERY: schemas.saved_query_validator,
        PROJECT: schemas.project_configuration_validator,
    }


@cache
def _odcs_validator() -> Any:
    import importlib.resources

    schema = json.loads(
        importlib.resources.files("open_data_contract_standard")
        .joinpath("schema.json")
        .read_text(encoding="utf-8")
    )
    return jsonschema.Draft201909Validator(schema)


def _unknown_key(err: SchemaError) -> str | None:
    if err.validator != "additionalProperties":
        return None
    extra = re.findall(r"'([^']+)'", err.message.split("(")[-1])
    return extra[0] if extra else None


def _schema_properties(err: SchemaError) -> list[str]:
    """The property names the failing (sub)schema declares; none for a boolean schema."""
    return list(err.schema.get("properties", {})) if isinstance(err.schema, Mapping) else []


def _schema_error_text(err: SchemaError, obj: str) -> tuple[str, str | None]:
    """A short message and hint for one JSON-schema error (not jsonschema's raw dump)."""
    where = ".".join(str(p) for p in err.absolute_path) or obj
    unknown = _unknown_key(err)
    if unknown is not None:
        known = _schema_properties(err)
        hint = did_you_mean(unknown, known) or ("known keys: " + ", ".join(sorted(known)))
        return f"unknown key {unknown!r} in {where}", hint
    if err.validator == "required":
        return f"{where}: {err.message}", "add the missing key"
    if err.validator == "enum":
        # An enum error's validator_value is the schema's list (jsonschema types it Any | Unset).
        options = ", ".join(repr(o) for o in cast(list[Any], err.validator_value))
        return f"{where}: {err.instance!r} is not allowed", f"use one of {options}"
    if err.validator == "type":
        return (
            f"{where}: expected {err.validator_value}, got {type(err.instance).__name__} "
            f"{json.dumps(err.instance, default=str)[:60]}",
            None,
        )
    if err.validator == "pattern":
        return f"{where}: {err.instance!r} does not match {err.validator_value}", (
            "names are lowercase letters, digits and underscores, starting with a letter"
        )
    return f"{where}: {err.message[:200]}", None


def _report_schema_errors(
    errors: Iterable[SchemaError], node: Any, file: str, obj: str, issues: IssueSet
) -> bool:
    # oneOf/anyOf produce a tree of alternatives; best_match per top-level error picks the
    # branch the author most likely meant instead of listing every alternative.
    best = [jsonschema.exceptions.best_match([e]) if e.context else e for e in errors]
    # A misspelt key also makes the real key "missing"; report only the misspelling.
    misspelt = set()
    for err in best:
        unknown = _unknown_key(err)
        if unknown is not None:
            for guess in difflib.get_close_matches(unknown, _schema_properties(err)):
                misspelt.add((tuple(err.absolute_path), guess))
    found = False
    seen: set[tuple[Any, ...]] = set()
    for err in sorted(best, key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        if err.validator == "required":
            missing = re.findall(r"'([^']+)'", err.message)
            if missing and (path, missing[0]) in misspelt:
                continue
        key = (path, err.validator, err.message)
        if key in seen:
            continue
        seen.add(key)
        found = True
        message, hint = _schema_error_text(err, obj)
        unknown = _unknown_key(err)
        issues.add(
            "schema",
            message,
            file=file,
            line=_key_line(node, path, unknown) if unknown else line_at(node, path),
            hint=hint,
            object=obj,
        )
    return found


def _pydantic_error(exc: Exception, node: Any, file: str, obj: str, issues: IssueSet) -> None:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for err in errors()[:5]:
            loc = [p for p in err.get("loc", ()) if p != "__root__"]
            issues.add(
                "invalid_value",
                f"{'.'.join(map(str, loc)) or obj}: {err.get('msg')}",
                file=file,
                line=line_at(node, loc),
                object=obj,
            )
        return
    issues.add(
        "invalid_value", str(exc).splitlines()[0], file=file, line=line_at(node, []), object=obj
    )


def _strip_dbt_config(node: Any) -> Any:
    """Copies an object without dbt-only config keys (enabled, group…) the DSI schema rejects."""
    if not isinstance(node, dict):
        return node
    out = LineDict(node)
    out.line, out.key_lines = getattr(node, "line", 0), getattr(node, "key_lines", {})
    config = node.get("config")
    if isinstance(config, dict):
        cfg = LineDict({k: v for k, v in config.items() if k not in DBT_CONFIG_KEYS})
        cfg.line, cfg.key_lines = getattr(config, "line", 0), getattr(config, "key_lines", {})
        out["config"] = cfg
        if not cfg:
            del out["config"]
    for key in ("entities", "measures", "dimensions"):
        if isinstance(node.get(key), list):
            items = LineList(_strip_dbt_config(i) for i in node[key])
            items.line = getattr(node[key], "line", 0)
            items.item_lines = getattr(node[key], "item_lines", [])
            out[key] = items
    return out


def _is_disabled(node: Any) -> bool:
    config = node.get("config") if isinstance(node, dict) else None
    return isinstance(config, dict) and config.get("enabled") is False


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
                if not _is_disabled(item):
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


def _semantic_model_to_dsi(raw: LineDict, file: str, issues: IssueSet) -> tuple[Any, str | None]:
    """dbt layout → DSI layout: ``model: ref('x')`` becomes a node_relation placeholder."""
    node = _strip_dbt_config(raw)
    ref: str | None = None
    if "model" in node:
        model = node.pop("model")
        match = REF_RE.match(str(model))
        if not match:
            issues.add(
                "bad_ref",
                f"model: {model!r} is not a ref()",
                file=file,
                line=raw.line_of("model"),
                hint="write model: ref('table_name')",
                object=str(raw.get("name")),
            )
            return None, None
        ref = match.group(2) or match.group(1)
        if "node_relation" not in node:
            # Resolved for real (through the contract or the default schema) when a manifest
            # is built for compiling; DSI only needs a well-formed relation to validate.
            node["node_relation"] = {"alias": ref, "schema_name": DEFAULT_SCHEMA}
    elif "node_relation" not in node:
        issues.add(
            "schema",
            f"semantic model {raw.get('name')!r} has neither model: ref(…) nor node_relation",
            file=file,
            line=raw.line,
            hint="add model: ref('table_name')",
            object=str(raw.get("name")),
        )
        return None, None
    return node, ref


def _parse_dsi_object(kind: str, raw: Any, file: str, line: int, issues: IssueSet) -> Any:
    """Checks one object against DSI's JSON schema and pydantic model; returns (spec, parsed)."""
    from dbt_semantic_interfaces.implementations.metric import PydanticMetric
    from dbt_semantic_interfaces.implementations.project_configuration import (
        PydanticProjectConfiguration,
    )
    from dbt_semantic_interfaces.implementations.saved_query import PydanticSavedQuery
    from dbt_semantic_interfaces.implementations.semantic_model import PydanticSemanticModel

    classes = {
        SEMANTIC_MODEL: PydanticSemanticModel,
        METRIC: PydanticMetric,
        SAVED_QUERY: PydanticSavedQuery,
        PROJECT: PydanticProjectConfiguration,
    }
    name = str(raw.get("name", PROJECT_NAME)) if isinstance(raw, dict) else "?"
    if not isinstance(raw, dict):
        issues.add("schema", f"a {kind} must be a mapping", file=file, line=line)
        return None
    node = _strip_dbt_config(raw) if kind != SEMANTIC_MODEL else raw
    if kind == METRIC:
        _expand_metric_shorthand(node)
    ref = None
    if kind == SEMANTIC_MODEL:
        # A mapping object in a loaded document is a LineDict (see _objects_in_document).
        node, ref = _semantic_model_to_dsi(cast(LineDict, raw), file, issues)
        if node is None:
            return None
    errors = list(_dsi_validators()[kind].iter_errors(node))
    if _report_schema_errors(errors, raw, file, name, issues):
        return None
    try:
        parsed = classes[kind].parse_obj(plain(node))
    except Exception as exc:  # pydantic's ValidationError, or a validator's ValueError
        _pydantic_error(exc, raw, file, name, issues)
        return None
    from dbt_semantic_interfaces.implementations.metadata import (
        PydanticFileSlice,
        PydanticMetadata,
    )

    # DSI's validation rules name files and lines from metadata; point them at this object.
    parsed.metadata = PydanticMetadata(
        repo_file_path=file,
        file_slice=PydanticFileSlice(
            filename=file, content="", start_line_number=line, end_line_number=line
        ),
    )
    spec = canonical_dsi_spec(parsed)
    if ref is not None:
        spec.pop("node_relation", None)
        spec["model"] = f"ref('{ref}')"
    return spec, parsed


def _expand_metric_shorthand(node: dict[Any, Any]) -> None:
    """dbt accepts ``metrics: [a, b]`` and ``numerator: a``; DSI wants ``{name: a}`` objects."""
    params = node.get("type_params")
    if not isinstance(params, dict):
        return
    metrics = params.get("metrics")
    if isinstance(metrics, list):
        for index, item in enumerate(metrics):
            if isinstance(item, str):
                metrics[index] = {"name": item}
    for side in ("numerator", "denominator"):
        if isinstance(params.get(side), str):
            params[side] = {"name": params[side]}


def canonical_dsi_spec(parsed: Any) -> dict[str, Any]:
    """The versioned form of a DSI object: its JSON without positions, defaults kept."""
    data = json.loads(parsed.json(exclude={"metadata"}))
    data.pop("metadata", None)
    # The DSI version that parsed a project is not part of its meaning (and would make every
    # DSI upgrade look like a change).
    data.pop("dsi_package_version", None)
    return _as_written(_drop_empty(data))


def _as_written(value: Any) -> Any:
    """Pydantic's internal shapes → the YAML shapes the spec's schema accepts, so that a
    stored spec can be exported and parsed back to itself (where filters become strings,
    time windows become "7 days")."""
    if isinstance(value, dict):
        if set(value) == {"where_filters"}:
            templates = [f["where_sql_template"] for f in value["where_filters"]]
            return templates[0] if len(templates) == 1 else templates
        if set(value) == {"count", "granularity"}:
            return f"{value['count']} {value['granularity']}"
        if "export_as" in value and "schema_name" in value:
            # Saved-query export config: the model field is schema_name, the YAML key schema.
            value = {("schema" if k == "schema_name" else k): v for k, v in value.items()}
        return {k: _as_written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_written(v) for v in value]
    return value


def _drop_empty(value: Any) -> Any:
    # None and empty containers carry no meaning in the spec; dropping them makes the
    # canonical form identical whether an author wrote `filter: null` or left it out.
    if isinstance(value, dict):
        cleaned = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def _time_spine_to_project(raw: LineDict, file: str, issues: IssueSet) -> dict[str, Any] | None:
    """A dbt ``models:`` entry with ``time_spine:`` → a DSI time_spines item."""
    config = raw.get("time_spine") or {}
    column = config.get("standard_granularity_column") if isinstance(config, dict) else None
    if not column:
        issues.add(
            "time_spine",
            f"time spine model {raw.get('name')!r} has no standard_granularity_column",
            file=file,
            line=raw.line_of("time_spine"),
            hint="time_spine: {standard_granularity_column: date_day}",
        )
        return None
    granularity = "day"
    for col in raw.get("columns") or []:
        if isinstance(col, dict) and col.get("name") == column and col.get("granularity"):
            granularity = str(col["granularity"])
    spine: dict[str, Any] = {
        "node_relation": {"alias": str(raw.get("name")), "schema_name": DEFAULT_SCHEMA},
        "primary_column": {"name": column, "time_granularity": granularity},
    }
    customs = config.get("custom_granularities") if isinstance(config, dict) else None
    if customs:
        spine["custom_granularities"] = [
            {
                "name": c.get("name"),
                **({"column_name": c["column_name"]} if "column_name" in c else {}),
            }
            for c in customs
            if isinstance(c, dict)
        ]
    return spine


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


def load_project(root: Path, *, validate: bool = True) -> Project:
    """Reads every definition under ``root`` and checks it.

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
    from registry.definitions import contracts as contract_rules

    project = Project(root=str(root))
    issues = project.issues
    spines: list[tuple[dict[str, Any], str, int]] = []
    legacy_spine: tuple[str, int] | None = None
    if root.is_dir() and any(root.rglob(f"{LEGACY_TIME_SPINE}.sql")):
        legacy_spine = (str(next(root.rglob(f"{LEGACY_TIME_SPINE}.sql"))), 1)
    for source in read_tree(root, issues):
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
                    spine = _time_spine_to_project(raw, source.path, issues)
                    if spine is not None:
                        spines.append((spine, source.path, line))
                else:
                    result = _parse_dsi_object(kind, raw, source.path, line, issues)
                    if result is not None:
                        spec, parsed = result
                        name = parsed.name if kind != PROJECT else PROJECT_NAME
                        _add(
                            project,
                            DefinitionObject(kind, name, spec, source.path, line, raw, parsed),
                        )
    if not spines and legacy_spine is not None and project.get(PROJECT, PROJECT_NAME) is None:
        legacy = {
            "time_spine_table_configurations": [
                {
                    "location": f"{DEFAULT_SCHEMA}.{LEGACY_TIME_SPINE}",
                    "column_name": "date_day",
                    "grain": "day",
                }
            ]
        }
        result = _parse_dsi_object(
            PROJECT, LineDict(legacy), legacy_spine[0], legacy_spine[1], issues
        )
        if result is not None:
            project.objects[(PROJECT, PROJECT_NAME)] = DefinitionObject(
                PROJECT, PROJECT_NAME, result[0], legacy_spine[0], legacy_spine[1], None, result[1]
            )
    if spines and project.get(PROJECT, PROJECT_NAME) is None:
        spec = {"time_spines": [s for s, _, _ in spines]}
        result = _parse_dsi_object(PROJECT, LineDict(spec), spines[0][1], spines[0][2], issues)
        if result is not None:
            project.objects[(PROJECT, PROJECT_NAME)] = DefinitionObject(
                PROJECT, PROJECT_NAME, result[0], spines[0][1], spines[0][2], None, result[1]
            )
    if validate and not issues.has_errors:
        from registry.definitions import rules

        rules.check_project(project)
    return project


def default_project_configuration() -> dict[str, Any]:
    """The time spine Tally maintains itself when a project declares none."""
    return {
        "time_spines": [
            {
                "node_relation": {"alias": DEFAULT_TIME_SPINE, "schema_name": DEFAULT_SCHEMA},
                "primary_column": {"name": "date_day", "time_granularity": "day"},
            }
        ]
    }


@dataclass(frozen=True)
class Relation:
    """Where a semantic model's rows live, and what said so."""

    database: str | None
    schema: str
    table: str
    via: str  # "contract" | "node_relation" | "default_schema"

    @property
    def qualified(self) -> str:
        return ".".join(p for p in (self.database, self.schema, self.table) if p)


def resolve_relation(
    obj: DefinitionObject,
    contracts: Iterable[DefinitionObject],
    *,
    default_schema: str = DEFAULT_SCHEMA,
) -> Relation:
    """The table a semantic model reads: through its contract (the ``ref()`` name is a table
    a contract declares; the contract's server gives the schema), its explicit
    ``node_relation``, or the table of that name in the warehouse's default schema.

    Example:
        >>> sm = DefinitionObject("semantic_model", "e", {"model": "ref('events')"}, "f", 1)
        >>> resolve_relation(sm, []).qualified
        'main.events'
    """
    from registry.definitions.contracts import contract_schema_name, contract_tables

    model = obj.spec.get("model")
    if model:
        table = REF_RE.match(str(model))
        name = (table.group(2) or table.group(1)) if table else str(model)
        wanted = (obj.spec.get("config") or {}).get("meta", {}).get("contract")
        for contract in contracts:
            if wanted and contract.name != wanted:
                continue
            if name in contract_tables(contract.spec):
                schema = contract_schema_name(contract.spec) or default_schema
                return Relation(None, schema, name, "contract")
        return Relation(None, default_schema, name, "default_schema")
    relation = obj.spec.get("node_relation") or {}
    return Relation(
        relation.get("database"),
        str(relation.get("schema_name") or default_schema),
        str(relation.get("alias") or obj.name),
        "node_relation",
    )


def meta_of(obj: DefinitionObject) -> Mapping[str, Any]:
    """``config.meta`` of a semantic-layer object (governance fields live there)."""
    config = obj.spec.get("config") or {}
    return config.get("meta") or {}
