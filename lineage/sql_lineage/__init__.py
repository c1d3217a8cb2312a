"""Column-level lineage of SQL transformation code (a folder of models or a dbt manifest).

Django-free. Each statement is parsed with sqlglot in its dialect, qualified against the
schemas known so far (contracts, earlier statements and models), and walked scope by scope:
an output column's *direct* sources are the columns its expression reads (through CTEs,
derived tables, set operations, scalar subqueries, UNNEST/LATERAL/FLATTEN/LATERAL VIEW),
its *indirect* ones the columns that decide which rows reach it (WHERE, JOIN … ON, GROUP BY,
HAVING, QUALIFY, window PARTITION/ORDER BY, CASE conditions), as OpenLineage's column-lineage
facet marks them.

Why our own walk rather than ``sqlglot.lineage``: that function follows one output column at a
time (quadratic on wide models), reports no indirect sources, and does not descend into
UNNEST/LATERAL sources or MERGE/UPDATE; our walk (``walk``) does all columns of a statement in one
pass over its scopes.

Statements understood: ``CREATE TABLE/VIEW … AS``, bare ``SELECT`` (named by its file or dbt
model), ``INSERT [INTO] t [(cols)] SELECT``, ``SELECT … INTO t`` (T-SQL), ``MERGE`` and
``UPDATE … [FROM]``. Later statements of a script, and models that depend on other models,
see the columns of tables created earlier (models are ordered by their dependencies).

The package is split by concern (all Django-free): ``edges`` (ColumnEdge and the sources of
one output column), ``walk`` (the scope walk, with ``nodes`` and ``pivots``), ``book`` (the
known tables' columns), ``statements`` (statements to edges), ``ordering`` (models in
dependency order, and the levels that may run side by side), ``parallel`` (those levels in
worker processes), ``projects`` (folders and dbt manifests), ``influence`` (every column
upstream of one). Import the public names from ``lineage.sql_lineage`` itself.
"""

from __future__ import annotations

from lineage.sql_lineage.edges import (
    DEFAULT_SCHEMA,
    DIALECTS,
    DIRECT,
    INDIRECT,
    MSG_PARSE,
    MSG_UNKNOWN_DIALECT,
    ColumnEdge,
    Relation,
    SqlLineageError,
)
from lineage.sql_lineage.influence import column_influences
from lineage.sql_lineage.projects import (
    SqlModel,
    dbt_catalog_schema,
    dbt_schema,
    dbt_sources_schema,
    models_from_dbt_manifest,
    models_from_dir,
    project_edges,
    project_lineage,
)
from lineage.sql_lineage.script import StatementIssue, parse_script
from lineage.sql_lineage.statements import (
    SchemaBook,
    SqlLineage,
    sql_edges,
    sql_lineage,
    statement_edges,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "DIALECTS",
    "DIRECT",
    "INDIRECT",
    "MSG_PARSE",
    "MSG_UNKNOWN_DIALECT",
    "ColumnEdge",
    "Relation",
    "SchemaBook",
    "SqlLineage",
    "SqlLineageError",
    "SqlModel",
    "StatementIssue",
    "column_influences",
    "dbt_catalog_schema",
    "dbt_schema",
    "dbt_sources_schema",
    "models_from_dbt_manifest",
    "models_from_dir",
    "parse_script",
    "project_edges",
    "project_lineage",
    "sql_edges",
    "sql_lineage",
    "statement_edges",
]
