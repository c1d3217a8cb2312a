"""The lineage graph: warehouse columns → contracts → semantic fields → metric versions → releases.

Django-free (STYLE rule 4): it takes the (kind, name, spec, version) rows of one release, the
same rows ``semantic.compiler.manifest.build_manifest`` reads, and returns a networkx
``MultiDiGraph``. Edges point the way data flows (upstream → downstream), so the upstream of a
node is its ancestors and the impact of a column its descendants.

Node ids are stable strings, ``<kind>:<name>``:

==================  =========================================  ==============================
kind                id                                         from
==================  =========================================  ==============================
table               ``table:main.events``                      semantic models, contracts, SQL
column              ``column:main.events.revenue``             expressions, contracts, SQL
sql_model           ``sql_model:stg_events``                   imported SQL / dbt models
contract            ``contract:events``                        ODCS contracts
contract_column     ``contract_column:events.events.revenue``  contract, table, column
semantic_model      ``semantic_model:events``
entity / dimension  ``dimension:events.event_type``            semantic model, element
measure             ``measure:events.revenue``
metric              ``metric:arpa@1.0``                        one metric *version*
release             ``release:r3``
compiled_query      ``compiled_query:<sha1 of SQL>[:12]``      :func:`add_compiled_query`
compute_run         ``compute_run:42``                         issue #7 (:func:`add_compute_run`)
value               ``value:1234``                             issue #7 (:func:`add_stored_value`)
==================  =========================================  ==============================

Every edge has ``type`` (derives_from, filters_by, joins_on, groups_by, pinned_in,
computed_by, or the structural ``contains``), ``subtype`` ``direct`` (the value flows) or
``indirect`` (it only decides which rows count: filter, join key, group-by, window order),
as OpenLineage's column-lineage facet marks them, ``transformation`` (identity,
transformation, aggregation, filter, join, group_by, window, conditional), ``expr`` (the
expression at that hop) and ``src`` (the definition that produced it, which is what an
incremental update replaces).

The package is split by concern, one module each (all Django-free):

* ids: node ids, edge types, the columns an expression reads;
* elements: what contracts and semantic models contribute, and the builders' inputs;
* metrics: what metrics contribute (inputs, filters, joins) and the release pins;
* build: :func:`build_graph`, every definition's elements merged into networkx;
* delta: incremental updates (:func:`graph_delta`, :func:`graph_apply_delta`);
* attach: SQL lineage, compiled queries, compute runs and stored values added later;
* queries: :func:`resolve_node`, :func:`upstream_tree`, :func:`impact`, :func:`path`;
* export: the OpenLineage column-lineage facet, node-link JSON and GraphML.

Import the public names from lineage.graph itself.
"""

from __future__ import annotations

from lineage.graph.attach import (
    add_column_edges,
    add_compiled_query,
    add_compute_run,
    add_stored_value,
)
from lineage.graph.build import build_graph
from lineage.graph.delta import GraphDelta, graph_apply_delta, graph_delta, graph_update
from lineage.graph.elements import Elements
from lineage.graph.export import graph_to_json, openlineage_column_lineage, write_graphml
from lineage.graph.ids import (
    COMPUTED_BY,
    CONTAINS,
    DERIVES_FROM,
    DIRECT,
    FILTERS_BY,
    GROUPS_BY,
    HINT_NODE_FORMS,
    INDIRECT,
    JOINS_ON,
    MSG_NO_PATH,
    MSG_UNKNOWN_NODE,
    NODE_KINDS,
    PINNED_IN,
    SHARED,
    DefinitionRow,
    LineageError,
    column_id,
    expression_columns,
    metric_id,
    table_id,
)
from lineage.graph.metrics import FilterRef, filter_refs
from lineage.graph.queries import (
    Hop,
    Impact,
    NodeNotFound,
    PathHop,
    downstream,
    impact,
    influences,
    path,
    resolve_node,
    upstream,
    upstream_tree,
)

__all__ = [
    "COMPUTED_BY",
    "CONTAINS",
    "DERIVES_FROM",
    "DIRECT",
    "FILTERS_BY",
    "GROUPS_BY",
    "HINT_NODE_FORMS",
    "INDIRECT",
    "JOINS_ON",
    "MSG_NO_PATH",
    "MSG_UNKNOWN_NODE",
    "NODE_KINDS",
    "PINNED_IN",
    "SHARED",
    "DefinitionRow",
    "Elements",
    "FilterRef",
    "GraphDelta",
    "Hop",
    "Impact",
    "LineageError",
    "NodeNotFound",
    "PathHop",
    "add_column_edges",
    "add_compiled_query",
    "add_compute_run",
    "add_stored_value",
    "build_graph",
    "column_id",
    "downstream",
    "expression_columns",
    "filter_refs",
    "graph_apply_delta",
    "graph_delta",
    "graph_to_json",
    "graph_update",
    "impact",
    "influences",
    "metric_id",
    "openlineage_column_lineage",
    "path",
    "resolve_node",
    "table_id",
    "upstream",
    "upstream_tree",
    "write_graphml",
]
