"""A dbt project root's ref() reads the table dbt builds (issue 16): the profile's target
schema, a custom schema as dbt's default generate_schema_name places it, an alias; found as
dbt finds profiles.yml, and said clearly when it is not found or cannot be rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from registry.definitions.dbt_placement import placement_fingerprint
from registry.definitions.export import ExportItem, export_files
from registry.definitions.project import (
    PROJECT,
    PROJECT_NAME,
    SEMANTIC_MODEL,
    Project,
    resolve_relation,
)
from semantic.compiler.definition_checks import load_project
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.definitions_check import definitions_check_warehouse
from tests.conftest import run_tally
from tests.registry.defs import write

MODEL = """\
  - name: {name}
    model: ref('{name}')
    defaults: {{agg_time_dimension: created_on}}
    entities: [{{name: {name}_id, type: primary, expr: id}}]
    dimensions: [{{name: created_on, expr: day, type: time, type_params: {{time_granularity: day}}}}]
    measures: [{{name: {name}_count, agg: count, expr: id, create_metric: true}}]
"""
PROFILES = """\
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: {path}
      password: hunter2-secret
      schema: "{{{{ env_var('TALLY_TEST_DBT_SCHEMA', 'analytics') }}}}"
    prod:
      type: duckdb
      path: {path}
      schema: prod
"""


@pytest.fixture(autouse=True)
def _no_outside_profiles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The developer's own ~/.dbt and DBT_* settings must not decide these tests.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("DBT_PROFILES_DIR", "DBT_TARGET", "TALLY_TEST_DBT_SCHEMA"):
        monkeypatch.delenv(name, raising=False)


def _project(tmp_path: Path, *, profiles: bool = True, extra: dict[str, str] | None = None) -> Path:
    root = tmp_path / "shop"
    files: dict[str, str | bytes] = {
        "dbt_project.yml": """\
            name: shop
            profile: shop
            models:
              shop:
                finance:
                  +schema: finance
                  +materialized: table
            """,
        "models/orders.sql": "select 1 as id, current_date as day",
        "models/finance/payments.sql": "select 1 as id, current_date as day",
        "models/customers.sql": "{{ config(alias='dim_customers') }}\nselect 1 as id",
        "models/refunds.sql": "select 1 as id",
        "models/time_spine.sql": "select current_date as date_day",
        "models/properties.yml": """\
            models:
              - name: refunds
                config: {schema: ops}
              - name: time_spine
                time_spine: {standard_granularity_column: date_day}
                columns: [{name: date_day, granularity: day}]
            """,
        "models/semantic.yml": "semantic_models:\n"
        + "".join(MODEL.format(name=n) for n in ("orders", "payments", "customers", "refunds")),
        **(extra or {}),
    }
    if profiles:
        files["profiles.yml"] = PROFILES.format(path=tmp_path / "wh.duckdb")
    return write(root, files)


def _spec(project: Project, kind: str, name: str) -> dict[str, Any]:
    obj = project.get(kind, name)
    assert obj is not None
    return obj.spec


def _tables(project_root: Path) -> dict[str, str]:
    project = load_project(project_root)
    assert project.issues.errors == [], [e.cli_lines() for e in project.issues.errors]
    models = project.of_kind(SEMANTIC_MODEL)
    return {m.name: resolve_relation(m, []).qualified for m in models}


def test_ref_reads_the_schema_dbt_builds_into(tmp_path: Path) -> None:
    """Target schema (env_var default rendered), +schema by folder, config(alias=) in SQL,
    config: {schema} in properties: as dbt's default macros place them."""
    root = _project(tmp_path)
    assert _tables(root) == {
        "customers": "analytics.dim_customers",
        "orders": "analytics.orders",
        "payments": "analytics_finance.payments",
        "refunds": "analytics_ops.refunds",
    }
    project = load_project(root)
    spec = _spec(project, SEMANTIC_MODEL, "payments")
    spine = _spec(project, PROJECT, PROJECT_NAME)["time_spines"][0]["node_relation"]
    assert (spine["schema_name"], spine["alias"]) == ("analytics", "time_spine")
    # The ref stays as written; where dbt builds it is kept beside it for later queries.
    assert spec["model"] == "ref('payments')"
    assert spec["node_relation"]["schema_name"] == "analytics_finance"


