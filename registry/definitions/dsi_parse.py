"""dbt Semantic Layer objects → DSI objects: dbt-only keys stripped, ``model: ref()`` turned into
a node relation, shorthand expanded, checked with DSI's JSON schema and pydantic models, and
the canonical spec (what is versioned) taken from the parsed object."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from registry.definitions.issues import IssueSet
from registry.definitions.lines import LineDict, LineList
from registry.definitions.objects import (
    DEFAULT_SCHEMA,
    METRIC,
    PROJECT,
    PROJECT_NAME,
    REF_RE,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    plain,
)
from registry.definitions.schema_errors import dsi_validators, pydantic_error, report_schema_errors

# dbt-only config keys that the Semantic Layer spec itself does not define.
DBT_CONFIG_KEYS = {"enabled", "group", "tags", "cache", "docs", "export_as", "schema", "alias"}


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


def is_disabled(node: Any) -> bool:
    """``config: {enabled: false}``: dbt skips the object, and so does Tally."""
    config = node.get("config") if isinstance(node, dict) else None
    return isinstance(config, dict) and config.get("enabled") is False


# (database, schema, table) a ref() name resolves to in a dbt project root (dbt_placement.py).
Place = Callable[[str], tuple[str | None, str, str]]


def node_relation_spec(database: str | None, schema: str, alias: str) -> dict[str, Any]:
    """A node_relation in its canonical (versioned) form, as parsing one gives it.

    Example:
        >>> node_relation_spec(None, "analytics", "orders")
        {'alias': 'orders', 'schema_name': 'analytics', 'relation_name': 'analytics.orders'}
    """
    import dbt_semantic_interfaces.implementations.semantic_model  # noqa: F401  (import order)
    from dbt_semantic_interfaces.implementations.node_relation import PydanticNodeRelation

    relation = PydanticNodeRelation(alias=alias, schema_name=schema, database=database)
    shaped: dict[str, Any] = _drop_empty(json.loads(relation.json()))
    return shaped


def _semantic_model_to_dsi(
    raw: LineDict, file: str, issues: IssueSet, place: Place | None
) -> tuple[Any, str | None, bool]:
    """dbt layout → DSI layout: ``model: ref('x')`` becomes a node_relation: where ``place``
    (a dbt project root's profile) puts the table when that is not the default schema, else
    a placeholder. Returns (node, ref name, whether to keep node_relation beside model)."""
    node = _strip_dbt_config(raw)
    ref: str | None = None
    keep = "node_relation" in node
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
            return None, None, False
        ref = match.group(2) or match.group(1)
        placed = place(ref) if place is not None and not keep else None
        if placed is not None and placed != (None, DEFAULT_SCHEMA, ref):
            # Where dbt built it; a contract declaring the table still wins (relations.py).
            node["node_relation"] = node_relation_spec(*placed)
            keep = True
        elif "node_relation" not in node:
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
        return None, None, False
    return node, ref, keep


def parse_dsi_object(
    kind: str, raw: Any, file: str, line: int, issues: IssueSet, place: Place | None = None
) -> Any:
    """Checks one object against DSI's JSON schema and pydantic model; returns (spec, parsed).

    ``place`` resolves a semantic model's ``ref()`` in a dbt project root (its profile)."""
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
    saved_meta: dict[str, Any] | None = None
    if kind == SAVED_QUERY and "config" in node:
        ok, saved_meta = _saved_query_meta(node.pop("config"), raw, file, name, issues)
        if not ok:
            return None
    if kind == METRIC:
        _expand_metric_shorthand(node)
    ref, keep_relation = None, False
    if kind == SEMANTIC_MODEL:
        # A mapping object in a loaded document is a LineDict (see _objects_in_document).
        node, ref, keep_relation = _semantic_model_to_dsi(cast(LineDict, raw), file, issues, place)
        if node is None:
            return None
    errors = list(dsi_validators()[kind].iter_errors(node))
    if report_schema_errors(errors, raw, file, name, issues):
        return None
    try:
        parsed = classes[kind].parse_obj(plain(node))
    except Exception as exc:  # pydantic's ValidationError, or a validator's ValueError
        pydantic_error(exc, raw, file, name, issues)
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
    if saved_meta:
        spec["config"] = {"meta": saved_meta}
    if ref is not None:
        if not keep_relation:
            spec.pop("node_relation", None)
        spec["model"] = f"ref('{ref}')"
    return spec, parsed


def _saved_query_meta(
    config: Any, raw: Any, file: str, name: str, issues: IssueSet
) -> tuple[bool, dict[str, Any] | None]:
    """A saved query's ``config.meta`` (owner, domain, tier, review), as dbt writes it: DSI's
    saved query has no config, so Tally keeps it beside the spec (the dbt-only config keys,
    cache or export_as, are already dropped). Returns (valid, meta)."""
    line = raw.line_of("config") if isinstance(raw, LineDict) else 0
    if not isinstance(config, dict):
        issues.add(
            "schema",
            f"config of {name} must be a mapping",
            file=file,
            line=line,
            hint="write config: {meta: {owner: team-slug, domain: domain-slug}}",
            object=name,
        )
        return False, None
    unknown = sorted(str(k) for k in config if k != "meta")
    meta = config.get("meta")
    if unknown or (meta is not None and not isinstance(meta, dict)):
        issues.add(
            "schema",
            f"unknown key {unknown[0]!r} in config of {name}"
            if unknown
            else f"config.meta of {name} must be a mapping",
            file=file,
            line=line,
            hint="a saved query's config holds meta: {owner, domain, tier, review}",
            object=name,
        )
        return False, None
    return True, plain(meta) if meta else None


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


def as_written_spec(data: dict[str, Any]) -> dict[str, Any]:
    """DSI's JSON of an object (as dbt's semantic_manifest.json holds it) → the YAML shape:
    nulls and empty containers dropped, filters as strings, windows as "7 days"."""
    shaped: dict[str, Any] = _as_written(_drop_empty(data))
    return shaped


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


def time_spine_to_project(
    raw: LineDict, file: str, issues: IssueSet, place: Place | None = None
) -> dict[str, Any] | None:
    """A dbt ``models:`` entry with ``time_spine:`` → a DSI time_spines item (its table where
    ``place``, a dbt project root's profile, puts it)."""
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
        "node_relation": node_relation_spec(
            *(
                place(str(raw.get("name")))
                if place
                else (None, DEFAULT_SCHEMA, str(raw.get("name")))
            )
        ),
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
