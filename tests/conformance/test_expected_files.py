"""The recorded MetricFlow answers (expected/) are complete, well-formed and consistent.

These tests need neither MetricFlow nor a warehouse: they check the files that
scripts/metricflow/record.py wrote against tests/conformance/queries.yml, and the value
normalisation rules that both sides of the comparison share (normalize.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conformance.normalize import (
    normalize_value,
    row_sort_key,
    rows_equal,
    sort_rows,
    values_equal,
)

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "expected"
QUERIES: list[dict[str, Any]] = yaml.safe_load((HERE / "queries.yml").read_text())["queries"]
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def expected(name: str) -> dict[str, Any]:
    return json.loads((EXPECTED / f"{name}.json").read_text())


def test_query_set_shape() -> None:
    names = [query["name"] for query in QUERIES]
    # Big enough to cover every metric type and feature, small enough to record in ~1 min.
    assert 40 <= len(names) <= 120
    assert len(set(names)) == len(names)
    assert all(SNAKE.match(name) for name in names)
    assert all(query.get("description") for query in QUERIES)


def test_every_query_has_exactly_one_expected_file() -> None:
    recorded = {path.stem for path in EXPECTED.glob("*.json")} - {"_meta"}
    assert recorded == {query["name"] for query in QUERIES}


def test_meta_records_versions_and_warehouse() -> None:
    meta = expected("_meta")
    assert meta["versions"]["metricflow"] == "0.213.0"
    assert meta["versions"]["dbt-core"] == "1.11.16"
    assert (meta["warehouse"]["events"], meta["warehouse"]["seed"]) == (20000, 42)
    assert meta["queries"] == len(QUERIES)
    assert meta["mf_wrong"] == sorted(q["name"] for q in QUERIES if q.get("mf_wrong"))


def test_expected_files_stay_small() -> None:
    assert sum(path.stat().st_size for path in EXPECTED.glob("*.json")) < 2_000_000


@pytest.mark.parametrize("query", QUERIES, ids=[q["name"] for q in QUERIES])
def test_expected_file_matches_its_query(query: dict[str, Any]) -> None:
    record = expected(query["name"])
    assert record["query"] == query
    assert record["sql"].strip()
    columns = record["columns"]
    assert len(set(columns)) == len(columns)
    assert record["rows"], "MetricFlow returned no rows"
    for row in [*record["rows"], *record.get("hand_rows", [])]:
        assert len(row) == len(columns)
        assert all(normalize_value(value) == value for value in row)
    if record["ordered_by"]:
        keys = [columns.index(item.lstrip("-")) for item in record["ordered_by"]]
        assert len({tuple(map(repr, (row[i] for i in keys))) for row in record["rows"]}) == len(
            record["rows"]
        )
    else:
        assert record["rows"] == sort_rows(record["rows"])
    if query.get("limit"):
        assert len(record["rows"]) <= query["limit"]


@pytest.mark.parametrize(
    "query", [q for q in QUERIES if q.get("mf_wrong")], ids=lambda q: q["name"]
)
def test_mf_wrong_queries_carry_the_right_answer(query: dict[str, Any]) -> None:
    record = expected(query["name"])
    assert record["hand_sql"].strip()
    assert record["defect"]
    assert not rows_equal(record["hand_rows"], record["rows"])


def test_normalize_value_rules() -> None:
    assert normalize_value(None) is None
    assert normalize_value(True) is True
    assert normalize_value(7) == 7
    assert normalize_value(Decimal("101411.00")) == 101411.0
    assert normalize_value(2 / 3) == 0.6666666667
    assert normalize_value(float("nan")) == "NaN"
    assert normalize_value(dt.datetime(2026, 3, 1)) == "2026-03-01T00:00:00"
    assert normalize_value(dt.datetime(2026, 3, 1, 5, 6, 7, 8)) == "2026-03-01T05:06:07.000008"
    assert normalize_value(dt.date(2026, 3, 1)) == "2026-03-01"


def test_values_equal_is_loose_where_engines_differ() -> None:
    assert values_equal("2026-03-01T00:00:00", "2026-03-01")
    assert not values_equal("2026-03-01T00:00:01", "2026-03-01")
    assert values_equal(3, 3.0)
    assert values_equal(0.6666666667, 2 / 3)
    assert not values_equal(0.6666, 2 / 3)
    assert not values_equal(True, 1)
    assert values_equal(None, None) and not values_equal(None, 0)


def test_rows_sort_with_nulls_last() -> None:
    rows = [[None, 1], ["b", 2], ["a", None], ["a", 1]]
    assert sorted(rows, key=row_sort_key) == [["a", 1], ["a", None], ["b", 2], [None, 1]]
