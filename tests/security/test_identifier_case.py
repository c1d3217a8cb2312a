"""Issue 18, High 4: table names were matched case-sensitively.

A semantic model on ``main.USERS`` or ``main.ACCOUNTS`` reads the same table as ``users`` /
``accounts`` (DuckDB and MariaDB resolve names case-insensitively, PostgreSQL folds unquoted
names), but was neither row-filtered nor masked, and validated with 0 warnings. Tables and PII
columns are now compared case-folded (fail closed), and validation refuses such a model
unless it carries the policy's entity.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from registry.definitions.rules import MSG_POLICY_TABLE
from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import build_manifest
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from tests.conftest import ROOT, demo_warehouse_at
from tests.semantic.compiler.test_row_policies import _rows_with

SALT = "case-salt"


def _shadow(table: str, entity: str, dimensions: list[str]) -> dict[str, Any]:
    time = "created_at" if table.lower() == "accounts" else "signed_up_at"
    return {
        "name": f"shadow_{table.lower()}",
        "node_relation": {"alias": table, "schema_name": "main"},
        "defaults": {"agg_time_dimension": time},
        "entities": [{"name": entity, "type": "primary", "expr": "id"}],
        "dimensions": [
            *({"name": name, "type": "categorical"} for name in dimensions),
            {"name": time, "type": "time", "type_params": {"time_granularity": "day"}},
        ],
        "measures": [{"name": f"shadow_{table.lower()}_rows", "agg": "count", "expr": "id"}],
    }


def _manifest_with(model: dict[str, Any]) -> Any:
    rows = _rows_with(lambda kind, name, spec: None)
    rows.append(("semantic_model", model["name"], model, "1.0"))
    measure = model["measures"][0]["name"]
    rows.append(
        ("metric", measure, {"name": measure, "type": "simple", "type_params": {"measure": measure}}, "1.0")
    )  # fmt: skip
    return build_manifest(rows, release="r1")


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("case") / "demo.duckdb"
    demo_warehouse_at(path, events=2_000, seed=5)
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def _tenant(duck: Any) -> str:
    return str(
        duck.execute(
            "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).fetchone()[0]
    )


def _run(duck: Any, sql: str, parameters: tuple[str, ...]) -> list[tuple[Any, ...]]:
    if parameters:
        duck.execute("SET VARIABLE tally_pii_salt = $1", [SALT])
    return duck.execute(sql).fetchall()


def test_a_model_on_upper_case_users_is_row_filtered_and_masked(duck: Any) -> None:
    """``main.USERS`` read every tenant's users with raw emails for a tenant-bound token."""
    tenant = _tenant(duck)
    manifest = _manifest_with(_shadow("USERS", "shadow_user", ["email"]))
    query = MetricQuery(metrics=("shadow_users_rows",), group_by=("shadow_user__email",))
    compiled = compile_query(query, manifest, principal=Principal("t", {"tenant_id": tenant}))
    rows = _run(duck, compiled.sql, compiled.parameters)
    emails = {
        row[0]
        for row in duck.execute(
            "SELECT u.email FROM users AS u JOIN accounts AS a ON a.id = u.account_id "
            "WHERE a.tenant_id = ?",
            [tenant],
        ).fetchall()
    }
    assert rows and len(rows) == len(emails)
    assert not any("@" in str(row[0]) for row in rows)
    assert sum(row[1] for row in rows) == len(emails)


def test_a_model_on_upper_case_accounts_is_row_filtered(duck: Any) -> None:
    """``main.ACCOUNTS`` listed every tenant."""
    tenant = _tenant(duck)
    manifest = _manifest_with(_shadow("ACCOUNTS", "shadow_account", ["tenant_id"]))
    query = MetricQuery(metrics=("shadow_accounts_rows",), group_by=("shadow_account__tenant_id",))
    compiled = compile_query(query, manifest, principal=Principal("t", {"tenant_id": tenant}))
    rows = _run(duck, compiled.sql, compiled.parameters)
    assert [row[0] for row in rows] == [tenant]


def test_a_pii_column_spelled_in_upper_case_is_masked(duck: Any) -> None:
    """A dimension reading ``EMAIL`` is the PII column ``email``."""
    tenant = _tenant(duck)
    model = _shadow("users", "shadow_user", [])
    model["entities"].append({"name": "account", "type": "foreign", "expr": "account_id"})
    model["dimensions"].append({"name": "mail", "type": "categorical", "expr": "EMAIL"})
    manifest = _manifest_with(model)
    query = MetricQuery(metrics=("shadow_users_rows",), group_by=("shadow_user__mail",))
    compiled = compile_query(query, manifest, principal=Principal("t", {"tenant_id": tenant}))
    rows = _run(duck, compiled.sql, compiled.parameters)
    assert rows and not any("@" in str(row[0]) for row in rows)


@pytest.mark.parametrize("table", ["USERS", "ACCOUNTS"])
def test_validation_refuses_an_upper_case_model_without_the_policy_entity(
    table: str, tmp_path: Path
) -> None:
    """It validated with 0 warnings; now an error with file:line and a hint."""
    root = tmp_path / "defs"
    shutil.copytree(ROOT / "fixtures", root)
    (root / "semantic_models" / "shadow.yml").write_text(
        f"""semantic_models:
  - name: shadow_{table.lower()}
    node_relation:
      alias: {table}
      schema_name: main
    entities:
      - name: shadow_{table.lower()}
        type: primary
        expr: id
    dimensions:
      - name: {"created_at" if table == "ACCOUNTS" else "signed_up_at"}
        type: time
        type_params:
          time_granularity: day
"""
    )
    project = load_project(root)
    found = [i for i in project.issues.errors if i.code == "policy_entity_missing"]
    assert found, [i.message for i in project.issues.errors]
    assert found[0].file.endswith("shadow.yml") and found[0].line > 0
    assert found[0].message == MSG_POLICY_TABLE.format(
        model=f"shadow_{table.lower()}",
        table=f"main.{table.lower()}",
        other=table.lower(),
        entity="account",
    )
    assert found[0].hint


def test_stored_values_of_a_metric_over_upper_case_users_count_as_policied() -> None:
    """Its compiles are narrowed by the users policy, so its stored (all-tenant) values must
    stay hidden from restricted principals, as for any policied metric."""
    from semantic.compiler.policy_reach import metric_has_row_policies

    manifest = _manifest_with(_shadow("USERS", "shadow_user", ["email"]))
    assert metric_has_row_policies(manifest, "shadow_users_rows")
