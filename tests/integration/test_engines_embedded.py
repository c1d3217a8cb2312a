"""The conformance queries, the row-policy adversarial queries and the drill-down
re-aggregation give DuckDB's rows on ClickHouse (chdb) and Spark (local), as on PostgreSQL
and MariaDB (tests/integration/test_engines.py, test_row_policies_engines.py,
test_drilldown_engines.py), each compiled for the engine's dialect.

The demo is loaded once per test process into each engine (tests/conftest.py), so the
Spark JVM starts once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.drilldown import drilldown_selects
from semantic.compiler.principal import Principal
from semantic.compiler.saved import saved_query_to_query
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.execute import execute
from tally.errors import QueryError
from tests.conformance.normalize import row_sort_key, rows_equal
from tests.conformance.test_conformance import _query
from tests.conftest import ROOT
from tests.integration.test_drilldown_engines import CASES as DRILL_CASES
from tests.integration.test_drilldown_engines import MONTH, _reaggregate
from tests.integration.test_engines import CASES, EXPECTED, _comparable, manifest_for
from tests.integration.test_row_policies_engines import CASES as POLICY_CASES
from tests.integration.test_row_policies_engines import SALT as POLICY_SALT
from tests.semantic.compiler.test_row_policies import pii_manifest

# Both hold the demo in a database named main, as DuckDB does (tests/conftest.py).
SCHEMAS = {"chdb": "main", "spark": "main"}
# One xdist worker runs every Spark test (`./dev test` uses --dist loadgroup): one JVM, not two.
ENGINES = ["chdb", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))]


@pytest.fixture
def embedded(request: pytest.FixtureRequest, embedded_demo: Path) -> dict[str, Any]:
    engine = request.param
    config = request.getfixturevalue(f"{engine}_warehouse")
    duck = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    return {"engine": engine, "config": config, "duckdb": duck}


@pytest.mark.parametrize("embedded", ENGINES, indirect=True)
@pytest.mark.parametrize("case", CASES)
def test_embedded_engine_rows_equal_duckdb_rows(case: str, embedded: dict[str, Any]) -> None:
    """Compiled for ClickHouse or Spark, each conformance query returns DuckDB's rows."""
    spec = json.loads((EXPECTED / f"{case}.json").read_text())["query"]
    if "saved_query" in spec:
        overrides = _query({**spec, "metrics": []})
        base = saved_query_to_query(manifest_for("main"), spec["saved_query"], overrides)
    else:
        base = _query(spec)
    config = embedded["config"]
    try:
        reference = compile_query(base, manifest_for("main"))
    except QueryError as exc:
        assert exc.code.startswith("unsupported")
        return
    query = type(base)(**{**base.__dict__, "dialect": config.dialect})
    compiled = compile_query(query, manifest_for(SCHEMAS[embedded["engine"]]))
    expected = _comparable(execute(embedded["duckdb"], reference.sql).rows, 10)
    got = _comparable(execute(config, compiled.sql, timeout_s=300).rows, 10)
    if not base.order_by:
        expected, got = sorted(expected, key=row_sort_key), sorted(got, key=row_sort_key)
    assert rows_equal(expected, got), f"{expected[:3]} != {got[:3]}\n{compiled.sql}"


# --- row policies and masks (the adversarial queries of tests/semantic/compiler/
# test_row_policies.py, as tests/integration/test_row_policies_engines.py runs them) -------


def _secured_rows(config: Any, schema: str, query: MetricQuery, tenant: str) -> list:
    query = MetricQuery(**{**query.__dict__, "dialect": config.dialect})
    compiled = compile_query(
        query, pii_manifest(schema), principal=Principal(f"user:{tenant}", {"tenant_id": tenant})
    )
    variables = {"tally_pii_salt": POLICY_SALT} if compiled.parameters else None
    assert POLICY_SALT not in compiled.sql
    result = execute(config, compiled.sql, variables=variables, timeout_s=300)
    return sorted(_comparable(list(result.rows), 10), key=repr)


@pytest.mark.parametrize("embedded", ENGINES, indirect=True)
@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_embedded_secured_rows_equal_duckdb_rows(case: str, embedded: dict[str, Any]) -> None:
    """Each tenant's secured, masked query returns DuckDB's rows (pseudonyms included)."""
    duck = embedded["duckdb"]
    tenants = [
        str(row[0])
        for row in execute(duck, "SELECT DISTINCT tenant_id FROM accounts ORDER BY 1").rows
    ]
    assert len(tenants) > 1
    schema = SCHEMAS[embedded["engine"]]
    for tenant in tenants[:3]:
        expected = _secured_rows(duck, "main", POLICY_CASES[case], tenant)
        got = _secured_rows(embedded["config"], schema, POLICY_CASES[case], tenant)
        assert got == expected, (case, tenant)


# --- drill-down (tests/integration/test_drilldown_engines.py) ------------------------------


@pytest.mark.parametrize("embedded", ENGINES, indirect=True)
@pytest.mark.parametrize(("metric", "item", "wanted"), DRILL_CASES)
def test_embedded_drilldown_rows_add_up(
    embedded: dict[str, Any], metric: str, item: str, wanted: str
) -> None:
    """The month's value (for one slice) equals its drill-down rows re-aggregated."""
    config = embedded["config"]
    manifest = manifest_for(SCHEMAS[embedded["engine"]])
    query = MetricQuery(
        metrics=(metric,),
        group_by=("metric_time__month", *([item] if item else [])),
        start_time=MONTH.isoformat(),
        end_time="2026-08-31",
        dialect=config.dialect,
    )
    rows = execute(config, compile_query(query, manifest).sql, timeout_s=300).rows
    (expected,) = [r[-1] for r in rows if not item or r[1] == wanted]
    parts = drilldown_selects(
        manifest,
        metric=metric,
        grain="month",
        period_start=MONTH,
        slice_values={item: wanted} if item else {},
    )
    sums = []
    for part in parts:
        result = execute(config, part.sql(config.dialect), row_cap=1_000_000, timeout_s=300)
        assert not result.truncated
        index = [c.name for c in result.columns].index("measure_value")
        sums.append(_reaggregate(part.agg, [row[index] for row in result.rows]))
    got = sums[0] if len(sums) == 1 else sums[0] / sums[1]
    assert float(got) == pytest.approx(float(expected), rel=1e-9), metric


@pytest.mark.xdist_group("spark")
def test_the_urls_jvm_options_are_kept_beside_the_utc_clock(spark_warehouse: Any) -> None:
    """spark.driver.extraJavaOptions of a spark:/// URL reaches the JVM (it was replaced by
    the UTC clock option); the clock option is still there."""
    from semantic.warehouse.engine_open import spark_session

    options = (
        spark_session(spark_warehouse).sparkContext.getConf().get("spark.driver.extraJavaOptions")
    )
    # (Spark puts its own module options first.)
    assert options.endswith(" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Duser.timezone=UTC")
