"""Drill-down SQL runs on DuckDB, PostgreSQL and MariaDB, and its rows re-aggregate to the
value the compiled metric query gives on the same engine (slice through a join included)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.drilldown import drilldown_selects
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.execute import execute
from tests.integration.test_engines import engines, manifest_for, source  # noqa: F401

MONTH = dt.date(2026, 8, 1)
CASES = [  # (metric, slice item, slice value)
    ("revenue", "account__plan", "pro"),
    ("invoices_issued", "account__plan", "free"),
    ("events_tracked", "account__region", "EMEA"),
    ("late_events", "", ""),
    ("paid_invoice_rate", "account__plan", "pro"),
]


def _reaggregate(agg: str, values: list[Any]) -> Decimal:
    present = [v for v in values if v is not None]
    if agg == "sum":
        return Decimal(sum(Decimal(str(v)) for v in present))
    if agg == "count":
        return Decimal(len(present))
    if agg == "count_distinct":
        return Decimal(len(set(present)))
    return Decimal(sum(int(bool(v)) for v in present))  # sum_boolean (0/1 on MariaDB)


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "mysql"])
@pytest.mark.parametrize(("metric", "item", "wanted"), CASES)
def test_drilldown_rows_add_up_on_every_engine(
    engines: dict[str, tuple[WarehouseConfig, str]],  # noqa: F811
    engine: str,
    metric: str,
    item: str,
    wanted: str,
) -> None:
    """The month's value (for one slice) equals the drill-down rows re-aggregated, per input."""
    config, schema = engines[engine]
    manifest = manifest_for(schema)
    query = MetricQuery(
        metrics=(metric,),
        group_by=("metric_time__month", *([item] if item else [])),
        start_time=MONTH.isoformat(),
        end_time="2026-08-31",
        dialect=config.dialect,
    )
    rows = execute(config, compile_query(query, manifest).sql).rows
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
        result = execute(config, part.sql(config.dialect), row_cap=1_000_000)
        assert not result.truncated
        index = [c.name for c in result.columns].index("measure_value")
        sums.append(_reaggregate(part.agg, [row[index] for row in result.rows]))
    got = sums[0] if len(sums) == 1 else sums[0] / sums[1]
    assert float(got) == pytest.approx(float(expected), rel=1e-9), (engine, metric)
