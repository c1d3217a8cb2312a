"""Manifest: a frozen snapshot of one release's semantic layer, indexed for compiling.

Built from the canonical specs the registry stores (dbt Semantic Layer layout), with every
semantic model's table resolved through its contract, node_relation or the default schema.
Django-free: the registry hands in plain specs.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from registry.definitions.contracts import MASK_PROPERTY
from registry.definitions.objects import (
    CONTRACT,
    DEFAULT_SCHEMA,
    METRIC,
    PROJECT,
    SAVED_QUERY,
    SEMANTIC_MODEL,
    DefinitionObject,
)
from registry.definitions.relations import resolve_relation
from semantic.compiler.grains import SUB_DAILY

# How a PII column is shown to a principal without view_pii: a salted hash pseudonym (stays
# joinable and countable) or NULL. A contract picks per column with the ODCS custom property
# ``tallyMask``; otherwise the compile's default (setting TALLY_PII_MASK) applies.
MASK_MODES = ("hash", "null")
# (database, schema, table), case-folded: how Tally compares the tables two reads name.
RelationKey = tuple[str, str, str]


def relation_key(relation: tuple[str | None, str | None, str]) -> RelationKey:
    """A relation as engines compare unquoted identifiers, folded to lower case on every part.

    DuckDB and MariaDB (lower_case_table_names on the usual platforms) resolve ``USERS`` and
    ``users`` to one table and PostgreSQL folds unquoted names to lower case; a quoted
    PostgreSQL ``"USERS"`` is another table, but treating it as ``users`` only adds
    protections (fail closed), never removes them.

    Example:
        >>> relation_key((None, "Main", "USERS"))
        ('', 'main', 'users')
    """
    database, schema, table = relation
    return ((database or "").lower(), (schema or "").lower(), table.lower())


# Entity types that make a model an entity's home (one row per entity; for ``natural``, one
# per entity at any point in time, an SCD type II model). Row policies find homes by them;
# joins follow the stricter rules of ``semantic.compiler.entity_graph``.
UNIQUE_ENTITY_TYPES = ("primary", "unique", "natural")


@dataclass(frozen=True)
class Entity:
    name: str
    type: str
    expr: str


@dataclass(frozen=True)
class Dimension:
    name: str
    type: str  # "categorical" | "time"
    expr: str
    grain: str | None = None
    # ``is_partition``: joins between two models with this partition dimension also match
    # on it (MetricFlow's partition joins).
    is_partition: bool = False


@dataclass(frozen=True)
class Measure:
    name: str
    agg: str
    expr: str
    semantic_model: str
    agg_time_dimension: str
    percentile: float | None = None
    use_discrete_percentile: bool = False
    non_additive: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SemanticModel:
    name: str
    relation: tuple[str | None, str, str]  # (database, schema, table)
    entities: Mapping[str, Entity]
    dimensions: Mapping[str, Dimension]
    measures: Mapping[str, Measure]
    primary_entity: str | None
    # Row policies declared in ``config.meta.tally.row_policies`` (raw mappings, checked at
    # sync; the compiler parses them and fails closed on anything malformed).
    row_policies: tuple[Mapping[str, Any], ...] = ()
    # PII columns of the model's table (from its contract) → mask mode ("" = the default).
    pii_columns: Mapping[str, str] = field(default_factory=dict)
    # SCD type II: the (is_start, is_end) time dimensions of ``validity_params``, None for an
    # ordinary model. A row holds for [start, end), an open end (NULL) while it is current.
    validity: tuple[str, str] | None = None

    def unique_entities(self) -> set[str]:
        return {e.name for e in self.entities.values() if e.type in UNIQUE_ENTITY_TYPES}


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    spec: Mapping[str, Any]
    version: str = ""

    @property
    def params(self) -> Mapping[str, Any]:
        return self.spec.get("type_params") or {}

    @functools.cached_property
    def filters(self) -> tuple[str, ...]:
        # Read by every stage of every compile; the spec never changes (frozen per release).
        return _filters(self.spec.get("filter"))


@dataclass(frozen=True)
class TimeSpine:
    relation: tuple[str | None, str, str]
    column: str
    grain: str = "day"
    # dbt's custom_granularities of the spine model: (name, column of the spine holding each
    # day's period start or label), e.g. ("fiscal_quarter", "fiscal_quarter_start").
    custom_granularities: tuple[tuple[str, str], ...] = ()
    # Spines at a finer grain than a day (hour, minute, second), by grain: relation + column.
    finer: tuple[tuple[str, tuple[str | None, str, str], str], ...] = ()

    @property
    def custom_grain_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.custom_granularities)

    def custom_column(self, grain: str) -> str | None:
        return next((column for name, column in self.custom_granularities if name == grain), None)


@dataclass(frozen=True)
class Manifest:
    """Everything the compiler reads, for one release."""

    release: str
    semantic_models: Mapping[str, SemanticModel]
    metrics: Mapping[str, Metric]
    measures: Mapping[str, Measure]
    saved_queries: Mapping[str, Mapping[str, Any]]
    time_spine: TimeSpine
    versions: Mapping[str, str] = field(default_factory=dict)
    # The current release's manifest when this one is an older, pinned release: its row
    # policies and PII classifications apply on top of this one's (security always comes
    # from the latest release too). None when this is the current release.
    security: Manifest | None = field(default=None, compare=False, repr=False)
    # Join targets by entity, filled on first use: every join of every compile asks. Not an
    # init field, so dataclasses.replace() starts a fresh index for the new models.
    _unique_index: dict[str, tuple[SemanticModel, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Models carrying an entity (any type), and resolved entity paths (entity_graph), cached
    # the same way.
    _entity_index: dict[str, tuple[SemanticModel, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    path_cache: dict[tuple[str, tuple[str, ...], str], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Key probes' SQL by (model, entity, dialect) (semantic.compiler.key_uses): every
    # compile of a joined query asks, and rendering one costs about a millisecond.
    probe_cache: dict[tuple[str, str, str], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # A metric's expansion into leaves (semantic.compiler.plan), by (function, metric name,
    # filters, offset): resolve, plan and every kind ask for the same metrics many times.
    leaf_cache: dict[tuple[Any, ...], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Row-policy reads per (model, principal) and what every Access derives from the
    # manifest alone (semantic.compiler.policies); bounded there.
    policy_cache: dict[Any, Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def row_policies(self, entity: str) -> tuple[tuple[SemanticModel, int, Mapping[str, Any]], ...]:
        """(declaring model, index, policy) of every row policy on ``entity``, in model order."""
        return tuple(
            (model, index, policy)
            for model in self.semantic_models.values()
            for index, policy in enumerate(model.row_policies)
            if isinstance(policy, Mapping) and policy.get("entity") == entity
        )

    def models_with_unique_entity(self, entity: str) -> tuple[SemanticModel, ...]:
        found = self._unique_index.get(entity)
        if found is None:
            found = tuple(m for m in self.semantic_models.values() if entity in m.unique_entities())
            self._unique_index[entity] = found
        return found

    def models_with_entity(self, entity: str) -> tuple[SemanticModel, ...]:
        """Every model that declares ``entity``, whatever its type, in model order."""
        found = self._entity_index.get(entity)
        if found is None:
            found = tuple(m for m in self.semantic_models.values() if entity in m.entities)
            self._entity_index[entity] = found
        return found


def _filters(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _expr(element: Mapping[str, Any]) -> str:
    expr = element.get("expr")
    if expr is None or expr is True:
        return str(element["name"])
    return str(expr)


def _semantic_model(
    obj: DefinitionObject, contracts: list[DefinitionObject], schema: str, pii: PiiIndex
) -> SemanticModel:
    spec = obj.spec
    relation = resolve_relation(obj, contracts, default_schema=schema)
    defaults = spec.get("defaults") or {}
    entities = {
        e["name"]: Entity(e["name"], e["type"], _expr(e)) for e in spec.get("entities") or []
    }
    dimensions = {
        d["name"]: Dimension(
            d["name"],
            d["type"],
            _expr(d),
            ((d.get("type_params") or {}).get("time_granularity")) if d["type"] == "time" else None,
            bool(d.get("is_partition")),
        )
        for d in spec.get("dimensions") or []
    }
    measures = {}
    for m in spec.get("measures") or []:
        params = m.get("agg_params") or {}
        measures[m["name"]] = Measure(
            name=m["name"],
            agg=m["agg"],
            # MetricFlow counts rows when a count measure has no expression.
            expr=_expr(m) if m.get("expr") is not None or m["agg"] != "count" else "1",
            semantic_model=obj.name,
            agg_time_dimension=m.get("agg_time_dimension")
            or defaults.get("agg_time_dimension")
            or "",
            percentile=params.get("percentile"),
            use_discrete_percentile=bool(params.get("use_discrete_percentile")),
            non_additive=m.get("non_additive_dimension"),
        )
    meta = (spec.get("config") or {}).get("meta") or {}
    tally_meta = meta.get("tally") if isinstance(meta, Mapping) else None
    policies = (tally_meta or {}).get("row_policies") if isinstance(tally_meta, Mapping) else None
    return SemanticModel(
        name=obj.name,
        relation=(relation.database, relation.schema, relation.table),
        entities=entities,
        dimensions=dimensions,
        measures=measures,
        primary_entity=spec.get("primary_entity")
        or next((e.name for e in entities.values() if e.type == "primary"), None),
        # A malformed (non-list) value is kept as one policy the compiler refuses: dropping it
        # would silently open every row.
        row_policies=tuple(policies)
        if isinstance(policies, list)
        else ((policies,) if policies else ()),
        pii_columns=_pii_columns(obj, pii, relation.table),
        validity=_validity(spec),
    )


def _validity(spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (start, end) dimensions of an SCD type II model's ``validity_params``; None unless
    exactly one of each (DSI's validation refuses anything else at sync)."""
    starts, ends = [], []
    for dim in spec.get("dimensions") or []:
        params = (dim.get("type_params") or {}).get("validity_params") or {}
        if params.get("is_start"):
            starts.append(str(dim["name"]))
        if params.get("is_end"):
            ends.append(str(dim["name"]))
    if len(starts) == 1 and len(ends) == 1 and starts != ends:
        return starts[0], ends[0]
    return None


