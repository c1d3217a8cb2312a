"""`tally lineage …` and `tally impact` as a user runs them (real subprocesses, real registry)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_tally

pytestmark = pytest.mark.registry_db

SQL_MODELS = ROOT / "tests" / "lineage" / "data" / "sql_models"


@pytest.fixture
def env(synced_registry_url: str, tmp_path: Path) -> dict[str, str]:
    # `tally migrate` and `tally sync fixtures/`, as copied (the tests write to the registry).
    return {
        "DATABASE_URL": synced_registry_url,
        "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}",
    }


def test_impact_of_events_revenue_lists_metrics_and_owners(env: dict[str, str]) -> None:
    """The issue's done-when: `tally impact events.revenue` names every affected metric and owner;
    a typo exits 1 with did-you-mean."""
    result = run_tally("impact", "events.revenue", env=env)
    assert result.returncode == 0, result.stderr
    assert "metric:tracked_revenue@1.0  (pinned in r1)" in result.stdout
    assert "owners to notify: product-analytics" in result.stdout
    typo = run_tally("impact", "events.revenu", env=env)
    assert typo.returncode == 1
    assert "error[unknown_node]: no lineage node 'events.revenu'" in typo.stderr
    assert "hint: did you mean column:main.events.revenue" in typo.stderr


def test_import_sql_then_upstream_reaches_raw_columns(env: dict[str, str]) -> None:
    """After importing the SQL that builds main.events, a metric's upstream ends at raw columns."""
    imported = run_tally("lineage", "import-sql", str(SQL_MODELS), "--dialect", "duckdb", env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("2 model(s):")
    result = run_tally("lineage", "upstream", "tracked_revenue", env=env)
    assert result.returncode == 0, result.stderr
    assert "column raw.tracking_events.amount_cents" in result.stdout
    assert "← [filters_by, indirect] column raw.tracking_events.event_name" in result.stdout
    path = run_tally(
        "lineage",
        "path",
        "raw.tracking_events.amount_cents",
        "tracked_revenue",
        "--format",
        "json",
        env=env,
    )
    assert path.returncode == 0, path.stderr
    hops = json.loads(path.stdout)
    assert hops[0]["node"] == "column:raw.tracking_events.amount_cents"
    assert hops[-1]["node"] == "metric:tracked_revenue@1.0"


def test_trace_of_a_computed_value(
    synced_registry_url: str, tmp_path: Path, lineage_warehouse_path: Path
) -> None:
    """`tally trace ID` after `tally compute`: the report, --rows as JSON, and exit 1 with
    the error for an id that does not exist."""
    import shutil

    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(lineage_warehouse_path, warehouse)
    env = {"DATABASE_URL": synced_registry_url, "WAREHOUSE_URL": f"duckdb:///{warehouse}"}
    result = run_tally(
        "compute", "revenue", "--start", "2026-09-01", "--end", "2026-09-02", env=env
    )
    assert result.returncode == 0, result.stderr
    report = run_tally("trace", "1", env=env)
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith("value 1: revenue@1.0 = ")
    assert "drill-down [value] revenue: sum of invoice_amount on main.invoices" in report.stdout
    rows = run_tally("trace", "1", "--rows", "--limit", "1", "--format", "json", env=env)
    assert rows.returncode == 0, rows.stderr
    (drill,) = json.loads(rows.stdout)["drilldown"]
    assert len(drill["rows"]) == 1 and drill["columns"][0] == "measure_value"
    missing = run_tally("trace", "999", env=env)
    assert missing.returncode == 1
    assert "error[unknown_value]: no stored value with id 999" in missing.stderr


def test_import_dbt_orders_by_refs_and_influences_lists_raw_columns(env: dict[str, str]) -> None:
    """Issue #21's done-when: after `import-dbt`, the `orders` columns trace back through
    `order_items` to the raw tables; `influences` gives them as one set."""
    manifest = ROOT / "tests" / "lineage" / "data" / "dbt_shop" / "manifest.json"
    imported = run_tally("lineage", "import-dbt", str(manifest), env=env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("6 model(s):")
    found = run_tally("lineage", "influences", "shop.main.orders.order_cost", env=env)
    assert found.returncode == 0, found.stderr
    columns = found.stdout.split()
    assert "column:shop.main.order_items.supply_cost" in columns
    assert "column:shop.raw.raw_supplies.cost" in columns
    assert "column:shop.raw.raw_supplies.sku" in columns  # a join key: indirect
    direct = run_tally(
        "lineage", "influences", "shop.main.orders.order_cost", "--direct-only",
        "--format", "json", env=env,
    )  # fmt: skip
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout) == [
        "column:shop.main.order_items.supply_cost",
        "column:shop.main.stg_supplies.supply_cost",
        "column:shop.raw.raw_supplies.cost",
    ]


def test_import_sql_reports_a_statement_it_cannot_read_and_keeps_the_rest(
    env: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "load.sql").write_text(
        "CREATE TABLE mart.a AS SELECT id FROM raw.s;\nSELECT (1 FROM;\n"
        "CREATE TABLE mart.b AS SELECT id FROM mart.a;\n"
    )
    result = run_tally("lineage", "import-sql", str(tmp_path), env=env)
    assert result.returncode == 0, result.stderr
    assert "2 column edge(s)" in result.stdout and "1 statement(s) skipped" in result.stdout
    assert f"{tmp_path / 'load.sql'}:2: warning[statement_skipped]: statement not parsed" in (
        result.stderr
    )
