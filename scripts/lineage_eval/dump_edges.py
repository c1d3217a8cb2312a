"""Every edge and issue of the SQL lineage benchmarks' inputs, one line each, to show that a
change to the extraction (a speed-up, the parallel path) leaves its output byte-identical.

Usage::

    python -m scripts.lineage_eval.dump_edges OUT_DIR [--workers N]

Writes ``bench.txt`` (the 200 bench models), ``real_projects.txt`` (every excerpt of the
labelled public projects, model by model) and ``manifest.txt`` (the 1,000-model synthetic
dbt project); compare two runs with ``cmp``/``diff``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bench.lineage import SQL_MODEL
from bench.sql_lineage import synthetic_manifest
from lineage.real_projects import (
    DATA,
    excerpt_edges,
    excerpts_path,
    label_files,
    load_excerpts,
    load_labels,
)
from lineage.sql_cases import load_cases
from lineage.sql_lineage import (
    ColumnEdge,
    SqlLineage,
    SqlModel,
    dbt_schema,
    models_from_dbt_manifest,
    project_lineage,
    sql_lineage,
)


def _lines(edges: Iterable[ColumnEdge]) -> list[str]:
    return [
        "\t".join(map(str, (e.source_table, e.source_column, e.target_table, e.target_column,
                            e.subtype, e.transformation, e.model, e.expr)))
        for e in edges
    ]  # fmt: skip


def _found_lines(found: SqlLineage) -> list[str]:
    return _lines(found.edges) + [f"ISSUE\t{i}" for i in found.issues]


def real_project_models(path: Path) -> tuple[list[SqlModel], dict[str, list[str]]]:
    """A labelled project's excerpts as one project, and the columns they read."""
    models: list[SqlModel] = []
    schema: dict[str, list[str]] = {}
    for excerpt in load_excerpts(excerpts_path(path)):
        models.append(SqlModel(excerpt.model, excerpt.sql, schema=excerpt.schema,
                               database=excerpt.database, table=excerpt.table))  # fmt: skip
        schema.update(excerpt.reads)
    return models, schema


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", type=int, default=None, help="default: automatic")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    workers = {"workers": args.workers}

    models = [SqlModel(f"model_{i}", SQL_MODEL.format(i=i)) for i in range(200)]
    schema = {"raw.customers": ["id", "region", "segment", "created_at", "deleted_at"]}
    found = project_lineage(models, dialect="duckdb", schema=schema, **workers)
    (args.out / "bench.txt").write_text("\n".join(_found_lines(found)) + "\n")

    lines: list[str] = []
    for path in label_files(DATA):
        dialect = load_labels(path).dialect
        for excerpt in load_excerpts(excerpts_path(path)):
            lines.append(f"MODEL\t{path.stem}\t{excerpt.model}")
            lines += _lines(excerpt_edges(excerpt, dialect))
    (args.out / "real_projects.txt").write_text("\n".join(lines) + "\n")
    lines = []
    for path in label_files(DATA):
        models, schema = real_project_models(path)
        found = project_lineage(models, dialect=load_labels(path).dialect, schema=schema, **workers)
        lines += _found_lines(found)
    (args.out / "real_projects_project.txt").write_text("\n".join(lines) + "\n")

    lines = []
    for case in load_cases():
        found = sql_lineage(case.sql, dialect=case.dialect, model="m", schema=case.schema)
        lines += [f"CASE\t{case.id}", *_found_lines(found)]
    (args.out / "sql_cases.txt").write_text("\n".join(lines) + "\n")

    manifest = Path(tempfile.mkdtemp()) / "manifest.json"
    manifest.write_text(json.dumps(synthetic_manifest(1000)), encoding="utf-8")
    found = project_lineage(models_from_dbt_manifest(manifest), dialect="duckdb",
                            schema=dbt_schema(manifest), **workers)  # fmt: skip
    (args.out / "manifest.txt").write_text("\n".join(_found_lines(found)) + "\n")


if __name__ == "__main__":
    main()
