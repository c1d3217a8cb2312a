"""`tally list dimension-values` (issue #19) as a user runs it: a real subprocess on the demo
warehouse, values equal to plain SQL, a principal's row policy applied, errors exit 1."""

from __future__ import annotations

import json

import duckdb
import pytest

from tests.conftest import run_tally

pytestmark = pytest.mark.registry_db


# The module's tests only read what this set up: set up once, from copies.
@pytest.fixture(scope="module")
def env(demo_cli_env: dict[str, str]) -> dict[str, str]:
    return demo_cli_env


def _sql(env: dict[str, str], sql: str) -> list[str]:
    con = duckdb.connect(env["WAREHOUSE_URL"].removeprefix("duckdb:///"), read_only=True)
    try:
        return [row[0] for row in con.execute(sql).fetchall()]
    finally:
        con.close()


def test_lists_values_one_per_line_and_as_json(env: dict[str, str]) -> None:
    """mf's flags: --metrics and --dimension; the values are plain SQL's distinct values."""
    expected = _sql(env, "SELECT DISTINCT plan FROM accounts ORDER BY 1")
    result = run_tally(
        "list", "dimension-values", "--metrics", "revenue", "--dimension", "account__plan",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) <= set(expected) and result.stdout.split()
    result = run_tally(
        "list", "dimension-values", "--dimension", "account__plan", "--format", "json", env=env
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["values"] == expected and body["truncated"] is False


def test_search_limit_and_principal(env: dict[str, str]) -> None:
    """--search and --limit; --principal-attr applies the tenant row policy."""
    tenants = _sql(env, "SELECT DISTINCT tenant_id FROM accounts ORDER BY 1")
    result = run_tally(
        "list", "dimension-values", "--dimension", "account__tenant_id",
        "--principal-attr", f"tenant_id={tenants[1]}", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [tenants[1]]
    result = run_tally(
        "list", "dimension-values", "--dimension", "account__tenant_id", "--limit", "1", env=env
    )
    assert result.stdout.split() == [tenants[0]] and "raise --limit" in result.stderr


def test_unknown_dimension_exits_1_with_code(env: dict[str, str]) -> None:
    result = run_tally(
        "list", "dimension-values", "--metrics", "revenue", "--dimension", "account__plann",
        env=env,
    )  # fmt: skip
    assert result.returncode == 1
    assert "error[unknown_dimension]" in result.stderr
