"""What contracts and semantic models contribute to the graph, and the inputs the builders read.

Each definition contributes its own :class:`Elements` (nodes and edges tagged with its ``src``), so
an incremental update can replace exactly what one definition produced.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lineage.graph.ids import (
    CONTAINS,
    DERIVES_FROM,
    DIRECT,
    GROUPS_BY,
    INDIRECT,
    SHARED,
    DefinitionRow,
    column_id,
    expression_columns,
    is_identity,
    table_id,
)
from registry.definitions.contracts import contract_schema_name, contract_tables
from registry.definitions.project import CONTRACT, METRIC, SEMANTIC_MODEL
from registry.definitions.rules import metric_inputs
from semantic.compiler.manifest import Manifest, Metric, SemanticModel, build_manifest


@dataclass
class Elements:
    """Nodes and edges one definition contributes (its ``src``)."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def node(self, node: str, kind: str, label: str, src: str, **attrs: Any) -> str:
        self.nodes.setdefault(node, {"kind": kind, "label": label, "src": src, **attrs})
        return node

    def edge(
        self,
        u: str,
        v: str,
        type_: str,
        *,
        src: str,
        subtype: str = DIRECT,
        transformation: str = "identity",
        expr: str = "",
    ) -> None:
        # The key keeps two different hops between the same nodes apart (a dimension that is
        # both grouped by and filtered on) and is stable, so rebuilds produce the same keys.
        key = f"{type_}|{transformation}|{expr}"
        self.edges[(u, v, key)] = {
            "type": type_,
            "subtype": subtype,
            "transformation": transformation,
            "expr": expr,
            "src": src,
        }


@dataclass(frozen=True)
class Inputs:
    """What the per-definition builders read: the manifest plus raw specs and metadata."""

    manifest: Manifest
    specs: Mapping[str, Mapping[str, Any]]  # "kind:name" → spec
    versions: Mapping[str, str]
    contracts: Mapping[str, Mapping[str, Any]]  # contract name → spec

    @functools.cached_property
    def contract_columns(self) -> Mapping[tuple[str, str], Mapping[str, str]]:
        """(schema, table) → column → contract_column id; built on first use (an incremental
        update that touches no semantic model never needs it)."""
        return _index_contract_columns(self.contracts, self.contract_tables_of)

    def contract_tables_of(self, name: str) -> Mapping[str, list[Any]]:
        """``contract_tables`` of one contract, parsed once per inputs (it is read twice)."""
        cache = self.__dict__.setdefault("_tables", {})
        if name not in cache:
            cache[name] = contract_tables(dict(self.contracts[name]))
        return cache[name]

    @functools.cached_property
    def readers(self) -> dict[str, set[str]]:
        """metric name → the metrics that read it (ratio, derived, cumulative inputs)."""
        readers: dict[str, set[str]] = {}
        for name, metric in self.manifest.metrics.items():
            for kind, read, _ in metric_inputs(dict(metric.spec)):
                if kind == "metric":
                    readers.setdefault(read, set()).add(name)
        return readers


def _patched_readers(
    previous: Inputs, metrics: Mapping[str, Metric], changed: Iterable[str]
) -> dict[str, set[str]]:
    """The parent's reverse-dependency map with only the changed metrics re-read."""
    readers = {name: set(by) for name, by in previous.readers.items()}
    for name in changed:
        for source in (previous.manifest.metrics.get(name), metrics.get(name)):
            if source is None:
                continue
            for kind, read, _ in metric_inputs(dict(source.spec)):
                if kind == "metric":
                    readers.setdefault(read, set()).discard(name)
        if name in metrics:
            for kind, read, _ in metric_inputs(dict(metrics[name].spec)):
                if kind == "metric":
                    readers.setdefault(read, set()).add(name)
    return readers


