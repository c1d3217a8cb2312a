"""SQL projects: models from a folder or a dbt manifest, ordered by their dependencies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from lineage.sql_lineage.edges import DEFAULT_SCHEMA, ColumnEdge, SqlLineageError
from lineage.sql_lineage.statements import (
    dialect_check,
    parse_statements,
    schema_book,
    statement_edges,
)


@dataclass(frozen=True)
class SqlModel:
    name: str
    sql: str
    schema: str | None = None  # where a bare SELECT model is materialised
    database: str | None = None
    file: str = ""


def _order(
    models: list[SqlModel],
    dialect: str,
    default_schema: str,
    parsed: dict[str, list[exp.Expr]],
) -> list[SqlModel]:
    """Models in dependency order: a model that reads another's table comes after it.
    Fills ``parsed`` (model → statements) so that each model is parsed once."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    creates: dict[str, str] = {}
    reads: dict[str, set[str]] = {}
    for model in models:
        graph.add_node(model.name)
        try:
            statements = [s for s in sqlglot.parse(model.sql, read=dialect) if s is not None]
        except SqlglotError:
            continue
        parsed[model.name] = statements
        made = {model.name.lower()}
        read: set[str] = set()
        for stmt in statements:
            target = (
                stmt.this
                if isinstance(stmt, (exp.Create, exp.Insert, exp.Merge, exp.Update))
                else None
            )
            if isinstance(target, exp.Schema):
                target = target.this
            if isinstance(target, exp.Table):
                made.add(target.name.lower())
            ctes = {c.alias_or_name.lower() for c in stmt.find_all(exp.CTE)}
            read |= {t.name.lower() for t in stmt.find_all(exp.Table) if t.name.lower() not in ctes}
        for name in made:
            creates.setdefault(name, model.name)
        reads[model.name] = read - made
    for reader, tables in reads.items():
        for table in tables:
            if table in creates and creates[table] != reader:
                graph.add_edge(creates[table], reader)
    by_name = {m.name: m for m in models}
    try:
        order = list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        order = sorted(by_name)
    return [by_name[n] for n in order]


def project_edges(
    models: Iterable[SqlModel],
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Iterable[str]] | None = None,
    default_schema: str = DEFAULT_SCHEMA,
) -> list[ColumnEdge]:
    """Edges of many models, each seeing the tables the models before it created."""
    dialect_check(dialect)
    book = schema_book(schema or {}, default_schema)
    edges: list[ColumnEdge] = []
    parsed: dict[str, list[exp.Expr]] = {}
    for model in _order(list(models), dialect, default_schema, parsed):
        book.default_schema = (model.schema or default_schema).lower()
        book.default_database = model.database
        if model.name not in parsed:
            parsed[model.name] = parse_statements(
                model.sql, dialect, model.name
            )  # raises the parse error
        for stmt in parsed[model.name]:
            edges.extend(statement_edges(stmt, model=model.name, book=book, dialect=dialect))
    return edges


def models_from_dir(root: Path) -> list[SqlModel]:
    """Every ``*.sql`` file under ``root`` as a model named by its file stem."""
    if not root.is_dir():
        raise SqlLineageError(
            f"{root} is not a folder", code="not_found", hint="pass a folder of .sql files"
        )
    return [
        SqlModel(path.stem, path.read_text(encoding="utf-8"), file=str(path))
        for path in sorted(root.rglob("*.sql"))
    ]


def models_from_dbt_manifest(path: Path) -> list[SqlModel]:
    """dbt ``manifest.json`` models (compiled SQL; raw SQL when not compiled) as SqlModels
    materialised at ``schema.alias``."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SqlLineageError(
            f"cannot read dbt manifest {path}: {exc}",
            code="bad_manifest",
            hint="run `dbt compile` first",
        ) from exc
    models = []
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") != "model":
            continue
        sql = node.get("compiled_code") or node.get("compiled_sql")
        if not sql:
            continue
        name = str(node.get("alias") or node["name"])
        models.append(
            SqlModel(
                name,
                sql,
                schema=node.get("schema"),
                database=node.get("database"),
                file=str(node.get("original_file_path", "")),
            )
        )
    return models


def dbt_sources_schema(path: Path) -> dict[str, list[str]]:
    """Columns dbt documents for sources and models (``schema.table`` → columns)."""
    manifest = json.loads(path.read_text(encoding="utf-8"))
    schema: dict[str, list[str]] = {}
    for group in ("sources", "nodes"):
        for node in (manifest.get(group) or {}).values():
            columns = list((node.get("columns") or {}).keys())
            if columns and node.get("schema"):
                name = node.get("identifier") or node.get("alias") or node.get("name")
                prefix = f"{node['database']}." if node.get("database") else ""
                schema[f"{prefix}{node['schema']}.{name}"] = columns
    return schema
