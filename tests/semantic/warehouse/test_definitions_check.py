"""Definitions checked against the warehouse, as `mf validate-configs` does (issue 16): a
misspelled column passed `tally validate` and failed only at query time."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb
import psycopg
import pytest

from registry.definitions.issues import Issue
from semantic.compiler.definition_checks import load_project
from semantic.warehouse.config import WarehouseConfig, parse_warehouse_url
from semantic.warehouse.definitions_check import definitions_check_warehouse
from tests.conftest import POSTGRES_ADMIN, ROOT, postgres_reader_url, require_service, run_tally

DBT_ROOT = ROOT / "tests" / "registry" / "data" / "dbt_root"
TABLES = (
    "CREATE TABLE {s}orders AS SELECT 1 AS order_id, 2 AS customer_id, "
    "DATE '2024-01-01' AS ordered_at, 10.5 AS order_total, TRUE AS is_food_order",
    "CREATE TABLE {s}metricflow_time_spine AS SELECT DATE '2024-01-01' AS date_day",
)


def _duckdb(path: Path) -> WarehouseConfig:
    con = duckdb.connect(str(path))
    for sql in TABLES:
        con.execute(sql.format(s=""))
    con.close()
    return WarehouseConfig(engine="duckdb", dialect="duckdb", path=str(path))


def _broken(tmp_path: Path) -> Path:
    """The dbt_root fixture with a misspelled entity column, a time dimension over text and
    a sum over text."""
    root = tmp_path / "broken"
    shutil.copytree(DBT_ROOT, root)
    models = root / "transform" / "marts" / "orders.yml"
    text = models.read_text()
    text = text.replace("expr: order_id}", "expr: order_idd}")
    text = text.replace(
        "      - {name: is_food_order, type: categorical}\n",
        "      - {name: is_food_order, type: categorical}\n"
        '      - {name: shipped_at, type: time, expr: "cast(customer_id as varchar)", '
        "type_params: {time_granularity: day}}\n",
    )
    text = text.replace(
        "      - {name: order_count, expr: 1, agg: sum}\n",
        "      - {name: order_count, expr: 1, agg: sum}\n"
        '      - {name: text_sum, agg: sum, expr: "cast(order_id as varchar)"}\n',
    )
    models.write_text(text)
    return root


def _errors(root: Path, config: WarehouseConfig) -> list[Issue]:
    project = load_project(root)
    assert project.issues.errors == [], [e.cli_lines() for e in project.issues.errors]
    assert definitions_check_warehouse(project, config=config)
    return project.issues.errors


def test_matching_definitions_pass(tmp_path: Path) -> None:
    assert _errors(DBT_ROOT, _duckdb(tmp_path / "w.duckdb")) == []


def test_a_misspelled_column_a_bad_time_type_and_a_sum_over_text_are_errors(
    tmp_path: Path,
) -> None:
    errors = _errors(_broken(tmp_path), _duckdb(tmp_path / "w.duckdb"))
    assert [(e.code, e.line) for e in errors] == [
        ("warehouse_column", 16),
        ("warehouse_type", 21),
        ("warehouse_type", 25),
    ]
    column, time_dim, text_sum = errors
    assert column.message == (
        "entity 'order' of semantic model 'orders' reads column 'order_idd', which "
        "main.orders does not have"
    )
    assert column.hint is not None and "'order_id'" in column.hint
    assert time_dim.message.startswith(
        "dimension 'shipped_at' of semantic model 'orders' (expr: cast(customer_id as varchar)) "
        "does not work on main.orders: "
    )
    assert time_dim.hint == "a time dimension's expression must be a date or a timestamp"
    assert text_sum.message.startswith("measure 'text_sum' of semantic model 'orders'")


def test_a_missing_table_is_one_error_at_the_semantic_model(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    duckdb.connect(str(path)).close()
    config = WarehouseConfig(engine="duckdb", dialect="duckdb", path=str(path))
    errors = _errors(DBT_ROOT, config)
    assert [(e.code, e.object) for e in errors] == [("warehouse_table", "orders")]
    assert errors[0].message.startswith(
        "semantic model 'orders' reads main.orders, which the warehouse cannot read"
    )


def test_an_unreachable_warehouse_is_an_error_not_a_pass(tmp_path: Path) -> None:
    config = WarehouseConfig(engine="duckdb", dialect="duckdb", path=str(tmp_path / "no.duckdb"))
    project = load_project(DBT_ROOT)
    assert not definitions_check_warehouse(project, config=config)
    assert [e.code for e in project.issues.errors] == ["warehouse_unreachable"]


def test_validate_warehouse_flag_exits_non_zero_with_file_and_line(tmp_path: Path) -> None:
    _duckdb(tmp_path / "w.duckdb")
    result = run_tally(
        "validate",
        str(_broken(tmp_path)),
        "--warehouse",
        env={"TALLY_DEMO": "1", "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'w.duckdb'}"},
    )
    assert result.returncode == 1
    assert "broken/transform/marts/orders.yml:16: error[warehouse_column]" in result.stderr


def test_the_same_checks_run_on_postgresql(tmp_path: Path) -> None:
    require_service("postgres")
    name = f"i16_dbt_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        admin = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA main")
            for sql in TABLES:
                conn.execute(sql.format(s="main."))
        config = parse_warehouse_url(postgres_reader_url(name, ("main",)), base_dir=ROOT)
        assert _errors(DBT_ROOT, config) == []
        errors = _errors(_broken(tmp_path), config)
        assert [(e.code, e.line) for e in errors] == [
            ("warehouse_column", 16),
            ("warehouse_type", 21),
            ("warehouse_type", 25),
        ]
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_primary_key_the_data_repeats_is_an_error(tmp_path: Path) -> None:
    """Joins trust a declared primary key: a table holding two rows for one order would
    count each joined measure twice, silently. The check names the entity and the table."""
    config = _duckdb(tmp_path / "w.duckdb")
    assert _errors(DBT_ROOT, config) == []
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("INSERT INTO orders SELECT * FROM orders")
    con.close()
    errors = _errors(DBT_ROOT, config)
    assert [(e.code, e.line) for e in errors] == [("warehouse_key_not_unique", 16)]
    assert errors[0].message == (
        "entity 'order' of semantic model 'orders' is declared primary, but main.orders holds "
        "several rows for one key; a join on it would count each joined row once per duplicate"
    )


def test_the_probes_share_one_open_of_the_file_and_close_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening a DuckDB file reads its catalog (~25 ms of CPU): the check ran a hundred
    probes on fixtures/, each opening the file. They run on cursors of one open now (the
    ping has its own), and the check closes it at the end: this process can then open
    the file with another configuration, which DuckDB refuses while an instance is open."""
    config = _duckdb(tmp_path / "w.duckdb")
    opened: list[str] = []
    connect = duckdb.connect

    def counted(database: str, *args: Any, **kwargs: Any) -> Any:
        opened.append(database)
        return connect(database, *args, **kwargs)

    monkeypatch.setattr(duckdb, "connect", counted)
    errors = _errors(_broken(tmp_path), config)
    assert len(errors) == 3  # several probes ran, three failed
    assert opened == [str(tmp_path / "w.duckdb")] * 2
    monkeypatch.undo()
    duckdb.connect(str(tmp_path / "w.duckdb"), config={"threads": "1"}).close()
