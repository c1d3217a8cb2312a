"""Tally's own time spine on ClickHouse (chdb) and Spark (local): built, refreshed by an atomic
swap, left alone when it already holds the range, and read by queries that need it, which
then return DuckDB's rows (DuckDB reading its own Tally spine of the same range).

The engines are the per-process demo warehouses of tests/conftest.py (one chdb directory, one
Spark session); the spine goes into their database ``main`` beside the demo's own
``time_spine``, which the other embedded-engine tests read.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from pytest_django.fixtures import Settings as SettingsWrapper

from registry.services.definitions import definitions_sync
from semantic.compiler.api import compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from semantic.services import query_execute
from semantic.time_spine import time_spine_forget, time_spine_refresh
from semantic.warehouse.config import WarehouseConfig, parse_warehouse_url
from semantic.warehouse.execute import execute
from semantic.warehouse.spine_build import spine_build
from semantic.warehouse.time_spine import (
    SPARK_CONNECT_MESSAGE,
    SPINE_TABLE,
    DayRange,
    TimeSpineError,
    data_range,
    is_tally_spine,
    year_padded,
)
from tests.conformance.normalize import row_sort_key, rows_equal
from tests.conformance.test_conformance import _query
from tests.conftest import ROOT
from tests.integration.test_engines import EXPECTED, _comparable

ENGINES = ["chdb", pytest.param("spark", marks=pytest.mark.xdist_group("spark"))]
RELATION = (None, "main", SPINE_TABLE)
THREE_YEARS = DayRange(dt.date(2024, 1, 1), dt.date(2026, 12, 31))
MOVED = DayRange(dt.date(2025, 7, 1), dt.date(2027, 6, 30))
# A cumulative (all-time: a row per spine month up to the spine's end), a join_to_timespine
# and an offset metric: each reads the spine.
SPINE_CASES = ("cumulative_revenue_by_month", "new_accounts_by_day", "revenue_growth_mom_by_month")


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> WarehouseConfig:
    config: WarehouseConfig = request.getfixturevalue(f"{request.param}_warehouse")
    return config


@pytest.fixture(scope="module")
def tally_spine_manifest(tmp_path_factory: pytest.TempPathFactory) -> Manifest:
    """The fixtures without their time_spine model: the manifest reads Tally's spine."""
    root = tmp_path_factory.mktemp("definitions") / "fixtures"
    shutil.copytree(ROOT / "fixtures", root, ignore=shutil.ignore_patterns("time_spine.yml"))
    rows = []
    for source in (root, ROOT / "tests" / "conformance" / "extra_metrics.yml"):
        project = load_project(source, validate=False)
        rows += [(k, n, o.spec, "1.0") for (k, n), o in project.objects.items()]
    manifest = build_manifest(rows, release="spine", default_schema="main")
    assert is_tally_spine(manifest.time_spine)
    return manifest


def _days(config: WarehouseConfig) -> list[dt.date]:
    rows = execute(config, f"SELECT date_day FROM main.{SPINE_TABLE} ORDER BY date_day").rows
    return [row[0] for row in rows]


def _generation(config: WarehouseConfig) -> str:
    """What a rebuild would change: the table's uuid (chdb), the linked directory (Spark)."""
    if config.engine == "spark":
        assert config.path is not None
        return os.readlink(Path(config.path) / "main" / SPINE_TABLE)
    rows = execute(
        config,
        f"SELECT uuid FROM system.tables WHERE database = 'main' AND name = '{SPINE_TABLE}'",
    ).rows
    return str(rows[0][0])