def inputs_read(
    rows: Iterable[DefinitionRow], release: str, previous: Inputs | None = None
) -> Inputs:
    rows = list(rows)
    versions = {f"{k}:{n}": v for k, n, _, v in rows}
    manifest = None
    if previous is not None:
        changed = {
            k
            for k in set(versions) | set(previous.versions)
            if versions.get(k) != previous.versions.get(k)
        }
        if all(k.startswith(f"{METRIC}:") for k in changed):
            # Only metrics moved: the semantic models (and their contract-resolved tables)
            # are the parent's; re-resolving a thousand models would dominate the update.
            # Unchanged metric versions keep their Metric objects too.
            metrics = dict(previous.manifest.metrics)
            names = {k.partition(":")[2] for k in changed}
            for name in names:
                metrics.pop(name, None)
            for kind, name, spec, version in rows:
                if kind == METRIC and name in names:
                    metrics[name] = Metric(name, str(spec["type"]), spec, version)
            manifest = replace(
                previous.manifest, release=release, metrics=metrics, versions=versions
            )
            inputs = Inputs(
                manifest=manifest,
                specs={f"{k}:{n}": s for k, n, s, _ in rows},
                versions=versions,
                contracts=previous.contracts,
            )
            # Carry the parent's derived indexes forward instead of recomputing them.
            inputs.__dict__["readers"] = _patched_readers(previous, metrics, names)
            if "contract_columns" in previous.__dict__:
                inputs.__dict__["contract_columns"] = previous.contract_columns
            return inputs
    if manifest is None:
        manifest = build_manifest(rows, release=release)
    contracts = {n: s for k, n, s, _ in rows if k == CONTRACT}
    return Inputs(
        manifest=manifest,
        specs={f"{k}:{n}": s for k, n, s, _ in rows},
        versions=versions,
        contracts=contracts,
    )