PiiIndex = dict[str, list[tuple[str, dict[str, str]]]]


def _pii_index(contracts: list[DefinitionObject]) -> PiiIndex:
    """Table → [(contract, {PII column: mask mode})] in contract order, built once per
    manifest (a registry can hold a thousand contracts)."""
    from registry.definitions.contracts import contract_tables

    index: PiiIndex = {}
    for contract in contracts:
        for schema_object in contract.spec.get("schema") or []:
            table = str(schema_object.get("physicalName") or schema_object.get("name") or "")
            if not table:
                continue
            columns = {c.name: c for c in contract_tables({"schema": [schema_object]})[table]}
            # Keyed case-folded: a model on USERS reads the table the users contract covers.
            table = table.lower()
            found: dict[str, str] = {}
            for prop in schema_object.get("properties") or []:
                column = columns.get(str(prop.get("physicalName") or prop.get("name")))
                if column is None or not column.is_pii:
                    continue
                found[column.name] = next(
                    (
                        str(custom.get("value") or "").lower()
                        for custom in prop.get("customProperties") or []
                        if isinstance(custom, Mapping) and custom.get("property") == MASK_PROPERTY
                    ),
                    "",
                )
            index.setdefault(table, []).append((contract.name, found))
    return index


def _pii_columns(obj: DefinitionObject, index: PiiIndex, table: str) -> dict[str, str]:
    """PII columns of ``table`` in the contract that covers it (as resolve_relation picks it),
    with their mask mode."""
    wanted = ((obj.spec.get("config") or {}).get("meta") or {}).get("contract")
    for contract, columns in index.get(table.lower(), ()):
        if not wanted or contract == wanted:
            return columns
    return {}


