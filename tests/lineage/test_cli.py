"""`tally lineage …` and `tally impact` as a user runs them (real subprocesses, real registry)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_tally

pytestmark = pytest.mark.registry_db

SQL_MODELS = ROOT / "tests" / "lineage" / "data" / "sql_models"


@pytest.fixture
def env(registry_url: str, tmp_path: Path) -> dict[str, str]:
    env = {"DATABASE_URL": registry_url, "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}"}
    for args in (("migrate", "-v0"), ("sync", str(ROOT / "fixtures"))):
        result = run_tally(*args, env=env)
        assert result.returncode == 0, result.stderr
    return env


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
    registry_url: str, tmp_path: Path, lineage_warehouse_path: Path
) -> None:
    """`tally trace ID` after `tally compute`: the report, --rows as JSON, and exit 1 with
    the error for an id that does not exist."""
    import shutil

    warehouse = tmp_path / "wh.duckdb"
    shutil.copyfile(lineage_warehouse_path, warehouse)
    env = {"DATABASE_URL": registry_url, "WAREHOUSE_URL": f"duckdb:///{warehouse}"}
    for args in (
        ("migrate", "-v0"),
        ("sync", str(ROOT / "fixtures")),
        ("compute", "revenue", "--start", "2026-09-01", "--end", "2026-09-02"),
    ):
        result = run_tally(*args, env=env)
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