def test_target_and_profiles_dir_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    monkeypatch.setenv("TALLY_TEST_DBT_SCHEMA", "ci")
    assert _tables(root)["payments"] == "ci_finance.payments"
    monkeypatch.setenv("DBT_TARGET", "prod")
    assert _tables(root)["orders"] == "prod.orders"
    # DBT_PROFILES_DIR is the only place looked at when set, as in dbt.
    elsewhere = write(tmp_path / "elsewhere", {"profiles.yml": "shop:\n  target: x\n  outputs:\n"
                      "    x: {type: duckdb, path: /x.duckdb, schema: other}\n"})  # fmt: skip
    monkeypatch.setenv("DBT_PROFILES_DIR", str(elsewhere))
    monkeypatch.delenv("DBT_TARGET")
    assert _tables(root)["orders"] == "other.orders"


def test_without_a_profile_ref_keeps_the_default_schema(tmp_path: Path) -> None:
    root = _project(tmp_path, profiles=False)
    tables = _tables(root)
    assert tables["orders"] == "main.orders" and tables["customers"] == "main.customers"
    assert "node_relation" not in _spec(load_project(root), SEMANTIC_MODEL, "orders")


def test_other_jinja_is_an_error_at_its_line_and_secrets_are_never_shown(tmp_path: Path) -> None:
    root = _project(tmp_path)
    profiles = root / "profiles.yml"
    text = profiles.read_text().replace(
        "schema: \"{{ env_var('TALLY_TEST_DBT_SCHEMA', 'analytics') }}\"",
        'schema: "{{ target.name }}_analytics"',
    )
    profiles.write_text(text)
    issues = load_project(root).issues
    assert [(i.code, i.line) for i in issues.errors] == [("dbt_jinja", 8)]
    assert issues.errors[0].file == str(profiles)
    assert "semantic_manifest.json" in (issues.errors[0].hint or "")
    shown = " ".join(line for i in issues.issues for line in i.cli_lines())
    assert "hunter2" not in shown and "target.name" not in shown


def test_an_unset_env_var_without_default_is_an_error(tmp_path: Path) -> None:
    root = _project(tmp_path)
    profiles = root / "profiles.yml"
    profiles.write_text(profiles.read_text().replace(", 'analytics'", ""))
    errors = load_project(root).issues.errors
    assert [(e.code, e.line) for e in errors] == [("dbt_env_var", 8)]
    assert "TALLY_TEST_DBT_SCHEMA" in errors[0].message


def test_an_overridden_generate_schema_name_is_a_warning_naming_the_macro(tmp_path: Path) -> None:
    macro = "-- ours\n{% macro generate_schema_name(custom_schema_name, node) %}x{% endmacro %}\n"
    root = _project(tmp_path, extra={"macros/schemas.sql": macro})
    issues = load_project(root).issues
    warnings = [i for i in issues.warnings if i.code == "dbt_schema_macro"]
    assert [(w.file, w.line) for w in warnings] == [("shop/macros/schemas.sql", 2)]
    assert "semantic_manifest.json" in (warnings[0].hint or "")


def test_an_export_of_a_placed_project_syncs_back_to_the_same_specs(tmp_path: Path) -> None:
    """export → sync is a no-op: node_relation written beside model: ref() is read back."""
    project = load_project(_project(tmp_path))
    items = [ExportItem(o.kind, o.name, o.spec) for o in project.objects.values()]
    exported = write(tmp_path / "export", dict(export_files(items)))
    again = load_project(exported)
    assert again.issues.errors == []
    assert {k: o.spec for k, o in again.objects.items()} == {
        k: o.spec for k, o in project.objects.items()
    }


