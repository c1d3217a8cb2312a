"""`tally validate --warehouse` on an SCD type II model (issue 16): two rows of one natural key
whose validity windows overlap make every join through the model count a measure row twice,
and the check named nothing; now it names the model, the entity, an example key and the
window the rows share, on DuckDB, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from registry.definitions.issues import Issue
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import build_manifest
from semantic.compiler.warehouse_probes import key_repeats_sql
from semantic.warehouse.config import WarehouseConfig, parse_warehouse_url
from semantic.warehouse.definitions_check import (
    EXAMPLE_OVERLAP,
    HINT_OVERLAP,
    MSG_OVERLAP,
    definitions_check_warehouse,
)
from semantic.warehouse.execute import execute
from tests.conftest import (
    POSTGRES_ADMIN,
    ROOT,
    mariadb_reader_url,
    postgres_reader_url,
    require_service,
)

PROJECT = """
models:
  - name: metricflow_time_spine
    time_spine: {{standard_granularity_column: date_day}}
    columns: [{{name: date_day, granularity: day}}]

semantic_models:
  - name: plan_history
    node_relation: {{schema_name: {schema}, alias: plan_history}}
    primary_entity: customer
    entities:
      - {{name: customer, type: natural, expr: customer_id}}
    dimensions:
      - name: valid_from
        type: time
        expr: started_at
        type_params: {{time_granularity: day, validity_params: {{is_start: true}}}}
      - name: valid_to
        type: time
        expr: ended_at
        type_params: {{time_granularity: day, validity_params: {{is_end: true}}}}
      - {{name: plan, type: categorical}}
  - name: signups
    node_relation: {{schema_name: {schema}, alias: signups}}
    defaults: {{agg_time_dimension: signed_up_at}}
    entities:
      - {{name: signup, type: primary, expr: signup_id}}
      - {{name: customer, type: foreign, expr: customer_id}}
    dimensions:
      - {{name: signed_up_at, type: time, type_params: {{time_granularity: day}}}}
    measures:
      - {{name: signup_count, expr: 1, agg: sum}}

metrics:
  - name: signups
    label: Signups
    type: simple
    type_params: {{measure: signup_count}}
