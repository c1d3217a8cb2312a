"""A source that is a view has no write mark (semantic.result_cache.write_marker_sql): a
DuckDB view's rows need not live in the database file whose stat is the mark (a view over
parquet files changes when the files do). Such a data version is blind to a change that
keeps row counts and newest times, so the result cache and the fan-out guard keep an answer
only TALLY_KEY_PROBE_UNVERSIONED_S (0 here: never), instead of trusting the file's mark."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.manifests import release_resolve
from semantic.result_cache import data_version_detail
from semantic.services import query_execute
from semantic.warehouse.config import parse_warehouse_url
from tally.errors import WarehouseError
from tally.metrics import KEY_PROBES, RESULT_CACHE
from tests.conftest import ROOT

REVENUE = MetricQuery(metrics=("revenue",), group_by=("metric_time__year",))
BY_PLAN = MetricQuery(metrics=("events_tracked",), group_by=("account__plan",))


def hits() -> float:
    return RESULT_CACHE.labels("hit")._value.get()


def probes() -> float:
    return sum(KEY_PROBES.labels(o)._value.get() for o in ("unique", "repeated"))


def sql(path: Path, text: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path))
    try:
        return con.execute(text).fetchall()
    finally:
        con.close()


@pytest.fixture
def warehouse(db: None, tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    settings.TALLY_RESULT_CACHE_TTL_S = 300
    settings.TALLY_RESULT_CACHE_VERSION_S = 0  # the data version is looked at every time
    settings.TALLY_KEY_PROBE_UNVERSIONED_S = 0  # unmarked: nothing is kept
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    return path


def as_view(path: Path, table: str) -> None:
    """Moves ``table``'s rows to ``<table>_rows``; ``table`` becomes a view of them."""
    sql(
        path,
        f"ALTER TABLE {table} RENAME TO {table}_rows; "
        f"CREATE VIEW {table} AS SELECT * FROM {table}_rows",
    )


def test_a_source_that_is_a_view_leaves_the_data_version_unmarked(warehouse: Path) -> None:
    """Bug: on DuckDB every source counted as marked by the database file's stat, a view
    too, though a view's rows need not live in the file (a view over parquet files, were
    external access on, changes with the files and not the database file): its cached
    answers and "key holds" probes were trusted as if every write were seen."""
    assert data_version_detail(release_resolve(None)).writes_seen  # tables: the file marks
    as_view(warehouse, "events")
    assert not data_version_detail(release_resolve(None)).writes_seen


def test_a_view_s_answer_is_not_kept_when_the_unversioned_window_is_zero(
    warehouse: Path,
) -> None:
    """With TALLY_KEY_PROBE_UNVERSIONED_S 0 a query over a view is scanned every time (it
    was served from the result cache, keyed on a version blind to the view's data)."""
    as_view(warehouse, "events")
    first = query_execute(query=REVENUE)
    before = hits()
    assert query_execute(query=REVENUE).rows == first.rows
    assert hits() == before


def test_a_view_s_answer_is_kept_within_the_unversioned_window(
    warehouse: Path, settings: Settings
) -> None:
    """A view is still cached, for TALLY_KEY_PROBE_UNVERSIONED_S (a window far longer than
    the test: no boundary falls between the two queries)."""
    settings.TALLY_KEY_PROBE_UNVERSIONED_S = 10**9
    as_view(warehouse, "events")
    first = query_execute(query=REVENUE)
    before = hits()
    assert query_execute(query=REVENUE).rows == first.rows
    assert hits() == before + 1


def test_the_key_guard_probes_a_view_again_when_the_unversioned_window_is_zero(
    warehouse: Path,
) -> None:
    """The fan-out guard kept its "key holds" answer for an hour (PROBE_TTL_S) at a version
    trusted to mark every write; over a view it is kept TALLY_KEY_PROBE_UNVERSIONED_S."""
    as_view(warehouse, "accounts")
    before = probes()
    query_execute(query=BY_PLAN)
    query_execute(query=BY_PLAN)
    assert probes() == before + 2


def test_a_view_over_parquet_files_is_refused_not_answered(warehouse: Path) -> None:
    """The stale case of a view over parquet (the files rewritten, the database file not)
    cannot reach the cache today: Tally's DuckDB connections have no external access, so
    reading the view fails (a refusal, never an old number). Were that lifted, the view is
    unmarked all the same (test above)."""
    parquet = warehouse.parent / "events.parquet"
    sql(
        warehouse,
        f"COPY events TO '{parquet}' (FORMAT parquet); DROP TABLE events; "
        f"CREATE VIEW events AS SELECT * FROM read_parquet('{parquet}')",
    )
    with pytest.raises(WarehouseError):
        query_execute(query=REVENUE)
