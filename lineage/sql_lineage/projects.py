"""SQL projects: models from a folder or a dbt manifest, ordered by their dependencies."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lineage.sql_lineage.edges import DEFAULT_SCHEMA, ColumnEdge, SqlLineageError
from lineage.sql_lineage.ordering import (
    SqlModel,
    dependency_order,
    fewer_collections,
    model_extract,
    model_scan,
)
from lineage.sql_lineage.parallel import WorkerLost, parallel_lineage, usable_workers
from lineage.sql_lineage.statements import SchemaBook, SqlLineage, dialect_check, schema_book

__all__ = ["SqlModel", "project_edges", "project_lineage"]
log = logging.getLogger(__name__)


def project_lineage(
    models: Iterable[SqlModel],
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Iterable[str]] | None = None,
    default_schema: str = DEFAULT_SCHEMA,
    book: SchemaBook | None = None,
    workers: int | None = None,
) -> SqlLineage:
    """Edges of many models, each seeing the tables the models before it created, and the
    statements (file, line, reason) whose lineage is missing; the rest still gives edges.
    A ``book`` given is filled with every table's columns (``schema`` is added to it).

    Models that do not depend on each other are extracted in ``workers`` processes (by
    default the usable CPUs, at most four, once the project has enough models to pay for
    the fork; 1 for one process), with the same edges and issues in the same order."""
    dialect_check(dialect)
    if book is None:
        book = schema_book(schema or {}, default_schema)
    else:
        for relation, columns in schema_book(schema or {}, default_schema).tables.items():
            book.add(relation, columns)
    models = list(models)
    with fewer_collections():
        return _project_lineage(models, book, dialect, default_schema, workers)


def _project_lineage(
    models: list[SqlModel], book: SchemaBook, dialect: str, default_schema: str,
    workers: int | None,
) -> SqlLineage:  # fmt: skip
    count = usable_workers(workers, len(models))
    if count > 1:
        try:
            edges, issues = parallel_lineage(models, book=book, dialect=dialect,
                                             default_schema=default_schema, workers=count)  # fmt: skip
            return SqlLineage(edges, issues)
        except WorkerLost as exc:
            log.warning("%s; extracting the %d models in one process", exc, len(models))
    scans = [model_scan(model, dialect) for model in models]
    edges = []
    issues = [issue for scan in scans for issue in scan.issues]
    for i in dependency_order(models, scans):
        found = model_extract(models[i], scans[i].parsed, book=book, dialect=dialect,
                              default_schema=default_schema)  # fmt: skip
        edges.extend(found.edges)
        issues.extend(found.issues)
    return SqlLineage(edges, issues)


def project_edges(
    models: Iterable[SqlModel],
    *,
    dialect: str = "duckdb",
    schema: Mapping[str, Iterable[str]] | None = None,
    default_schema: str = DEFAULT_SCHEMA,
    workers: int | None = None,
) -> list[ColumnEdge]:
    """Edges of many models (:func:`project_lineage` without its issues)."""
    return project_lineage(models, dialect=dialect, schema=schema,
                           default_schema=default_schema, workers=workers).edges  # fmt: skip


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
