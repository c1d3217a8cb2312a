"""Row policies and PII masks give the same rows on DuckDB, PostgreSQL and MariaDB.

DuckDB's secured rows equal the hand-filtered ones (tests/semantic/compiler/
test_row_policies.py); here the same secured queries, compiled for each engine's dialect
and run with the salt bound as a session variable, must return DuckDB's rows, pseudonyms
included (MD5 of the same salt and value is the same hex on every engine).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import execute
from tests.conftest import (
    demo_on_engines,
    demo_warehouse_at,
)
from tests.integration.test_engines import DIGITS, _comparable
from tests.semantic.compiler.test_row_policies import ADVERSARIAL, pii_manifest

SALT = "engines-salt-51c2"
CASES = {
    name: ADVERSARIAL[name]
    for name in (
        "simple_on_facts",
        "dimension_through_join",
        "derived",
        "cumulative_window",
        "conversion",
        "non_additive",
        "metric_in_where",
        "pii_aggregate",
    )
}
CASES["group_by_masked_email"] = MetricQuery(
    metrics=("signups",), group_by=("user__email", "account__region")
)


@pytest.fixture(scope="module")
def engines(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, tuple[WarehouseConfig, str]]]:
    """engine → (config, schema) with the demo loaded; databases dropped afterwards."""
    source: Path = tmp_path_factory.mktemp("rls_engines") / "demo.duckdb"
    demo_warehouse_at(source, events=5_000, seed=11)
    with demo_on_engines(source, "tally_rls") as loaded:
        yield loaded


def _rows(engines: dict, engine: str, query: MetricQuery, tenant: str, digits: int) -> list:
    config, schema = engines[engine]
    query = MetricQuery(**{**query.__dict__, "dialect": config.dialect})
    compiled = compile_query(
        query, pii_manifest(schema), principal=Principal(f"user:{tenant}", {"tenant_id": tenant})
    )
    variables = {"tally_pii_salt": SALT} if compiled.parameters else None
    assert SALT not in compiled.sql
    result = execute(config, compiled.sql, variables=variables)
    return sorted(_comparable(list(result.rows), digits), key=repr)


def _tenant(engines: dict) -> str:
    config, _ = engines["duckdb"]
    result = execute(
        config, "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )
    return str(result.rows[0][0])


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_secured_rows_equal_duckdb_rows(case: str, engine: str, engines: dict) -> None:
    """A tenant's secured, masked query returns DuckDB's rows on PostgreSQL and MariaDB."""
    tenant = _tenant(engines)
    digits = DIGITS[engine]
    expected = _rows(engines, "duckdb", CASES[case], tenant, digits)
    assert expected, f"{case}: the tenant should have rows"
    assert _rows(engines, engine, CASES[case], tenant, digits) == expected