"""
# Customer 1 changes plan on 2024-03-01 (one window ends as the next opens: no overlap).
TABLES = (
    "CREATE TABLE {s}.signups (signup_id INT, customer_id INT, signed_up_at DATE)",
    "INSERT INTO {s}.signups VALUES (1, 1, DATE '2024-01-05'), (2, 2, DATE '2024-02-01')",
    "CREATE TABLE {s}.plan_history (customer_id INT, plan VARCHAR(20), started_at TIMESTAMP, "
    "ended_at TIMESTAMP)",
    "INSERT INTO {s}.plan_history VALUES "
    "(1, 'free', TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-03-01 00:00:00'), "
    "(1, 'pro', TIMESTAMP '2024-03-01 00:00:00', NULL), "
    "(2, 'free', TIMESTAMP '2024-01-01 00:00:00', NULL)",
)
# Customer 2's second plan opens on 2024-02-10 while its first is still open.
OVERLAP = (
    "INSERT INTO {s}.plan_history VALUES "
    "(2, 'pro', TIMESTAMP '2024-02-10 09:30:00', TIMESTAMP '2024-04-01 00:00:00')"
)
ENGINES = ("duckdb", "postgres", "mysql")


@pytest.fixture(params=ENGINES)
def engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[WarehouseConfig, str, object]]:
    """(config as the read-only role, the schema the tables are in, run(sql) as the admin)
    on an empty, uniquely named database of each engine."""
    name = f"i16_scd_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if request.param == "duckdb":
        path = tmp_path / "w.duckdb"

        def run_duckdb(sql: str) -> None:
            con = duckdb.connect(str(path))
            try:
                con.execute(sql)
            finally:
                con.close()

        duckdb.connect(str(path)).close()
        yield parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT), "main", run_duckdb
        return
    if request.param == "postgres":
        require_service("postgres")
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        admin = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"

        def run_postgres(sql: str) -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql)

        try:
            run_postgres("CREATE SCHEMA main")
            url = postgres_reader_url(name, ("main",))
            yield parse_warehouse_url(url, base_dir=ROOT), "main", run_postgres
        finally:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    require_service("mariadb")
    import pymysql

    maria = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    maria.cursor().execute(f"CREATE DATABASE `{name}`")

    def run_mariadb(sql: str) -> None:
        maria.cursor().execute(sql)

    try:
        yield parse_warehouse_url(mariadb_reader_url(name), base_dir=ROOT), name, run_mariadb
    finally:
        maria.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        maria.close()


def _errors(tmp_path: Path, config: WarehouseConfig, schema: str, **kwargs: bool) -> list[Issue]:
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / "plans.yml").write_text(PROJECT.format(schema=schema))
    project = load_project(root)
    assert project.issues.errors == [], [e.cli_lines() for e in project.issues.errors]
    assert definitions_check_warehouse(project, config=config, **kwargs)
    return project.issues.errors


def test_overlapping_validity_windows_are_an_error_naming_key_and_window(
    engine: tuple, tmp_path: Path
) -> None:
    """Consecutive windows (one ends the day the next opens) pass; a window opened while
    another of the same key is still open is refused, at the natural entity's line."""
    config, schema, run = engine
    for sql in TABLES:
        run(sql.format(s=schema))
    assert _errors(tmp_path, config, schema) == []
    run(OVERLAP.format(s=schema))
    errors = _errors(tmp_path, config, schema)
    assert [(e.code, e.line, e.object) for e in errors] == [
        ("warehouse_key_not_unique", 12, "plan_history")
    ]
    table = f"{schema}.plan_history"
    example = EXAMPLE_OVERLAP.format(key="2", rows=2, start="2024-02-10", end="2024-04-01")
    assert errors[0].message == MSG_OVERLAP.format(
        element="entity 'customer'", model="plan_history", start="valid_from", end="valid_to",
        table=table, rows=2, example=example,
    )  # fmt: skip
    assert errors[0].hint == HINT_OVERLAP.format(start="started_at", end="ended_at")


def test_an_overlap_with_an_open_window_and_no_data_shown(engine: tuple, tmp_path: Path) -> None:
    """Two open rows of one key overlap from the later start on, with no end; the proposal
    check (no warehouse text) names neither the key nor its dates."""
    config, schema, run = engine
    for sql in TABLES:
        run(sql.format(s=schema))
    run(
        f"INSERT INTO {schema}.plan_history VALUES "
        "(1, 'team', TIMESTAMP '2024-05-01 00:00:00', NULL)"
    )
    shown = _errors(tmp_path, config, schema)
    example = EXAMPLE_OVERLAP.format(key="1", rows=2, start="2024-05-01", end="now (open)")
    assert [e.code for e in shown] == ["warehouse_key_not_unique"]
    assert shown[0].message.endswith(
        f"at the same time{example}; a join through its validity window would count each "
        "joined row once per overlapping row"
    )
    hidden = _errors(tmp_path, config, schema, show_warehouse_text=False)
    assert hidden[0].message == MSG_OVERLAP.format(
        element="entity 'customer'", model="plan_history", start="valid_from", end="valid_to",
        table=f"{schema}.plan_history", rows=2, example="",
    )  # fmt: skip
    assert "2024-05-01" not in hidden[0].message


def test_the_query_time_guard_counts_the_same_overlap(engine: tuple, tmp_path: Path) -> None:
    """The key guard's probe (semantic.key_guard, before every metric query) asks the same
    question on each engine: (0, NULL) while windows follow each other, (1 key, 2 rows)
    once two windows of customer 2 overlap."""
    config, schema, run = engine
    for sql in TABLES:
        run(sql.format(s=schema))
    _errors(tmp_path, config, schema)  # writes the project
    project = load_project(tmp_path / "project")
    rows = [(kind, name, obj.spec, "0.0") for (kind, name), obj in project.objects.items()]
    model = build_manifest(rows).semantic_models["plan_history"]
    probe = key_repeats_sql(model, "customer", config.dialect)
    assert execute(config, probe).rows == ((0, None),)
    run(OVERLAP.format(s=schema))
    assert execute(config, probe).rows == ((1, 2),)