def definition_meta(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    return (spec.get("config") or {}).get("meta") or {}


def warehouse_column(el: Elements, relation: Sequence[str | None], column: str) -> str:
    table = el.node(table_id(relation), "table", table_id(relation)[6:], SHARED)
    node = el.node(column_id(relation, column), "column", column_id(relation, column)[7:], SHARED)
    el.edge(table, node, CONTAINS, src=SHARED)
    return node


def contract_elements(
    name: str, spec: Mapping[str, Any], tables: Mapping[str, list[Any]] | None = None
) -> Elements:
    src = f"{CONTRACT}:{name}"
    el = Elements()
    team = spec.get("team")
    owner = team.get("name") if isinstance(team, dict) else None
    contract = el.node(
        f"contract:{name}", "contract", name, src, owner=owner, version=spec.get("version")
    )
    schema = contract_schema_name(dict(spec)) or "main"
    for table, columns in (tables if tables is not None else contract_tables(dict(spec))).items():
        relation = (None, schema, table)
        for column in columns:
            cc = el.node(
                f"contract_column:{name}.{table}.{column.name}".lower(),
                "contract_column",
                f"{table}.{column.name} (contract {name})",
                src,
                pii=column.is_pii,
                logical_type=column.logical_type,
            )
            el.edge(contract, cc, CONTAINS, src=src)
            el.edge(warehouse_column(el, relation, column.name.lower()), cc, DERIVES_FROM, src=src)
    return el


def _contract_column_for(inputs: Inputs, relation: Sequence[str | None]) -> Mapping[str, str]:
    """column name → contract_column id for the table a semantic model reads."""
    _, schema, table = relation
    return inputs.contract_columns.get((str(schema), str(table)), {})


def _index_contract_columns(
    contracts: Mapping[str, Mapping[str, Any]],
    tables_of: Any = None,
) -> dict[tuple[str, str], dict[str, str]]:
    # Built once per graph: looking a model's table up in every contract is quadratic.
    index: dict[tuple[str, str], dict[str, str]] = {}
    for name in sorted(contracts):
        spec = dict(contracts[name])
        schema = contract_schema_name(spec) or "main"
        for table, columns in (tables_of(name) if tables_of else contract_tables(spec)).items():
            found = index.setdefault((schema, table), {})
            for column in columns:
                found.setdefault(
                    column.name.lower(), f"contract_column:{name}.{table}.{column.name}".lower()
                )
    return index


def _read_columns(
    el: Elements,
    inputs: Inputs,
    model: SemanticModel,
    expr: str,
    target: str,
    *,
    src: str,
    dialect: str | None,
    subtype: str,
    transformation: str,
    type_: str = DERIVES_FROM,
    covered: Mapping[str, str],
) -> None:
    """Edges from every column ``expr`` reads (through its contract column when one is
    declared, else straight from the warehouse column) to ``target``."""
    for column in expression_columns(expr, dialect=dialect):
        source = covered.get(column) or warehouse_column(el, model.relation, column)
        if covered.get(column):
            # Keep the warehouse column in the graph even when only the contract names it.
            warehouse_column(el, model.relation, column)
        kind = (
            "identity"
            if is_identity(expr, column) and transformation != "aggregation"
            else transformation
        )
        el.edge(source, target, type_, src=src, subtype=subtype, transformation=kind, expr=expr)


def semantic_model_elements(inputs: Inputs, name: str) -> Elements:
    src = f"{SEMANTIC_MODEL}:{name}"
    spec = inputs.specs[src]
    model = inputs.manifest.semantic_models[name]
    el = Elements()
    meta = definition_meta(spec)
    dialects = {
        element["name"]: definition_meta(element).get("sql_dialect")
        for group in ("entities", "dimensions", "measures")
        for element in spec.get(group) or []
    }
    sm = el.node(
        f"semantic_model:{name}",
        "semantic_model",
        name,
        src,
        owner=meta.get("owner"),
        domain=meta.get("domain"),
        version=inputs.versions.get(src, ""),
    )
    table = el.node(table_id(model.relation), "table", table_id(model.relation)[6:], SHARED)
    el.edge(table, sm, DERIVES_FROM, src=src, transformation="identity")
    covered = _contract_column_for(inputs, model.relation)
    for kind, elements in (
        ("entity", model.entities),
        ("dimension", model.dimensions),
    ):
        for element in elements.values():
            node = el.node(
                f"{kind}:{name}.{element.name}",
                kind,
                f"{name}.{element.name}",
                src,
                expr=element.expr,
                semantic_model=name,
            )
            el.edge(sm, node, CONTAINS, src=src)
            _read_columns(
                el, inputs, model, element.expr, node,
                src=src, dialect=dialects.get(element.name), subtype=DIRECT,
                transformation="transformation", covered=covered,
            )  # fmt: skip
    for measure in model.measures.values():
        shown = f"{measure.agg}({measure.expr})"
        node = el.node(
            f"measure:{name}.{measure.name}",
            "measure",
            f"{name}.{measure.name}",
            src,
            expr=shown,
            agg=measure.agg,
            semantic_model=name,
        )
        el.edge(sm, node, CONTAINS, src=src)
        _read_columns(
            el, inputs, model, measure.expr, node,
            src=src, dialect=dialects.get(measure.name), subtype=DIRECT,
            transformation="aggregation", covered=covered,
        )  # fmt: skip
        if measure.agg_time_dimension in model.dimensions:
            # metric_time of a measure is its agg time dimension: it decides the period a row
            # lands in, not the value.
            el.edge(
                f"dimension:{name}.{measure.agg_time_dimension}", node, GROUPS_BY,
                src=src, subtype=INDIRECT, transformation="group_by",
                expr=f"metric_time = {measure.agg_time_dimension}",
            )  # fmt: skip
        window = (measure.non_additive or {}).get("name")
        if window in model.dimensions:
            el.edge(
                f"dimension:{name}.{window}", node, GROUPS_BY,
                src=src, subtype=INDIRECT, transformation="window",
                expr=f"non-additive over {window}",
            )  # fmt: skip
    return el
