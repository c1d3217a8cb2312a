"""`tally time-spine [--start D] [--end D] [--check]` as a user runs it (real subprocesses,
a demo warehouse, definitions without a dbt time_spine model so Tally maintains its own)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, demo_warehouse_at, run_tally

pytestmark = pytest.mark.registry_db


@pytest.fixture
def env(migrated_registry_url: str, tmp_path: Path) -> dict[str, str]:
    definitions = tmp_path / "definitions"
    shutil.copytree(ROOT / "fixtures", definitions, ignore=shutil.ignore_patterns("time_spine.yml"))
    env = {
        "DATABASE_URL": migrated_registry_url,
        "WAREHOUSE_URL": f"duckdb:///{tmp_path / 'wh.duckdb'}",
        "TALLY_TIME_SPINE_START": "",
        "TALLY_TIME_SPINE_END": "",
    }
    demo_warehouse_at(tmp_path / "wh.duckdb", events=3000, seed=7)
    result = run_tally("sync", str(definitions), env=env)
    assert result.returncode == 0, result.stderr
    return env


def test_check_build_and_check_again(env: dict[str, str]) -> None:
    """--check fails while the spine is missing, a plain run builds it over whole years of
    the data and prints range and rows, and --check then passes; a rerun changes nothing."""
    missing = run_tally("time-spine", "--check", env=env)
    assert missing.returncode == 1, missing.stderr
    assert "time spine main.tally_time_spine (date_day, day grain), maintained by Tally" in (
        missing.stdout
    )
    assert "range: missing" in missing.stdout
    assert "warning: the time spine main.tally_time_spine does not exist" in missing.stderr

    built = run_tally("time-spine", env=env)
    assert built.returncode == 0, built.stderr
    line = next(x for x in built.stdout.splitlines() if x.startswith("range "))
    start, end = line.split()[1].split("..")
    rows = int(line.split("(")[1].split()[0])
    assert start.endswith("-01-01") and end.endswith("-12-31")
    days = (dt.date.fromisoformat(end) - dt.date.fromisoformat(start)).days + 1
    assert rows == days
    assert ": covered" in built.stdout and "warning" not in built.stderr

    again = run_tally("time-spine", "--check", env=env)
    assert again.returncode == 0, again.stderr
    assert line in again.stdout

    query = run_tally(
        "query", "--metrics", "cumulative_revenue", "--group-by", "metric_time__year",
        "--format", "json", env=env,
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    years = [row[0][:4] for row in json.loads(query.stdout)["rows"]]
    assert max(years) == end[:4], "all-time cumulative runs to the spine's end"


def test_flags_settings_and_bad_input(env: dict[str, str]) -> None:
    """The setting gives the range, flags override it; bad dates and reversed ranges exit
    non-zero with one clear line, never a traceback."""
    configured = {
        **env,
        "TALLY_TIME_SPINE_START": "2020-01-01",
        "TALLY_TIME_SPINE_END": "2030-12-31",
    }
    result = run_tally("time-spine", env=configured)
    assert result.returncode == 0, result.stderr
    assert "range 2020-01-01..2030-12-31 (4018 rows)" in result.stdout

    result = run_tally("time-spine", "--start", "2022-01-01", env=configured)
    assert result.returncode == 0, result.stderr
    assert "range 2022-01-01..2030-12-31 (3287 rows)" in result.stdout
    assert "start from given, end from TALLY_TIME_SPINE_END" in result.stdout

    result = run_tally("time-spine", "--start", "2026-01-01", "--end", "2025-01-01", env=env)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "end: error[bad_time_spine_range]: the time spine's start 2026-01-01 is after its end 2025-01-01"
    )

    result = run_tally("time-spine", "--start", "first-of-may", env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "'first-of-may' is not a date (use YYYY-MM-DD)" in result.stderr

    result = run_tally("time-spine", env={**env, "TALLY_TIME_SPINE_START": "2024-02-30"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "tally: configuration error: TALLY_TIME_SPINE_START: '2024-02-30' is not a date "
        "(hint: use YYYY-MM-DD)"
    )