def _leftovers(config: WarehouseConfig) -> list[str]:
    """Tables (chdb) or generation directories (Spark) beside the spine."""
    if config.engine == "spark":
        assert config.path is not None
        return sorted(p.name for p in (Path(config.path) / "main").glob(f"_{SPINE_TABLE}.*"))
    rows = execute(
        config,
        "SELECT name FROM system.tables WHERE database = 'main' AND name LIKE 'tally_time_spine%'"
        f" AND name != '{SPINE_TABLE}'",
    ).rows
    return [row[0] for row in rows]


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_embedded_spine_is_built_refreshed_and_left_alone(engine: WarehouseConfig) -> None:
    """One row per day of the range as DATE; the same range again rewrites nothing; a new
    range replaces the spine whole, leaving no staging table (Spark: one previous generation,
    kept for queries planned before the swap)."""
    built = spine_build(engine, THREE_YEARS, relation=RELATION, note="range from given")
    assert (built.exists, built.start, built.end, built.rows) == (
        True,
        THREE_YEARS.start,
        THREE_YEARS.end,
        1096,
    )
    days = _days(engine)
    assert days[0] == THREE_YEARS.start and days[-1] == THREE_YEARS.end
    assert all(b - a == dt.timedelta(days=1) for a, b in itertools.pairwise(days))
    assert all(type(day) is dt.date for day in days)
    if engine.engine == "chdb":
        assert built.comment == "Tally time spine 2024-01-01..2026-12-31 (range from given)"
    before = _generation(engine)
    assert spine_build(engine, THREE_YEARS, relation=RELATION, note="range from given") == built
    assert _generation(engine) == before, "a spine holding the range is not rewritten"
    moved = spine_build(engine, MOVED, relation=RELATION)
    assert (moved.start, moved.end, moved.rows) == (MOVED.start, MOVED.end, 730)
    assert _generation(engine) != before
    days = _days(engine)
    assert len(days) == len(set(days)) == 730
    assert len(_leftovers(engine)) == (2 if engine.engine == "spark" else 0), _leftovers(engine)


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_a_reader_sees_a_whole_spine_while_it_is_replaced(engine: WarehouseConfig) -> None:
    """While the spine is moved back and forth, a reader counts all the days of one range."""
    spine_build(engine, THREE_YEARS, relation=RELATION)
    seen: set[object] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                seen.add(
                    int(execute(engine, f"SELECT count(*) FROM main.{SPINE_TABLE}").rows[0][0])
                )
            except Exception as exc:  # a missing table mid-swap is what this test guards
                seen.add(f"error: {exc}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for span in (MOVED, THREE_YEARS):
            spine_build(engine, span, relation=RELATION)
    finally:
        stop.set()
        reader.join()
    assert seen and seen <= {THREE_YEARS.days, MOVED.days}, seen


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_queries_through_tally_spine_equal_duckdb_rows(
    engine: WarehouseConfig,
    embedded_demo: Path,
    tally_spine_manifest: Manifest,
    tmp_path: Path,
) -> None:
    """The data's range read on the engine equals DuckDB's; with Tally's spine built over it
    on both, cumulative, join_to_timespine and offset queries return DuckDB's rows."""
    path = tmp_path / "demo.duckdb"
    shutil.copy(embedded_demo, path)
    duck = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    data = data_range(engine, tally_spine_manifest)
    assert data is not None and data == data_range(duck, tally_spine_manifest)
    span = year_padded(data.start, data.end)
    for config in (duck, engine):
        spine_build(config, span, relation=RELATION, note="range from data")
    for case in SPINE_CASES:
        query = _query(json.loads((EXPECTED / f"{case}.json").read_text())["query"])
        reference = compile_query(query, tally_spine_manifest)
        compiled = compile_query(
            type(query)(**{**query.__dict__, "dialect": engine.dialect}), tally_spine_manifest
        )
        assert SPINE_TABLE in compiled.sql
        expected = _comparable(list(execute(duck, reference.sql).rows), 10)
        got = _comparable(list(execute(engine, compiled.sql, timeout_s=300).rows), 10)
        if not query.order_by:
            expected, got = sorted(expected, key=row_sort_key), sorted(got, key=row_sort_key)
        assert expected, case
        assert rows_equal(expected, got), f"{case}: {expected[:3]} != {got[:3]}\n{compiled.sql}"


@pytest.mark.django_db
@pytest.mark.parametrize("engine", ENGINES, indirect=True)
def test_the_time_spine_service_and_a_query_run_on_the_engine(
    engine: WarehouseConfig, settings: SettingsWrapper, tmp_path: Path
) -> None:
    """`tally time-spine` (the service) builds the spine over the data padded to whole years
    and reports it covering the data; an all-time cumulative query through the query service
    then runs to the spine's last month (MetricFlow's semantics)."""
    settings.WAREHOUSE = engine
    settings.TIME_SPINE_START = settings.TIME_SPINE_END = None
    root = tmp_path / "definitions"
    shutil.copytree(ROOT / "fixtures", root, ignore=shutil.ignore_patterns("time_spine.yml"))
    definitions_sync(root=root, acting_user=None)
    time_spine_forget()
    try:
        status = time_spine_refresh()
        assert status.managed and status.ok, status.warnings
        assert status.planned is not None and status.spine.rows == status.planned.days
        assert (status.spine.start, status.spine.end) == (status.planned.start, status.planned.end)
        answer = query_execute(
            query=MetricQuery(metrics=("cumulative_revenue",), group_by=("metric_time__month",))
        )
        last = max(row[0] for row in answer.rows)
        assert (last.year, last.month) == (status.planned.end.year, 12)
    finally:
        time_spine_forget()


def test_spark_connect_is_refused_a_spine_build() -> None:
    """A cluster's metastore offers no atomic swap Tally relies on: a clear refusal that
    points at dbt's time_spine model, before anything is written."""
    cluster = WarehouseConfig(engine="spark", dialect="spark", host="spark.example", port=15002)
    with pytest.raises(TimeSpineError) as caught:
        spine_build(cluster, THREE_YEARS)
    assert caught.value.code == "unsupported_warehouse"
    assert caught.value.message == SPARK_CONNECT_MESSAGE.format(url=cluster.display_url)
    assert "time_spine" in (caught.value.hint or "")