def test_the_sync_digest_follows_the_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync of unchanged YAML under another target is not skipped as "no changes"."""
    root = _project(tmp_path)
    dev = placement_fingerprint(root)
    monkeypatch.setenv("DBT_TARGET", "prod")
    assert placement_fingerprint(root) != dev
    assert placement_fingerprint(tmp_path) == b""


def _warehouse(path: Path, base: str) -> WarehouseConfig:
    """The project's four tables where dbt builds them with target schema ``base``."""
    con = duckdb.connect(str(path))
    for schema, table in ((base, "orders"), (f"{base}_finance", "payments"),
                          (base, "dim_customers"), (f"{base}_ops", "refunds")):  # fmt: skip
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE TABLE {schema}.{table} AS SELECT 1 AS id, current_date AS day")
    con.close()
    return WarehouseConfig(engine="duckdb", dialect="duckdb", path=str(path))


def test_validate_warehouse_finds_the_tables_and_names_the_profiles_it_looked_for(
    tmp_path: Path,
) -> None:
    """The tables live in dbt's schemas of a DuckDB file: found with the profile; without it
    the hint says where profiles.yml was looked for and how to point Tally at it."""
    config = _warehouse(tmp_path / "wh.duckdb", "analytics")
    project = load_project(_project(tmp_path))
    definitions_check_warehouse(project, config=config)
    assert [i.code for i in project.issues.errors] == []
    (tmp_path / "shop" / "profiles.yml").unlink()
    bare = load_project(tmp_path / "shop")
    definitions_check_warehouse(bare, config=config)
    missing = [i for i in bare.issues.errors if i.code == "warehouse_table"]
    assert len(missing) == 4
    assert str(tmp_path / "shop" / "profiles.yml") in (missing[0].hint or "")
    assert "--profiles-dir" in (missing[0].hint or "")


def test_cli_profiles_dir_option(tmp_path: Path) -> None:
    """`tally validate --warehouse --profiles-dir DIR` reads DIR/profiles.yml."""
    root = _project(tmp_path, profiles=False)
    _warehouse(tmp_path / "wh.duckdb", "flagged")
    folder = write(tmp_path / "conf", {"profiles.yml": "shop:\n  target: x\n  outputs:\n"
                   "    x: {type: duckdb, path: /x.duckdb, schema: flagged}\n"})  # fmt: skip
    env = {
        "HOME": str(tmp_path / "home"),
        "TALLY_DEMO": "1",
        "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}",
    }
    plain = run_tally("validate", "--warehouse", str(root), env=env)
    assert plain.returncode == 1 and "warehouse_table" in plain.stderr
    flagged = run_tally(
        "validate", "--warehouse", str(root), "--profiles-dir", str(folder), env=env
    )
    assert flagged.returncode == 0, flagged.stderr


@pytest.mark.parametrize(
    ("output", "orders"),
    [
        ("{type: bigquery, project: acme-prod, dataset: marts, keyfile: /k.json}",
         "acme-prod.marts.orders"),
        ("{type: snowflake, database: ANALYTICS, schema: marts, password: pw}",
         "ANALYTICS.marts.orders"),
        # One database per connection: Tally's warehouse URL already names it.
        ("{type: postgres, dbname: shop, database: shop, schema: marts, password: pw}",
         "marts.orders"),
        # DuckDB's catalog is the file's name; an attached database is kept.
        ("{type: duckdb, path: /data/wh.duckdb, database: wh}", "main.orders"),
        ("{type: duckdb, path: /data/wh.duckdb, database: lake, schema: s}", "lake.s.orders"),
    ],
)  # fmt: skip
def test_each_adapter_names_schema_and_database_as_dbt_does(
    tmp_path: Path, output: str, orders: str
) -> None:
    root = _project(tmp_path)
    (root / "profiles.yml").write_text(f"shop:\n  target: t\n  outputs:\n    t: {output}\n")
    assert _tables(root)["orders"] == orders


def test_a_sql_config_that_is_not_a_literal_is_an_error_at_its_line(tmp_path: Path) -> None:
    sql = "-- orders\n{{ config(materialized='table',\n   schema=var('where')) }}\nselect 1 as id"
    root = _project(tmp_path, extra={"models/orders.sql": sql})
    errors = load_project(root).issues.errors
    assert [(e.code, e.file, e.line) for e in errors] == [
        ("dbt_jinja", "shop/models/orders.sql", 3)
    ]
