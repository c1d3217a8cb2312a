"""Extraction in several processes gives exactly what one process gives (issue #21)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.sql_lineage import synthetic_manifest
from lineage.real_projects import DATA, excerpts_path, label_files, load_excerpts, load_labels
from lineage.sql_lineage import (
    SchemaBook,
    SqlLineage,
    SqlModel,
    dbt_schema,
    models_from_dbt_manifest,
    project_lineage,
)
from lineage.sql_lineage.book import schema_book
from lineage.sql_lineage.ordering import dependency_order, levels, model_scan
from lineage.sql_lineage.parallel import MIN_PARALLEL_MODELS, usable_workers


def _both(models: list[SqlModel], dialect: str, schema: dict[str, list[str]]) -> SqlLineage:
    """The serial and the two-worker result, asserted equal (edges, their order, issues)."""
    serial = project_lineage(models, dialect=dialect, schema=schema, workers=1)
    parallel = project_lineage(models, dialect=dialect, schema=schema, workers=2)
    assert parallel.edges == serial.edges
    assert parallel.issues == serial.issues
    return serial


def _layered_project(width: int) -> list[SqlModel]:
    """Three levels without stated dependencies: staging models over raw tables, middle
    models reading two staging models through CTEs named like them and ``SELECT *``, and
    marts reading a middle model through ``*`` too, given in reverse so that order matters."""
    models = []
    for i in range(width):
        models.append(
            SqlModel(f"stg_{i}", f"SELECT id, amount_{i} AS amount, kind FROM raw.src_{i}")
        )
    for i in range(width):
        a, b = f"stg_{i}", f"stg_{(i + 1) % width}"
        models.append(SqlModel(f"mid_{i}", f"WITH {a} AS (SELECT * FROM {a}), {b} AS (SELECT * "
                               f"FROM {b} WHERE kind = 'x')\nSELECT {a}.*, {b}.amount AS other "
                               f"FROM {a} JOIN {b} ON {a}.id = {b}.id"))  # fmt: skip
    for i in range(width):
        models.append(SqlModel(f"mart_{i}", f"WITH base AS (SELECT * FROM mid_{i})\n"
                               "SELECT kind, SUM(amount + other) AS total FROM base GROUP BY 1"))  # fmt: skip
    return models[::-1]


def _raw_schema(width: int) -> dict[str, list[str]]:
    return {f"raw.src_{i}": ["id", f"amount_{i}", "kind"] for i in range(width)}


@pytest.mark.parametrize("path", label_files(DATA), ids=lambda p: p.stem)
def test_real_projects_give_the_same_edges_in_two_workers(path: Path) -> None:
    """The labelled public projects' models, extracted as one project, give the same edges in
    the same order with two workers as serially."""
    models, schema = [], {}
    for excerpt in load_excerpts(excerpts_path(path)):
        models.append(SqlModel(excerpt.model, excerpt.sql, schema=excerpt.schema,
                               database=excerpt.database, table=excerpt.table))  # fmt: skip
        schema.update(excerpt.reads)
    found = _both(models, load_labels(path).dialect, schema)
    assert len(found.edges) > 100


def test_layered_project_with_ctes_named_like_models_matches_serial() -> None:
    """A model's output schema is known before any model reading it is extracted: the
    middle models' ``stg.*`` and the marts' ``*`` expand to named columns, as serially."""
    width = 12
    found = _both(_layered_project(width), "duckdb", _raw_schema(width))
    into_mart = {(e.source_table[2], e.source_column) for e in found.edges
                 if e.target_table[2] == "mart_3" and e.target_column == "total"
                 and e.subtype == "direct"}  # fmt: skip
    assert into_mart == {("mid_3", "amount"), ("mid_3", "other")}
    assert {e.target_column for e in found.edges if e.target_table[2] == "mid_3"} == {
        "id",
        "amount",
        "kind",
        "other",
    }
    assert not any(e.source_column == "*" or e.target_column == "*" for e in found.edges)


def test_layered_project_is_cut_into_its_three_levels() -> None:
    """Models that read another's table go to a later level; CTE names shadowing model names
    only add caution, never a missed dependency."""
    width = 6
    models = _layered_project(width)
    scans = [model_scan(m, "duckdb") for m in models]
    book = schema_book(_raw_schema(width), "main")
    cut = levels(dependency_order(models, scans), scans, book)
    named = [sorted(models[i].name.split("_")[0] for i in level) for level in cut]
    assert named == [["stg"] * width, ["mid"] * width, ["mart"] * width]


def test_dbt_manifest_project_matches_serial_and_fills_the_book_alike(tmp_path: Path) -> None:
    """The synthetic dbt project (stated dependencies, CTEs named like the models they read)
    gives the same edges, and leaves the caller's book as serial extraction does."""
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(synthetic_manifest(60)), encoding="utf-8")
    models = models_from_dbt_manifest(manifest)
    books = [SchemaBook(), SchemaBook()]
    serial, parallel = (
        project_lineage(models, dialect="duckdb", schema=dbt_schema(manifest), book=book,
                        workers=workers)
        for book, workers in zip(books, (1, 2), strict=True)
    )  # fmt: skip
    assert parallel.edges == serial.edges and len(serial.edges) > 500
    assert list(books[1].tables.items()) == list(books[0].tables.items())
    assert (books[1].default_schema, books[1].default_database) == (
        books[0].default_schema,
        books[0].default_database,
    )


def test_a_bad_statement_in_a_child_is_reported_and_the_rest_gives_lineage() -> None:
    """A statement that does not parse, in a model the forked worker owns (odd positions), is
    an issue naming its file and line; the model's other statements and the other models
    still give edges, as serially."""
    models = _layered_project(4)
    models[1] = SqlModel(models[1].name, "CREATE TABLE t1 AS SELECT a FROM raw.x;\n"
                         "SELECT (1 FROM;\nSELECT b AS c FROM raw.y", file="models/bad.sql")  # fmt: skip
    found = _both(models, "duckdb", _raw_schema(4))
    assert [(i.file, i.line) for i in found.issues] == [("models/bad.sql", 2)]
    assert "not parsed" in found.issues[0].reason
    targets = {(e.target_table[2], e.target_column) for e in found.edges}
    assert {("t1", "a"), (models[1].name, "c"), ("mart_0", "total")} <= targets


def test_worker_count_is_explicit_or_follows_the_cpus_for_large_projects() -> None:
    """An explicit count is used as given; by default a small project stays in one process
    and a large one uses the usable CPUs, at most four."""
    assert usable_workers(3, 1) == 3
    assert usable_workers(0, 1000) == 1
    assert usable_workers(None, MIN_PARALLEL_MODELS - 1) == 1
    assert 1 <= usable_workers(None, MIN_PARALLEL_MODELS) <= 4


@pytest.mark.django_db
def test_import_inside_a_transaction_forks_workers_and_keeps_the_connection() -> None:
    """``lineage_sql_import`` (one transaction, the connection open) of a project large enough
    for the default worker processes stores every edge, and the connection still serves the
    transaction afterwards: the children never touched it."""
    from django.db import connection

    from lineage.models import LineageEdge
    from lineage.services import lineage_sql_import

    width = MIN_PARALLEL_MODELS // 3 + 1
    models = _layered_project(width)
    assert usable_workers(None, len(models)) >= 1
    expected = project_lineage(models, dialect="duckdb", schema=_raw_schema(width), workers=1)
    result = lineage_sql_import(models=models, dialect="duckdb", schema=_raw_schema(width))
    assert result.edges == len(expected.edges) and result.issues == ()
    assert LineageEdge.objects.filter(src="sql:mart_0").exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
