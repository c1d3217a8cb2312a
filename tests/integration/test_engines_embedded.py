"""The conformance queries give DuckDB's rows on ClickHouse (chdb) and Spark (local), as on
PostgreSQL and MariaDB (tests/integration/test_engines.py), compiled for each dialect.

The demo is loaded once per test process into each engine (tests/conftest.py), so the
Spark JVM starts once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.saved import saved_query_to_query
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.execute import execute
from tally.errors import QueryError
from tests.conformance.normalize import row_sort_key, rows_equal
from tests.conformance.test_conformance import _query
from tests.conftest import ROOT
from tests.integration.test_engines import CASES, EXPECTED, _comparable, manifest_for

SCHEMAS = {"chdb": "default", "spark": "default"}


@pytest.fixture
def embedded(request: pytest.FixtureRequest, embedded_demo: Path) -> dict[str, Any]:
    engine = request.param
    config = request.getfixturevalue(f"{engine}_warehouse")
    duck = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    return {"engine": engine, "config": config, "duckdb": duck}


@pytest.mark.parametrize("embedded", ["chdb", "spark"], indirect=True)
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
