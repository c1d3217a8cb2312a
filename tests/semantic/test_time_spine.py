"""Time spine services on a real registry and a real DuckDB warehouse: which spine a release
reads, the range Tally builds (arguments, then settings, then the data padded to whole years),
the project's own dbt spine left alone, and queries that build Tally's spine on first use."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.services import query_execute
from semantic.time_spine import time_spine_refresh, time_spine_status
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.time_spine import (
    PROJECT_SPINE_MESSAGE,
    DayRange,
    TimeSpineError,
    TimeSpineOwnedByProject,
)
from tally.errors import WarehouseError
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def wh(tmp_path: Path, warehouse_path: Path, settings: SettingsWrapper) -> Path:
    """A private copy of the demo warehouse (it has the demo's own `time_spine`, not Tally's)."""
    path = tmp_path / "wh.duckdb"
    shutil.copy(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    settings.TIME_SPINE_START = None
    settings.TIME_SPINE_END = None
    return path


@pytest.fixture
def no_spine_release(tmp_path: Path, wh: Path) -> str:
    """r1: the fixtures without their time_spine model, so the release reads Tally's spine."""
    root = tmp_path / "definitions"
    shutil.copytree(ROOT / "fixtures", root, ignore=shutil.ignore_patterns("time_spine.yml"))
    definitions_sync(root=root, acting_user=None)
    return "r1"


def _data_bounds(path: Path) -> tuple[dt.date, dt.date]:
    con = duckdb.connect(str(path), read_only=True)
    ((low, high),) = con.execute(
        "SELECT min(d), max(d) FROM (SELECT CAST(occurred_at AS DATE) AS d FROM events "
        "UNION ALL SELECT CAST(issued_at AS DATE) FROM invoices "
        "UNION ALL SELECT CAST(paid_at AS DATE) FROM invoices "
        "UNION ALL SELECT CAST(created_at AS DATE) FROM accounts "
        "UNION ALL SELECT CAST(churned_at AS DATE) FROM accounts "
        "UNION ALL SELECT CAST(signed_up_at AS DATE) FROM users "
        "UNION ALL SELECT CAST(started_at AS DATE) FROM subscriptions "
        "UNION ALL SELECT CAST(ended_at AS DATE) FROM subscriptions)"
    ).fetchall()
    con.close()
    return low, high


def _has_table(path: Path, name: str) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return bool(
            con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
            ).fetchone()[0]
        )
    finally:
        con.close()


def test_status_reports_a_missing_tally_spine(no_spine_release: str, wh: Path) -> None:
    """Before any build, status names Tally's table, says it is missing, and the range a
    refresh would build; it writes nothing."""
    status = time_spine_status()
    assert (status.table, status.managed, status.spine.exists) == (
        "main.tally_time_spine",
        True,
        False,
    )
    assert not status.ok and "does not exist" in status.warnings[0]
    low, high = _data_bounds(wh)
    assert status.data == DayRange(low, high)
    assert status.planned == DayRange(dt.date(low.year, 1, 1), dt.date(high.year, 12, 31))
    assert status.planned_from == "range from data"
    assert not _has_table(wh, "tally_time_spine")


def test_refresh_covers_the_data_padded_to_whole_years(no_spine_release: str, wh: Path) -> None:
    """With no flags and no settings the spine runs from January 1 of the data's first year
    to December 31 of its last, one row per day."""
    low, high = _data_bounds(wh)
    status = time_spine_refresh()
    spine = status.spine
    assert (spine.start, spine.end) == (dt.date(low.year, 1, 1), dt.date(high.year, 12, 31))
    assert spine.rows == DayRange(spine.start, spine.end).days
    assert status.ok and status.warnings == ()
    assert time_spine_status().ok


def test_settings_give_the_range_and_arguments_override_them(
    no_spine_release: str, settings: SettingsWrapper
) -> None:
    """TALLY_TIME_SPINE_START/END set the range; --start/--end win over them, bound by bound."""
    settings.TIME_SPINE_START = dt.date(2015, 1, 1)
    settings.TIME_SPINE_END = dt.date(2035, 12, 31)
    status = time_spine_refresh()
    assert (status.spine.start, status.spine.end) == (dt.date(2015, 1, 1), dt.date(2035, 12, 31))
    assert status.spine.comment == (
        "Tally time spine 2015-01-01..2035-12-31 "
        "(start from TALLY_TIME_SPINE_START, end from TALLY_TIME_SPINE_END)"
    )
    status = time_spine_refresh(start=dt.date(2020, 6, 1))
    assert (status.spine.start, status.spine.end) == (dt.date(2020, 6, 1), dt.date(2035, 12, 31))
    assert status.planned_from == "start from given, end from TALLY_TIME_SPINE_END"


def test_a_spine_that_stops_before_the_data_is_reported_as_not_covering(
    no_spine_release: str,
) -> None:
    """A range narrower than the data builds (it was asked for) but status says what is
    missed, and the check fails."""
    status = time_spine_refresh(start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 31))
    assert status.spine.rows == 31
    assert not status.covers_data and not status.ok
    assert any("miss the days outside it" in w for w in status.warnings)


def test_start_after_end_is_refused_before_reading_the_warehouse(no_spine_release: str) -> None:
    """A reversed range is a 400-class error naming both days."""
    with pytest.raises(TimeSpineError) as caught:
        time_spine_refresh(start=dt.date(2026, 1, 1), end=dt.date(2025, 1, 1))
    assert caught.value.code == "bad_time_spine_range" and caught.value.location == "end"


