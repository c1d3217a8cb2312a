"""`catalog.json` (from `dbt docs generate`) gives the real columns, so `SELECT *` over a source
the project documents no columns for still expands (issue #21)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lineage.sql_lineage import (
    SqlLineageError,
    dbt_catalog_schema,
    dbt_schema,
    models_from_dbt_manifest,
    project_edges,
)
from tests.conftest import ROOT

DATA = ROOT / "tests" / "lineage" / "data" / "dbt_catalog"


def test_catalog_columns_come_in_warehouse_order() -> None:
    assert dbt_catalog_schema(DATA / "catalog.json") == {
        "shop.raw.payments": ["id", "order_id", "method", "amount"]
    }


def test_star_over_a_source_expands_against_the_catalog() -> None:
    """Without the catalog, `payments_by_method.total` still reaches `amount` through the
    stars by name; with it, every column of stg_payments is known and traced."""
    models = models_from_dbt_manifest(DATA / "manifest.json")
    edges = {e.key for e in project_edges(models, schema=dbt_schema(DATA / "manifest.json"))}
    assert ("shop.raw.payments.order_id", "shop.main.stg_payments.order_id", "direct") in edges
    assert (
        "shop.main.stg_payments.amount",
        "shop.main.payments_by_method.total",
        "direct",
    ) in edges
    bare = {e.key for e in project_edges(models, schema={})}
    assert ("shop.raw.payments.*", "shop.main.stg_payments.*", "direct") in bare


def test_catalog_is_found_beside_the_manifest_or_given(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text((DATA / "manifest.json").read_text())
    assert dbt_schema(manifest) == {}
    assert "shop.raw.payments" in dbt_schema(manifest, DATA / "catalog.json")


def test_a_file_that_is_not_a_catalog_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.json"
    bad.write_text(json.dumps([1, 2]))
    with pytest.raises(SqlLineageError) as err:
        dbt_catalog_schema(bad)
    assert err.value.code == "bad_catalog" and "dbt docs generate" in (err.value.hint or "")
