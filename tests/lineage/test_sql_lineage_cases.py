"""Every construct of the SQL lineage suite gives exactly its expected column edges."""

from __future__ import annotations

import pytest

from lineage.sql_cases import SqlCase, case_edges, load_cases

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sql_case_gives_expected_edges(case: SqlCase) -> None:
    """Direct and indirect edges equal the case's expectation (missing and extra both fail)."""
    found = case_edges(case)
    missing = sorted(case.expected - found)
    extra = sorted(found - case.expected)
    assert (missing, extra) == ([], []), f"missing={missing} extra={extra}"


def test_suite_covers_every_dialect_with_quirks() -> None:
    dialects = {c.dialect for c in CASES}
    assert {
        "duckdb",
        "snowflake",
        "bigquery",
        "spark",
        "databricks",
        "tsql",
        "postgres",
    } <= dialects