def _time_spine(project_spec: Mapping[str, Any] | None, schema: str) -> TimeSpine:
    """The project's day spine (custom granularities included) and any finer spines.

    dbt allows a spine per grain; the compiler joins the day spine for day and coarser
    grains (and custom ones), and a sub-daily spine only for hour, minute or second.
    """
    spec = project_spec or {}
    spines: list[TimeSpine] = []
    for spine in spec.get("time_spines") or []:
        relation = spine.get("node_relation") or {}
        column = spine.get("primary_column") or {}
        customs = tuple(
            (str(c["name"]).lower(), str(c.get("column_name") or c["name"]))
            for c in spine.get("custom_granularities") or []
            if isinstance(c, Mapping) and c.get("name")
        )
        spines.append(
            TimeSpine(
                (
                    relation.get("database"),
                    relation.get("schema_name") or schema,
                    relation["alias"],
                ),
                column.get("name", "date_day"),
                str(column.get("time_granularity", "day")).lower(),
                customs,
            )
        )
    if spines:
        day = next((s for s in spines if s.grain == "day"), spines[0])
        finer = tuple(
            (s.grain, s.relation, s.column) for s in spines if s.grain in SUB_DAILY and s is not day
        )
        customs = tuple(c for s in spines for c in s.custom_granularities)
        return replace(day, custom_granularities=customs, finer=finer)
    for legacy in spec.get("time_spine_table_configurations") or []:
        parts = str(legacy["location"]).split(".")
        return TimeSpine(
            (None, parts[-2] if len(parts) > 1 else schema, parts[-1]),
            legacy["column_name"],
            legacy.get("grain", "day"),
        )
    return TimeSpine((None, schema, "tally_time_spine"), "date_day", "day")


