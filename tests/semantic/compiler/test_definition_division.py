"""Division in definition expressions means DuckDB's (the definition dialect's) on every engine.

``amount / quantity`` in a measure's or dimension's ``expr`` is real division on DuckDB: two
integers give a DOUBLE (7 / 2 = 3.5), two DECIMALs a DOUBLE too. The stock dialects differ:
PostgreSQL, Trino and T-SQL truncate integers, MariaDB keeps four decimals (1 / 3 = 0.3333),
Snowflake six, ClickHouse keeps a DECIMAL's scale (10.00 / 3 = 3.33), Spark and BigQuery a
DECIMAL's own precision rules. ``definition_sql`` writes every ``/`` as
``CAST(a AS DOUBLE) / NULLIF(b, 0)``: one meaning everywhere, and a zero divisor gives NULL on
every engine, as a derived or ratio metric's division does (DuckDB would give infinity,
PostgreSQL, Spark (ANSI), Snowflake, BigQuery and T-SQL would fail the query, MariaDB NULL).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.definition_sql import DEFINITION_DIALECT, definition_expr
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import DIALECTS, MetricQuery
from tests.conftest import ROOT


def _model(name: str, table: str, key: str, time: str, dimensions: list, measures: list) -> dict:
    return {
        "name": name,
        "node_relation": {"alias": table, "schema_name": "main"},
        "defaults": {"agg_time_dimension": time},
        "entities": [{"name": name.removesuffix("s"), "type": "primary", "expr": key}],
        "dimensions": [
            {"name": time, "type": "time", "type_params": {"time_granularity": "day"}},
            *dimensions,
        ],
        "measures": measures,
    }


# Models over the demo's accounts (seats INTEGER, id BIGINT) and invoices (amount
# DECIMAL(12, 2)), with divisions whose results truncation or a kept scale would change.
DIVISION_MODELS = (
    _model(
        "account_ratios",
        "accounts",
        "id",
        "created_at",
        [{"name": "seat_quarters", "type": "categorical", "expr": "seats / 4"}],
        [
            # integer / integer literal, and integer / integer column that is 0 for a quarter
            # of the rows (the zero divisor gives NULL, which SUM skips).
            {"name": "half_seats", "agg": "sum", "expr": "seats / 2"},
            {"name": "seats_per_bucket", "agg": "sum", "expr": "seats / (id % 4)"},
        ],
    ),
    _model(
        "invoice_ratios",
        "invoices",
        "invoice_id",
        "issued_at",
        [],
        [
            # DECIMAL / integer literal, and DECIMAL / DECIMAL.
            {"name": "amount_thirds", "agg": "sum", "expr": "amount / 3"},
            {"name": "amount_share", "agg": "sum", "expr": "amount / (amount + 1)"},
        ],
    ),
)
DIVISION_METRICS = tuple(
    {"name": m["name"], "type": "simple", "type_params": {"measure": m["name"]}}
    for model in DIVISION_MODELS
    for m in model["measures"]
)
# The same values written by hand in DuckDB SQL (the definition dialect's meaning), by month.
BY_HAND = {
    "half_seats": ("accounts", "created_at", "SUM(seats / 2)"),
    "seats_per_bucket": ("accounts", "created_at", "SUM(seats / NULLIF(id % 4, 0))"),
    "amount_thirds": ("invoices", "issued_at", "SUM(amount / 3)"),
    "amount_share": ("invoices", "issued_at", "SUM(amount / (amount + 1))"),
}


@cache
def division_manifest(schema: str = "main") -> Manifest:
    """fixtures/ plus ``DIVISION_MODELS`` and their metrics, the tables in ``schema``."""
    project = load_project(ROOT / "fixtures")
    rows = [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()]
    rows += [("semantic_model", spec["name"], spec, "1.0") for spec in DIVISION_MODELS]
    rows += [("metric", spec["name"], spec, "1.0") for spec in DIVISION_METRICS]
    if schema == "main":
        return build_manifest(rows, release="r1")
    return build_manifest(rows, release="r1", default_schema=schema, schema_map={"main": schema})


def _month_rows(duck: duckdb.DuckDBPyConnection, metric: str) -> list[tuple[Any, ...]]:
    query = MetricQuery(metrics=(metric,), group_by=("metric_time__month",))
    compiled = compile_query(query, division_manifest())
    return sorted(duck.execute(compiled.sql).fetchall(), key=repr)


def test_division_is_cast_to_double_with_a_null_for_a_zero_divisor() -> None:
    """Every ``/`` of a definition becomes real division over a NULLIF'd divisor; a nonzero
    number literal needs no NULLIF; ``//`` (integer division) keeps its meaning, but a zero
    divisor gives NULL there too."""
    tree = definition_expr("amount / quantity", "t")
    assert tree.sql(DEFINITION_DIALECT) == "CAST(t.amount AS DOUBLE) / NULLIF(t.quantity, 0)"
    assert definition_expr("seats / 2", "t").sql() == "CAST(t.seats AS DOUBLE) / 2"
    nested = definition_expr("a / b / 0", "t").sql()
    assert nested == ("CAST(CAST(t.a AS DOUBLE) / NULLIF(t.b, 0) AS DOUBLE) / NULLIF(0, 0)")
    assert definition_expr("a // b", "t").sql(DEFINITION_DIALECT) == "t.a // NULLIF(t.b, 0)"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_dialect_truncates_or_rounds_a_definition_division(dialect: str) -> None:
    """The rendered division casts its dividend to the engine's DOUBLE: no integer division
    (PostgreSQL, Trino, T-SQL, Redshift), no fixed decimals (MariaDB, Snowflake), no kept
    DECIMAL scale (ClickHouse, Spark, BigQuery)."""
    query = MetricQuery(metrics=("half_seats",), group_by=("account_ratio__seat_quarters",))
    sql = compile_query(
        MetricQuery(**{**query.__dict__, "dialect": dialect}), division_manifest()
    ).sql
    double = {
        "postgres": "DOUBLE PRECISION", "redshift": "DOUBLE PRECISION", "tsql": "FLOAT",
        "bigquery": "FLOAT64", "clickhouse": "Float64",
    }.get(dialect, "DOUBLE")  # fmt: skip
    assert f"CAST(account_ratios.seats AS {double}) / 2" in sql, sql
    assert f"CAST(account_ratios.seats AS {double}) / 4" in sql, sql


@pytest.mark.parametrize("metric", sorted(BY_HAND))
def test_measure_division_gives_the_definition_dialects_numbers(
    metric: str, duck: duckdb.DuckDBPyConnection
) -> None:
    """On DuckDB the compiled metric equals the division written by hand (7 / 2 = 3.5, a
    DECIMAL quotient a DOUBLE), the zero divisor's rows left out of the sum."""
    table, time, value = BY_HAND[metric]
    expected = sorted(
        duck.execute(
            f"SELECT date_trunc('month', {time}) AS m, {value} FROM main.{table} GROUP BY 1"
        ).fetchall(),
        key=repr,
    )
    got = _month_rows(duck, metric)
    assert [m for m, _ in got] == [m for m, _ in expected]
    # Sums of DOUBLEs: the last bits depend on the order the engine adds them in.
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-12)
    if metric == "half_seats":
        assert any(value != int(value) for _, value in got), "no odd seat count in the data"
