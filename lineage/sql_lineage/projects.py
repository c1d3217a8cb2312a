"""SQL projects: models from a folder or a dbt manifest, ordered by their dependencies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
from sqlglot import exp

from lineage.sql_lineage.edges import DEFAULT_SCHEMA, ColumnEdge, SqlLineageError
from lineage.sql_lineage.script import ParsedStatement, StatementIssue, parse_script
from lineage.sql_lineage.statements import (
    SchemaBook,
    SqlLineage,
    dialect_check,
    schema_book,
    statements_edges,
)


@dataclass(frozen=True)
class SqlModel:
    name: str
    sql: str
    schema: str | None = None  # where a bare SELECT model is materialised
    database: str | None = None
    file: str = ""
    # Names of the models this one reads, when the project states them (dbt's ref()s); None
    # means unknown, and the order is then guessed from the tables the SQL reads.
    depends_on: tuple[str, ...] | None = None
    table: str | None = None  # the table a bare SELECT writes; the model's name by default


def _order(
    models: list[SqlModel],
    dialect: str,
    default_schema: str,
    parsed: dict[str, list[ParsedStatement]],
    issues: list[StatementIssue],
) -> list[SqlModel]:
    """Models in dependency order: a model that reads another's table comes after it.

    Stated dependencies (dbt's ``depends_on``) are used as they are; only a model without
    them has its reads guessed from the tables its SQL names, leaving out CTE references.
    Fills ``parsed`` (model → statements) so that each model is parsed once."""
    graph: nx.DiGraph[str] = nx.DiGraph()
    creates: dict[str, str] = {}
    reads: dict[str, set[str]] = {}
    for model in models:
        graph.add_node(model.name)
        found, model_issues = parse_script(model.sql, dialect, file=model.file or model.name)
        issues.extend(model_issues)
        parsed[model.name] = found
        statements = [p.statement for p in found]
        made = {model.name.lower(), (model.table or model.name).lower()}
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
            if model.depends_on is None:
                read |= {t.name.lower() for t in stmt.find_all(exp.Table) if not _is_cte_ref(t)}
        for name in made:
            creates.setdefault(name, model.name)
        reads[model.name] = read - made
    names = {m.name for m in models}
    for model in models:
        if model.depends_on is not None:
            for upstream in model.depends_on:
                if upstream in names and upstream != model.name:
                    graph.add_edge(upstream, model.name)
            continue
        for table in reads.get(model.name, ()):
            if table in creates and creates[table] != model.name:
                graph.add_edge(creates[table], model.name)
    by_name = {m.name: m for m in models}
    try:
        order = list(nx.lexicographical_topological_sort(graph))
    except nx.NetworkXUnfeasible:
        order = sorted(by_name)
    return [by_name[n] for n in order]


def _is_cte_ref(table: exp.Table) -> bool:
    """Whether ``table`` names a CTE visible where it stands rather than a real table.

    A qualified name (``db.t``) is always a table. An unqualified one is a CTE when a WITH
    around it defines that name before it: inside a CTE's own body only the CTEs listed
    earlier are visible (all of them, itself too, under WITH RECURSIVE), so
    ``order_items AS (SELECT * FROM order_items)`` reads the real table.
    """
    if table.args.get("db") is not None or table.args.get("catalog") is not None:
        return False
    name = table.name.lower()
    child: exp.Expr = table
    cte_above: exp.Expr | None = None  # the nearest CTE whose body holds the table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.CTE):
            cte_above = parent
        with_ = parent.args.get("with_")
        if isinstance(with_, exp.With):
            recursive = bool(with_.args.get("recursive"))
            in_body = child is with_  # the table sits inside one of this WITH's CTEs
            for cte in with_.expressions:
                if in_body and cte is cte_above and not recursive:
                    break  # only the CTEs before this one are visible in its body
                if cte.alias_or_name.lower() == name:
                    return True
                if in_body and cte is cte_above:
                    break
        child, parent = parent, parent.parent
    return False


def project_lineage(
    models: Iterable[SqlModel],
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Iterable[str]] | None = None,
    default_schema: str = DEFAULT_SCHEMA,
    book: SchemaBook | None = None,
) -> SqlLineage:
    """Edges of many models, each seeing the tables the models before it created, and the
    statements (file, line, reason) whose lineage is missing; the rest still gives edges.
    A ``book`` given is filled with every table's columns (``schema`` is added to it)."""
    dialect_check(dialect)
    if book is None:
        book = schema_book(schema or {}, default_schema)
    else:
        for relation, columns in schema_book(schema or {}, default_schema).tables.items():
            book.add(relation, columns)
    edges: list[ColumnEdge] = []
    issues: list[StatementIssue] = []
    parsed: dict[str, list[ParsedStatement]] = {}
    for model in _order(list(models), dialect, default_schema, parsed, issues):
        book.default_schema = (model.schema or default_schema).lower()
        book.default_database = model.database
        edges.extend(
            statements_edges(parsed.get(model.name, ()), issues, model=model.name, book=book,
                              dialect=dialect, file=model.file or model.name, table=model.table)
        )  # fmt: skip
    return SqlLineage(edges, issues)


def project_edges(
    models: Iterable[SqlModel],
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Iterable[str]] | None = None,
    default_schema: str = DEFAULT_SCHEMA,
) -> list[ColumnEdge]:
    """Edges of many models (:func:`project_lineage` without its issues)."""
    return project_lineage(models, dialect=dialect, schema=schema,
                           default_schema=default_schema).edges  # fmt: skip


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
    materialised at ``database.schema.alias``, ordered by the manifest's ``depends_on``.

    A model is named by its alias; when two models share an alias (in different schemas)
    both are named ``schema.alias`` so neither replaces the other's stored lineage.
    """
    manifest = _read_manifest(path)
    nodes = {
        uid: node
        for uid, node in (manifest.get("nodes") or {}).items()
        if node.get("resource_type") == "model"
    }
    aliases: dict[str, int] = {}
    for node in nodes.values():
        alias = str(node.get("alias") or node["name"]).lower()
        aliases[alias] = aliases.get(alias, 0) + 1
    names: dict[str, str] = {}
    for uid, node in nodes.items():
        alias = str(node.get("alias") or node["name"])
        names[uid] = f"{node.get('schema')}.{alias}" if aliases[alias.lower()] > 1 else alias
    models = []
    for uid, node in nodes.items():
        sql = node.get("compiled_code") or node.get("compiled_sql")
        if not sql:
            continue
        # ref()s to other models order the project; source()s are tables already there.
        depends = (node.get("depends_on") or {}).get("nodes") or []
        models.append(
            SqlModel(
                names[uid],
                sql,
                schema=node.get("schema"),
                database=node.get("database"),
                file=str(node.get("original_file_path", "")),
                depends_on=tuple(names[d] for d in depends if d in names),
                table=str(node.get("alias") or node["name"]),
            )
        )
    return models


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SqlLineageError(
            f"cannot read dbt manifest {path}: {exc}",
            code="bad_manifest",
            hint="run `dbt compile` first",
        ) from exc
    if not isinstance(data, dict):
        raise SqlLineageError(
            f"{path} is not a dbt manifest (a JSON object with nodes)",
            code="bad_manifest",
            hint="pass target/manifest.json after `dbt compile`",
        )
    return data


def dbt_sources_schema(path: Path) -> dict[str, list[str]]:
    """Columns dbt documents for sources and models (``schema.table`` → columns)."""
    manifest = _read_manifest(path)
    schema: dict[str, list[str]] = {}
    for group in ("sources", "nodes"):
        for node in (manifest.get(group) or {}).values():
            columns = list((node.get("columns") or {}).keys())
            if columns and node.get("schema"):
                name = node.get("identifier") or node.get("alias") or node.get("name")
                prefix = f"{node['database']}." if node.get("database") else ""
                schema[f"{prefix}{node['schema']}.{name}"] = columns
    return schema


def dbt_catalog_schema(path: Path) -> dict[str, list[str]]:
    """Columns of every relation in a dbt ``catalog.json`` (``dbt docs generate``), in their
    warehouse order: the real columns, so ``SELECT *`` over a source expands even where the
    project documents none. ``database.schema.table`` → columns.

    Raises:
        SqlLineageError: code ``bad_catalog`` when the file is not a dbt catalog.
    """
    try:
        catalog = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SqlLineageError(
            f"cannot read dbt catalog {path}: {exc}",
            code="bad_catalog",
            hint="run `dbt docs generate`, or leave catalog.json out",
        ) from exc
    if not isinstance(catalog, dict) or not isinstance(catalog.get("nodes"), dict):
        raise SqlLineageError(
            f"{path} is not a dbt catalog (a JSON object with nodes)",
            code="bad_catalog",
            hint="pass target/catalog.json after `dbt docs generate`",
        )
    schema: dict[str, list[str]] = {}
    for group in ("sources", "nodes"):
        for entry in (catalog.get(group) or {}).values():
            meta = entry.get("metadata") or {}
            columns = sorted(
                (entry.get("columns") or {}).values(), key=lambda c: int(c.get("index") or 0)
            )
            if not meta.get("schema") or not meta.get("name") or not columns:
                continue
            prefix = f"{meta['database']}." if meta.get("database") else ""
            schema[f"{prefix}{meta['schema']}.{meta['name']}"] = [
                str(c.get("name")) for c in columns
            ]
    return schema


def dbt_schema(manifest: Path, catalog: Path | None = None) -> dict[str, list[str]]:
    """What a dbt project tells of its tables' columns: documented ones from the manifest,
    replaced by the real ones of ``catalog.json`` where it lists the table. The catalog is
    looked for beside the manifest when not given."""
    schema = dbt_sources_schema(manifest)
    if catalog is None and (manifest.parent / "catalog.json").is_file():
        catalog = manifest.parent / "catalog.json"
    if catalog is not None:
        known = {name.lower(): name for name in schema}
        for name, columns in dbt_catalog_schema(catalog).items():
            schema.pop(known.get(name.lower(), name), None)
            schema[name] = columns
    return schema
