"""Tally's rows equal MetricFlow's rows for the same definitions, data and queries.

Expected results were recorded with MetricFlow itself (docs/conformance.md says how to
regenerate them) on the demo warehouse built with the parameters in expected/_meta.json.
Where MetricFlow is demonstrably wrong, the case carries ``mf_wrong`` and hand-computed
``hand_rows``, and Tally must match those instead.

A case whose metric type the compiler does not build yet must be refused clearly (QueryError
with an unsupported_* code); as soon as the compiler accepts it, its rows are compared.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.saved import saved_query_to_query
from semantic.compiler.spec import MetricQuery
from semantic.demo import build_demo_warehouse
from tally.errors import QueryError
from tests.conformance.normalize import normalize_rows, row_sort_key, rows_equal
from tests.conftest import ROOT

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"
META = (
    json.loads((EXPECTED / "_meta.json").read_text()) if (EXPECTED / "_meta.json").exists() else {}
)
CASES = sorted(p.stem for p in EXPECTED.glob("*.json") if not p.name.startswith("_"))

# Metric types and query features the compiler does not build yet (next sessions).
UNSUPPORTED_CODES = {"unsupported_metric"}


@cache
def conformance_manifest() -> Manifest:
    """fixtures/ plus the conformance-only metrics, as one release."""
    rows = []
    for root in (ROOT / "fixtures", HERE / "extra_metrics.yml"):
        project = load_project(root, validate=False)
        assert not project.issues.errors, [e.cli_lines() for e in project.issues.errors]
        rows += [(k, n, o.spec, "1.0") for (k, n), o in project.objects.items()]
    return build_manifest(rows, release="conformance")


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    warehouse = META.get("warehouse", {})
    path = tmp_path_factory.mktemp("conformance") / "warehouse.duckdb"
    build_demo_warehouse(
        path, events=int(warehouse.get("events", 20_000)), seed=int(warehouse.get("seed", 42))
    )
    con = duckdb.connect(str(path), read_only=True)
    yield con
    con.close()


def _query(spec: dict[str, Any]) -> MetricQuery:
    where = spec.get("where") or ()
    return MetricQuery(
        metrics=tuple(spec["metrics"]),
        group_by=tuple(spec.get("group_by") or ()),
        where=(where,) if isinstance(where, str) else tuple(where),
        start_time=spec.get("start_time"),
        end_time=spec.get("end_time"),
        order_by=tuple(spec.get("order_by") or ()),
        limit=spec.get("limit"),
    )


@pytest.mark.parametrize("case", CASES)
def test_rows_match_metricflow(case: str, duck: duckdb.DuckDBPyConnection) -> None:
    """Same rows as MetricFlow (or as the hand-computed answer where MetricFlow is wrong)."""
    recorded = json.loads((EXPECTED / f"{case}.json").read_text())
    spec = recorded["query"]
    if "saved_query" in spec:
        overrides = _query({**spec, "metrics": []})
        query = saved_query_to_query(conformance_manifest(), spec["saved_query"], overrides)
    else:
        query = _query(spec)
    try:
        compiled = compile_query(query, conformance_manifest())
    except QueryError as exc:
        assert exc.code in UNSUPPORTED_CODES, f"{case}: {exc.code}: {exc.message}"
        return
    rows = normalize_rows(duck.execute(compiled.sql).fetchall())
    expected = recorded.get("hand_rows") if spec.get("mf_wrong") else recorded["rows"]
    if not query.order_by:
        rows = sorted(rows, key=row_sort_key)
        expected = sorted(expected, key=row_sort_key)
    assert [c.lower() for c in compiled.columns] == [c.lower() for c in recorded["columns"]]
    assert rows_equal(expected, rows), (
        f"{case}: first rows differ\nexpected {expected[:5]}\ngot      {rows[:5]}\n{compiled.sql}"
    )
