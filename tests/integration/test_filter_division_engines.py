"""A user filter's ``/`` selects DuckDB's rows on PostgreSQL, MariaDB, ClickHouse (chdb) and
Spark, as a definition's does (tests/integration/test_definition_division_engines.py): the
filter is rewritten to ``CAST(a AS DOUBLE) / NULLIF(b, 0)`` by the same function
(semantic.compiler.division). Before, MariaDB kept 4 decimals of an integer quotient (10 / 3
= 3.3333), ClickHouse a DECIMAL's scale (100.00 / 3 = 33.33), PostgreSQL failed on a zero
divisor and DuckDB took it for infinity, so one filter selected other rows per engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.execute import execute
from tests.conftest import ROOT, demo_on_engines, demo_warehouse_at
from tests.semantic.compiler.test_definition_division import _model

# One row per account and per invoice, so a query lists the keys a filter selects.
FILTER_MODELS = (
    _model(
        "seat_rows", "accounts", "id", "created_at",
        [{"name": "seats", "type": "categorical"}],
        [{"name": "seat_row_count", "agg": "sum", "expr": "1"}],
    ),
    _model(
        "invoice_rows", "invoices", "invoice_id", "issued_at",
        [{"name": "amount", "type": "categorical"}],
        [{"name": "invoice_row_count", "agg": "sum", "expr": "1"}],
    ),
)  # fmt: skip
ACCOUNT, INVOICE = "{{ Entity('seat_row') }}", "{{ Dimension('invoice_row__amount') }}"
FILTERS = {
    # integer / integer literal (PostgreSQL would truncate it, were it not cast).
    "half_seats": ("seat_row", "{{ Dimension('seat_row__seats') }} / 2 > 3"),
    # The fraction of an integer / 3: 0.333… (MariaDB: 0.3333) for every id ≡ 1 (mod 3).
    "id_thirds": ("seat_row", f"{ACCOUNT} / 3 > FLOOR({ACCOUNT} / 3) + 0.33331"),
    # A zero divisor at id 7: NULL, not infinity (DuckDB) nor an error (PostgreSQL).
    "zero_divisor": ("seat_row", f"{ACCOUNT} / ({ACCOUNT} - 7) > 1"),
    # DECIMAL(12, 2) / 3: ClickHouse kept two decimals (0.33 for an amount ≡ 1 (mod 3)).
    "amount_thirds": ("invoice_row", f"{INVOICE} / 3 > FLOOR({INVOICE} / 3) + 0.331"),
}
EMBEDDED = ["chdb", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))]


@cache
def filter_manifest(schema: str = "main") -> Manifest:
    """fixtures/ plus ``FILTER_MODELS`` and their metrics, the tables in ``schema``."""
    project = load_project(ROOT / "fixtures")
    rows = [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()]
    for spec in FILTER_MODELS:
        rows.append(("semantic_model", spec["name"], spec, "1.0"))
        measure = spec["measures"][0]["name"]
        metric = {"name": measure, "type": "simple", "type_params": {"measure": measure}}
        rows.append(("metric", measure, metric, "1.0"))
    if schema == "main":
        return build_manifest(rows, release="r1")
    return build_manifest(rows, release="r1", default_schema=schema, schema_map={"main": schema})


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A small demo in DuckDB, PostgreSQL and MariaDB: engine → (config, schema)."""
    source = tmp_path_factory.mktemp("filter_division") / "demo.duckdb"
    demo_warehouse_at(source, events=2_000, seed=42)
    with demo_on_engines(source, "tally_fdiv") as loaded:
        yield loaded


def _selected(config: Any, schema: str, name: str) -> list[int]:
    """The keys the filter selects (each row's count is 1)."""
    entity, where = FILTERS[name]
    metric = f"{entity}_count"
    query = MetricQuery(
        metrics=(metric,), group_by=(entity,), where=(where,), dialect=config.dialect
    )
    compiled = compile_query(query, filter_manifest(schema))
    rows = execute(config, compiled.sql, timeout_s=300).rows
    return sorted(int(row[0]) for row in rows)


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_division_selects_duckdb_rows(name: str, engine: str, engines: dict) -> None:
    """PostgreSQL and MariaDB select DuckDB's rows for a filter's division."""
    duck_config, duck_schema = engines["duckdb"]
    config, schema = engines[engine]
    expected = _selected(duck_config, duck_schema, name)
    assert expected, "the filter selects no row"
    assert _selected(config, schema, name) == expected


@pytest.mark.parametrize("engine", EMBEDDED)
@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_division_selects_duckdb_rows_embedded(
    name: str, engine: str, request: pytest.FixtureRequest, embedded_demo: Path
) -> None:
    """ClickHouse (chdb) and Spark select DuckDB's rows for a filter's division."""
    config = request.getfixturevalue(f"{engine}_warehouse")
    duck = parse_warehouse_url(f"duckdb:///{embedded_demo}", base_dir=ROOT)
    expected = _selected(duck, "main", name)
    assert expected, "the filter selects no row"
    assert _selected(config, "main", name) == expected


def test_a_zero_divisor_leaves_the_row_out_on_duckdb(engines: dict) -> None:
    """DuckDB took 7 / 0 for infinity (> 1: selected); now NULL, as on every engine."""
    config, schema = engines["duckdb"]
    selected = _selected(config, schema, "zero_divisor")
    assert 7 not in selected and 8 in selected