def _mapped(
    relation: tuple[str | None, str, str], schema_map: Mapping[str, str]
) -> tuple[str | None, str, str]:
    database, schema, table = relation
    return (database, schema_map.get(schema, schema), table)


def build_manifest(
    objects: Iterable[tuple[str, str, Mapping[str, Any], str]],
    *,
    release: str = "",
    default_schema: str = DEFAULT_SCHEMA,
    schema_map: Mapping[str, str] | None = None,
) -> Manifest:
    """Builds a Manifest from (kind, name, spec, version) rows of one release.

    Example:
        >>> m = build_manifest([("semantic_model", "e", {"name": "e", "model": "ref('events')",
        ...     "measures": [{"name": "n", "agg": "count"}]}, "1.0")])
        >>> m.semantic_models["e"].relation, m.measures["n"].expr
        ((None, 'main', 'events'), '1')
    """
    rows = list(objects)
    contracts = [
        DefinitionObject(CONTRACT, n, dict(s), "", 0) for k, n, s, _ in rows if k == CONTRACT
    ]
    pii = _pii_index(contracts)
    models: dict[str, SemanticModel] = {}
    metrics: dict[str, Metric] = {}
    saved: dict[str, Mapping[str, Any]] = {}
    versions: dict[str, str] = {}
    project_spec: Mapping[str, Any] | None = None
    for kind, name, spec, version in rows:
        versions[f"{kind}:{name}"] = version
        if kind == SEMANTIC_MODEL:
            obj = DefinitionObject(kind, name, dict(spec), "", 0)
            models[name] = _semantic_model(obj, contracts, default_schema, pii)
        elif kind == METRIC:
            metrics[name] = Metric(name, str(spec["type"]), spec, version)
        elif kind == SAVED_QUERY:
            saved[name] = spec
        elif kind == PROJECT:
            project_spec = spec
    if schema_map:
        # A contract names the logical schema; a deployment may keep it elsewhere (a PostgreSQL
        # copy in "public", a MySQL database per environment).
        models = {
            name: replace(model, relation=_mapped(model.relation, schema_map))
            for name, model in models.items()
        }
    measures = {m.name: m for model in models.values() for m in model.measures.values()}
    spine = _time_spine(project_spec, default_schema)
    if schema_map:
        spine = replace(spine, relation=_mapped(spine.relation, schema_map))
    return Manifest(
        release=release,
        semantic_models=models,
        metrics=metrics,
        measures=measures,
        saved_queries=saved,
        time_spine=spine,
        versions=versions,
    )
