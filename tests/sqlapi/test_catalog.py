"""The catalog answers the exact queries psql 15 and SQLAlchemy 2.1 send (recorded in
data/client_catalog_queries.json from real sessions: psql -E, SQLAlchemy's cursor events)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlglot

from semantic.sqlapi.catalog import Catalog, SessionInfo, rewrite
from semantic.sqlapi.table import sql_table_build
from tests.semantic.conftest import fixtures_manifest

RECORDED = json.loads((Path(__file__).parent / "data" / "client_catalog_queries.json").read_text())
SESSION = SessionInfo(user="ana", database="tally", pid=42)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(sql_table_build(fixtures_manifest()))


def run(catalog: Catalog, sql: str) -> tuple[list[tuple[str, int]], list[tuple[object, ...]]]:
    return catalog.run(
        sqlglot.parse_one(sql, read="postgres"),
        SESSION,
        {"application_name": "psql"},
        timeout_s=30,
        on_start=lambda interrupt: None,
        row_cap=10_000,
    )


@pytest.mark.parametrize(
    "recorded", RECORDED, ids=[f"{i}-{q['client']}" for i, q in enumerate(RECORDED)]
)
def test_recorded_client_query_runs(catalog: Catalog, recorded: dict[str, str]) -> None:
    """Every catalog query a real client sent on connect/reflection answers without error."""
    fields, _rows = run(catalog, recorded["sql"])
    assert fields


def test_dt_lists_only_the_metrics_table(catalog: Catalog) -> None:
    """psql's \\dt query: one row, tally.metrics (helper catalogs are not relations)."""
    sql = next(q["sql"] for q in RECORDED if q["client"] == r"psql \dt")
    _fields, rows = run(catalog, sql)
    assert [(r[0], r[1], r[2]) for r in rows] == [("tally", "metrics", "table")]


def test_column_comments_are_metric_descriptions(catalog: Catalog) -> None:
    _fields, rows = run(
        catalog,
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
        "pg_catalog.col_description(a.attrelid, a.attnum) FROM pg_catalog.pg_attribute a "
        "WHERE a.attrelid = 'tally.metrics'::regclass AND a.attname IN ('revenue', 'signups')",
    )
    assert sorted(rows) == [
        ("revenue", "numeric(38,10)", "Amount of paid invoices, by invoice issue date."),
        ("signups", "bigint", "Users who signed up in the period."),
    ]


def test_session_functions_answer_as_postgres(catalog: Catalog) -> None:
    fields, rows = run(
        catalog, "SELECT version(), current_schema(), current_user, pg_backend_pid()"
    )
    assert [name for name, _oid in fields] == [
        "version", "current_schema", "current_user", "pg_backend_pid"
    ]  # fmt: skip
    assert rows[0][0].startswith("PostgreSQL 15.0 (Tally") and rows[0][1:] == ("tally", "ana", 42)


def test_catalog_cannot_read_files_or_change_settings(catalog: Catalog) -> None:
    """External access is off and locked before any client query."""
    import duckdb

    with pytest.raises(duckdb.Error):
        run(catalog, "SELECT * FROM read_csv('/etc/hostname')")
    tree = sqlglot.parse_one("SELECT 1", read="postgres")
    assert rewrite(tree, SESSION, {}).sql("duckdb") == "SELECT 1"
    with pytest.raises(duckdb.Error):
        catalog._db.execute("SET enable_external_access = true")