def test_a_project_defined_spine_is_left_alone_and_reported(wh: Path) -> None:
    """With the fixtures' own `time_spine` model Tally builds nothing: refresh is refused
    (409), status reports the project's table and its range, covering the data."""
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    with pytest.raises(TimeSpineOwnedByProject) as caught:
        time_spine_refresh()
    assert caught.value.http_status == 409
    assert caught.value.message == PROJECT_SPINE_MESSAGE.format(table="main.time_spine")
    status = time_spine_status()
    assert (status.table, status.managed, status.planned) == ("main.time_spine", False, None)
    assert status.spine.exists and status.spine.rows > 300 and status.ok
    assert not _has_table(wh, "tally_time_spine")


def test_a_project_spine_that_does_not_cover_the_data_is_warned_about(wh: Path) -> None:
    """The project's spine is checked too: cut short, status warns and is not ok."""
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    con = duckdb.connect(str(wh))
    con.execute(
        "DELETE FROM time_spine WHERE date_day > (SELECT min(date_day) + 30 FROM time_spine)"
    )
    con.close()
    status = time_spine_status()
    assert status.spine.rows == 31 and not status.covers_data and not status.ok
    assert "main.time_spine covers" in status.warnings[0]


def _rows(release: str, metric: str, grain: str) -> dict[object, object]:
    answer = query_execute(
        query=MetricQuery(metrics=(metric,), group_by=(f"metric_time__{grain}",)),
        release_ref=release,
    )
    return {row[0]: row[1] for row in answer.rows}


@pytest.mark.parametrize(
    ("metric", "grain", "to_spine_end"),
    [
        ("cumulative_revenue", "month", True),
        ("new_accounts", "day", True),
        ("revenue_month_to_date", "day", False),
    ],
)
def test_queries_through_tally_spine_build_it_and_match_the_demo_spine(
    no_spine_release: str, wh: Path, metric: str, grain: str, to_spine_end: bool
) -> None:
    """All-time cumulative, join_to_timespine (fill_nulls_with) and grain-to-date metrics:
    the first query builds Tally's spine, and every period both spines cover has the same
    value as through the demo's own spine (r2 = the fixtures with their time_spine model)."""
    assert not _has_table(wh, "tally_time_spine")
    ours = _rows(no_spine_release, metric, grain)
    assert _has_table(wh, "tally_time_spine")
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    theirs = _rows("r2", metric, grain)
    con = duckdb.connect(str(wh), read_only=True)
    (last_demo_day,) = con.execute("SELECT max(date_day) FROM time_spine").fetchone()
    con.close()
    # A period the demo spine covers only partly (its last month) ends on a different day.
    last_month = last_demo_day.replace(day=1)
    shared = [p for p in theirs if p in ours and (grain == "day" or p.date() < last_month)]
    assert len(shared) > 20
    assert {p: ours[p] for p in shared} == {p: theirs[p] for p in shared}
    # All-time cumulative and join_to_timespine emit a row per spine period up to the spine's
    # end (MetricFlow's semantics): Tally's runs to December 31, past the demo's last day.
    assert (max(ours) > max(theirs)) is to_spine_end


def test_a_query_builds_the_spine_from_settings_without_scanning_the_data(
    no_spine_release: str, wh: Path, settings: SettingsWrapper
) -> None:
    """With both settings, the first query builds the spine from them alone: a model table
    the query does not read may even be missing."""
    settings.TIME_SPINE_START = dt.date(2023, 1, 1)
    settings.TIME_SPINE_END = dt.date(2027, 12, 31)
    con = duckdb.connect(str(wh))
    con.execute("DROP TABLE users")
    con.close()
    months = _rows(no_spine_release, "cumulative_revenue", "month")
    assert max(months).date() == dt.date(2027, 12, 1)
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("SELECT min(date_day), max(date_day) FROM tally_time_spine").fetchone() == (
        dt.date(2023, 1, 1),
        dt.date(2027, 12, 31),
    )
    con.close()


def test_a_query_that_cannot_read_the_data_range_says_why(no_spine_release: str, wh: Path) -> None:
    """Without settings the first query needs the data's range; a missing model table is
    reported as that, with the settings as the way out (not a bare "table not found")."""
    con = duckdb.connect(str(wh))
    con.execute("DROP TABLE users")
    con.close()
    with pytest.raises(WarehouseError) as caught:
        _rows(no_spine_release, "cumulative_revenue", "month")
    assert caught.value.message.startswith(
        "cannot read the data's range to build the time spine main.tally_time_spine: "
    )
    assert "TALLY_TIME_SPINE_START" in (caught.value.hint or "")


def test_reconcile_audit_builds_a_missing_spine_before_recomputing(
    no_spine_release: str, wh: Path
) -> None:
    """Bug: the reconcile audit ran compiled SQL without the time-spine check every other
    executor makes, so a stored join_to_timespine value whose spine had gone (a rebuilt
    warehouse) was reported as a warehouse error instead of being recomputed."""
    from semantic.jobs.audits import audit_run
    from semantic.jobs.compute import compute_run_create, compute_run_execute
    from semantic.time_spine import time_spine_forget

    run = compute_run_create(
        metrics=["new_accounts"], start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 5),
        enqueue=False, acting_user=None,
    )  # fmt: skip
    compute_run_execute(run_id=run.pk)
    con = duckdb.connect(str(wh))
    con.execute("DROP TABLE tally_time_spine")
    con.close()
    time_spine_forget()
    results = audit_run(metrics=["new_accounts"], checks=("reconcile",))
    assert results and {r.status for r in results} == {"pass"}
    assert _has_table(wh, "tally_time_spine")
