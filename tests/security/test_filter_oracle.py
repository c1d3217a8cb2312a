"""Issue 18, High 2: a user filter never sees a row its principal may not see, on every engine.

The error oracle: a tenant-bound principal filters with
``CASE WHEN <own account> THEN 0 ELSE CAST(CONCAT(<column>, 'zq') AS INT) END = 0``. On its
own rows the CAST is never evaluated; on any other tenant's row it raises (PostgreSQL,
DuckDB: "invalid input syntax for type integer: \"<value>zq\"") or warns (MariaDB:
"Truncated incorrect INTEGER value: '<value>zq'"), printing that row's value. The row policy
was a derived table / semi-join that PostgreSQL flattened, evaluating the user's filter on
every tenant's events. Secured reads are now optimisation barriers (OFFSET 0 on PostgreSQL
and DuckDB, LIMIT 18446744073709551615 on MariaDB): the filter raises nothing and no other
tenant's value appears in any error or warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
from tests.semantic.compiler.test_row_policies import pii_manifest

MARK = "zq"
# (metric, group-by, the column whose other-tenant values the filter tries to print)
SHAPES = [
    ("events_tracked", (), "{{ Dimension('event__event_type') }}"),
    ("events_tracked", ("account__plan",), "{{ Entity('account') }}"),
    ("events_tracked", ("metric_time__month",), "{{ Dimension('event__event_type') }}"),
    ("new_accounts", (), "{{ Dimension('account__name') }}"),
    ("signups", ("account__plan",), "{{ Dimension('user__country') }}"),
]
ENGINES = ["duckdb", "postgres", "mysql"]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """engine → (config, schema) with the demo loaded; databases dropped afterwards."""
    source: Path = tmp_path_factory.mktemp("oracle") / "demo.duckdb"
    demo_warehouse_at(source, events=3_000, seed=11)
    with demo_on_engines(source, "tally_oracle") as loaded:
        yield loaded


def _tenant_accounts(engines: dict[str, Any]) -> tuple[str, list[int]]:
    config, _ = engines["duckdb"]
    tenant = str(
        execute(
            config, "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        ).rows[0][0]
    )
    ids = execute(config, f"SELECT id FROM accounts WHERE tenant_id = '{tenant}'").rows
    return tenant, sorted(int(row[0]) for row in ids)


def _oracle_sql(
    engines: dict[str, Any], engine: str, shape: tuple[str, tuple[str, ...], str], secured: bool
) -> tuple[WarehouseConfig, str]:
    metric, group_by, column = shape
    tenant, ids = _tenant_accounts(engines)
    where = (
        f"CASE WHEN {{{{ Entity('account') }}}} IN ({', '.join(map(str, ids))}) THEN 0 "
        f"ELSE CAST(CONCAT({column}, '{MARK}') AS INT) END = 0"
    )
    config, schema = engines[engine]
    query = MetricQuery(
        metrics=(metric,), group_by=group_by, where=(where,), dialect=config.dialect
    )
    principal = Principal(f"token:{tenant}", {"tenant_id": tenant}) if secured else None
    compiled = compile_query(query, pii_manifest(schema), principal=principal)
    return config, compiled.sql


def _raised_or_warned(engines: dict[str, Any], engine: str, sql: str) -> list[str]:
    """Every error or warning text the engine gave for ``sql`` ([] when it ran cleanly)."""
    config, _ = engines[engine]
    if engine == "mysql":
        import pymysql

        # MariaDB casts with a warning, not an error; the warning text is the oracle.
        con = pymysql.connect(
            host="127.0.0.1", user="root", password="", database=engines["database"]
        )
        try:
            cursor = con.cursor()
            cursor.execute(sql)
            cursor.fetchall()
            cursor.execute("SHOW WARNINGS")
            return [str(row[2]) for row in cursor.fetchall()]
        finally:
            con.close()
    try:
        execute(config, sql)
    except Exception as error:  # any engine error is the oracle's answer
        # The warehouse's own text (users get a generic message; the oracle reads the raw).
        return [getattr(error, "warehouse_message", None) or str(error)]
    return []


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}-{'-'.join(s[1]) or 'total'}")
def test_a_tenants_raising_filter_never_sees_another_tenants_row(
    engine: str, shape: tuple[str, tuple[str, ...], str], engines: dict[str, Any]
) -> None:
    """PostgreSQL evaluated the user's filter below the tenant filter and printed other
    tenants' values in the error text; no engine may evaluate it on such a row."""
    _, sql = _oracle_sql(engines, engine, shape, secured=True)
    assert _raised_or_warned(engines, engine, sql) == [], sql


@pytest.mark.parametrize("engine", ENGINES)
def test_the_oracle_filter_does_raise_on_other_tenants_rows_when_unsecured(
    engine: str, engines: dict[str, Any]
) -> None:
    """The oracle is real: run without a principal (every tenant's rows), the same filter
    raises or warns with another tenant's value, so a clean secured run proves the barrier."""
    _, sql = _oracle_sql(engines, engine, SHAPES[0], secured=False)
    found = _raised_or_warned(engines, engine, sql)
    assert found and MARK in found[0]


def _base_conditions(plan: Any) -> Iterator[tuple[str, str]]:
    """(table, attached condition) of every base-table access of a MariaDB JSON plan."""
    if isinstance(plan, dict):
        table = plan.get("table_name")
        if isinstance(table, str) and not table.startswith("<"):
            yield table, str(plan.get("attached_condition") or "")
        for value in plan.values():
            yield from _base_conditions(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from _base_conditions(value)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}-{'-'.join(s[1]) or 'total'}")
def test_mariadb_plans_never_attach_the_users_filter_to_a_base_table(
    shape: tuple[str, tuple[str, ...], str], engines: dict[str, Any]
) -> None:
    """MariaDB's derived_merge folded the secured read into the outer query, attaching the
    user's filter to the raw events table (safe only by the join order it happened to pick);
    with the barrier the filter sits on the materialised secured read only."""
    import pymysql

    _, sql = _oracle_sql(engines, "mysql", shape, secured=True)
    con = pymysql.connect(host="127.0.0.1", user="root", password="", database=engines["database"])
    try:
        cursor = con.cursor()
        cursor.execute("EXPLAIN FORMAT=JSON " + sql)
        plan = json.loads(cursor.fetchone()[0])
    finally:
        con.close()
    attached = list(_base_conditions(plan))
    assert attached, "the plan reads base tables"
    assert not [(t, c) for t, c in attached if MARK in c]
