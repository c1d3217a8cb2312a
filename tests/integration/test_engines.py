"""The same compiled queries give the same rows on DuckDB, PostgreSQL and MariaDB.

The demo warehouse is copied from DuckDB into a fresh PostgreSQL database and a fresh MariaDB
database; each conformance query is compiled for each engine's dialect (with that engine's
schema as the default) and the normalised rows are compared with DuckDB's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.saved import saved_query_to_query
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import execute
from tally.errors import QueryError, WarehouseError
from tests.conformance.normalize import normalize_rows, row_sort_key, rows_equal
from tests.conformance.test_conformance import _query
from tests.conftest import (
    ROOT,
    demo_on_engines,
    demo_warehouse_at,
)

EXPECTED = ROOT / "tests" / "conformance" / "expected"
# (case, engine) pairs the engine cannot run yet, each with the reason; the test asserts the
# warehouse still refuses them, so a fix shows up as a failure that shrinks this list.
KNOWN_UNSUPPORTED = {
    ("feature_adoption_rate_by_feature", "postgres"): "DuckDB JSON path on a jsonb column",
    ("feature_adoption_rate_by_feature", "mysql"): "MariaDB has no ->> operator",
    ("invoice_amount_percentiles_by_year", "mysql"): "MariaDB has no WITHIN GROUP aggregate",
}
# MariaDB keeps 4 extra decimals in AVG(decimal); compare its numbers to 6 digits.
DIGITS = {"postgres": 10, "mysql": 6}
CASES = sorted(p.stem for p in EXPECTED.glob("*.json") if not p.name.startswith("_"))


@cache
def manifest_for(schema: str) -> Manifest:
    rows = []
    for root in (ROOT / "fixtures", ROOT / "tests" / "conformance" / "extra_metrics.yml"):
        project = load_project(root, validate=False)
        rows += [(k, n, o.spec, "1.0") for (k, n), o in project.objects.items()]
    return build_manifest(
        rows, release="engines", default_schema=schema, schema_map={"main": schema}
    )


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("engines") / "demo.duckdb"
    demo_warehouse_at(path, events=20_000, seed=42)
    return path


@pytest.fixture(scope="module")
def engines(source: Path) -> Iterator[dict[str, tuple[WarehouseConfig, str]]]:
    """engine → (config, default schema), data loaded; databases dropped afterwards."""
    with demo_on_engines(source, "tally_eng") as loaded:
        yield loaded


def _comparable(rows: list, digits: int) -> list:
    """Normalised rows; booleans as 0/1 (MySQL has no boolean type), numbers to ``digits``."""
    out = []
    for row in normalize_rows(rows):
        cells = []
        for value in row:
            if isinstance(value, bool):
                value = int(value)
            if isinstance(value, float):
                value = float(format(value, f".{digits}g"))
            cells.append(value)
        out.append(cells)
    return out


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
@pytest.mark.parametrize("case", CASES)
def test_engine_rows_equal_duckdb_rows(case: str, engine: str, engines: dict) -> None:
    """Compiled for each dialect, the query returns DuckDB's rows on that engine."""
    spec = json.loads((EXPECTED / f"{case}.json").read_text())["query"]
    if "saved_query" in spec:
        overrides = _query({**spec, "metrics": []})
        base = saved_query_to_query(manifest_for("main"), spec["saved_query"], overrides)
    else:
        base = _query(spec)
    duck_config, duck_schema = engines["duckdb"]
    config, schema = engines[engine]
    try:
        reference = compile_query(base, manifest_for(duck_schema))
    except QueryError as exc:
        assert exc.code.startswith("unsupported")
        return
    query = type(base)(**{**base.__dict__, "dialect": config.dialect})
    compiled = compile_query(query, manifest_for(schema))
    if (case, engine) in KNOWN_UNSUPPORTED:
        with pytest.raises(WarehouseError):
            execute(config, compiled.sql)
        return
    expected = _comparable(execute(duck_config, reference.sql).rows, DIGITS[engine])
    got = _comparable(execute(config, compiled.sql).rows, DIGITS[engine])
    if not base.order_by:
        expected, got = sorted(expected, key=row_sort_key), sorted(got, key=row_sort_key)
    assert rows_equal(expected, got), f"{engine}: {expected[:3]} != {got[:3]}\n{compiled.sql}"
