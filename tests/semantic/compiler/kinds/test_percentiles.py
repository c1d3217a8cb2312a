"""Percentile measures are exact, also with ``use_approximate_percentile: true``: the setting
allows an approximation, and the exact value is the one every engine agrees on. MetricFlow
renders DuckDB's ``approx_quantile`` instead (its itest approximate_continuous_percentile_agg
expects 735.45 where the exact 99th percentile is 734.099), so Tally never shows a number
that differs from the exact one without saying so (issue 16)."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery


def _manifest(approximate: bool, discrete: bool) -> Manifest:
    model = {
        "name": "bookings",
        "model": "ref('bookings')",
        "defaults": {"agg_time_dimension": "ds"},
        "entities": [{"name": "booking", "type": "primary", "expr": "id"}],
        "dimensions": [{"name": "ds", "type": "time", "type_params": {"time_granularity": "day"}}],
        "measures": [
            {
                "name": "value_p99",
                "agg": "percentile",
                "expr": "value",
                "agg_params": {
                    "percentile": 0.99,
                    "use_approximate_percentile": approximate,
                    "use_discrete_percentile": discrete,
                },
            }
        ],
    }
    metric = {"name": "value_p99", "type": "simple", "type_params": {"measure": "value_p99"}}
    return build_manifest(
        [("semantic_model", "bookings", model, "1"), ("metric", "value_p99", metric, "1")]
    )


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    # Skewed values, so a sketch's estimate and the exact percentile are far apart.
    con.execute(
        "CREATE TABLE bookings AS SELECT i AS id, DATE '2026-01-01' + CAST(i % 3 AS INTEGER) AS ds, "
        "(i * i) % 997 + CASE WHEN i % 50 = 0 THEN 10000 ELSE 0 END AS value FROM range(3000) t(i)"
    )
    return con


@pytest.mark.parametrize(("discrete", "exact"), [(False, "quantile_cont"), (True, "quantile_disc")])
def test_an_approximate_percentile_is_computed_exactly(
    con: duckdb.DuckDBPyConnection, discrete: bool, exact: str
) -> None:
    """The rows equal DuckDB's exact quantile per day, with or without the approximate flag."""
    expected = con.execute(
        f"SELECT ds, {exact}(value, 0.99) FROM bookings GROUP BY 1 ORDER BY 1"
    ).fetchall()
    for approximate in (True, False):
        compiled = compile_query(
            MetricQuery(metrics=("value_p99",), group_by=("metric_time__day",)),
            _manifest(approximate, discrete),
        )
        rows: list[Any] = sorted(con.execute(compiled.sql).fetchall())
        assert [(day.date() if hasattr(day, "date") else day, v) for day, v in rows] == expected
        assert "approx" not in compiled.sql.lower()
