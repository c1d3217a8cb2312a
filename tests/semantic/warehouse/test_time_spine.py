"""Tally's time spine on real warehouses: built, refreshed in place, refused when asked badly.

Each engine gets a throwaway database (DuckDB file, PostgreSQL database, MariaDB database)
with a unique name, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from semantic.compiler.manifest import Manifest
from semantic.warehouse.config import WarehouseConfig, parse_warehouse_url
from semantic.warehouse.connections import connect
from semantic.warehouse.execute import execute
from semantic.warehouse.spine_build import spine_build
from semantic.warehouse.time_spine import (
    MAX_SPINE_DAYS,
    SPINE_TABLE,
    START_AFTER_END_MESSAGE,
    UNSUPPORTED_MESSAGE,
    DayRange,
    TimeSpineError,
    data_range,
    spine_read,
)
from tally.errors import WarehouseError
from tests.conftest import ROOT, require_service

ENGINES = ("duckdb", "postgres", "mysql")
THREE_YEARS = DayRange(dt.date(2024, 1, 1), dt.date(2026, 12, 31))


def _admin(url: str) -> WarehouseConfig:
    # Building the spine creates schemas and tables, as an operator's `tally time-spine
    # build` does: the superuser override is explicit (queries use the read-only role).
    return dataclasses.replace(parse_warehouse_url(url, base_dir=ROOT), allow_privileged=True)


@pytest.fixture(params=ENGINES)
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[WarehouseConfig, tuple[str | None, str, str]]]:
    """(config, spine relation) in an empty, uniquely named database of each engine."""
    name = f"tally_spine_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    if request.param == "duckdb":
        path = tmp_path / f"{name}.duckdb"
        duckdb.connect(str(path)).close()
        yield parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT), (None, "main", SPINE_TABLE)
        return
    if request.param == "postgres":
        require_service("postgres")
        import psycopg

        admin = "postgresql://postgres@127.0.0.1:5432/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = f"postgresql://postgres@127.0.0.1:5432/{name}"
            # "main", as the manifest names it: the build creates the schema when missing.
            yield _admin(url), (None, "main", SPINE_TABLE)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    require_service("mariadb")
    import pymysql

    maria = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    maria.cursor().execute(f"CREATE DATABASE `{name}`")
    try:
        url = f"mysql://root@127.0.0.1:3306/{name}"
        yield _admin(url), (None, name, SPINE_TABLE)
    finally:
        maria.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        maria.close()


def _days(config: WarehouseConfig, relation: tuple[str | None, str, str]) -> list[dt.date]:
    table = ".".join(p for p in relation if p)
    rows = execute(config, f"SELECT date_day FROM {table} ORDER BY date_day").rows
    return [row[0] for row in rows]


def test_spine_is_built_with_one_row_per_day_of_the_range(warehouse: tuple) -> None:
    """A missing spine is created holding every day of the range once, in a DATE column."""
    config, relation = warehouse
    assert not spine_read(config, relation).exists
    built = spine_build(config, THREE_YEARS, relation=relation, note="range from given")
    assert (built.exists, built.start, built.end, built.rows) == (
        True,
        THREE_YEARS.start,
        THREE_YEARS.end,
        1096,
    )
    days = _days(config, relation)
    assert days[0] == THREE_YEARS.start and days[-1] == THREE_YEARS.end
    assert all(b - a == dt.timedelta(days=1) for a, b in itertools.pairwise(days))
    assert all(type(day) is dt.date for day in days)
    assert built.comment == "Tally time spine 2024-01-01..2026-12-31 (range from given)"


def test_rebuilding_with_the_same_range_changes_nothing(warehouse: tuple) -> None:
    """Refresh is idempotent: the same range twice gives the same rows and no leftovers."""
    config, relation = warehouse
    first = spine_build(config, THREE_YEARS, relation=relation)
    second = spine_build(config, THREE_YEARS, relation=relation)
    assert first == second
    assert len(_days(config, relation)) == 1096
    tables = execute(
        config,
        # This test's own schema: on MariaDB the other databases are other tests' (xdist).
        f"SELECT table_name FROM information_schema.tables WHERE table_name LIKE "
        f"'{SPINE_TABLE}%' AND table_schema = '{relation[1]}'",
    ).rows
    assert [row[0] for row in tables] == [SPINE_TABLE], "no staging table is left behind"


def test_refresh_moves_the_range_in_place(warehouse: tuple) -> None:
    """A new range deletes the days outside it and adds the missing ones."""
    config, relation = warehouse
    spine_build(config, THREE_YEARS, relation=relation)
    moved = spine_build(
        config, DayRange(dt.date(2025, 7, 1), dt.date(2027, 6, 30)), relation=relation
    )
    assert (moved.start, moved.end, moved.rows) == (dt.date(2025, 7, 1), dt.date(2027, 6, 30), 730)
    days = _days(config, relation)
    assert len(days) == len(set(days)) == 730


def test_a_one_day_spine_is_allowed(warehouse: tuple) -> None:
    """start == end is one row, not an error (the MySQL digit series handles one offset)."""
    config, relation = warehouse
    day = dt.date(2024, 2, 29)
    built = spine_build(config, DayRange(day, day), relation=relation)
    assert (built.start, built.end, built.rows) == (day, day, 1)


def test_start_after_end_is_refused_before_touching_the_warehouse() -> None:
    """A reversed range is a user error naming both days, not a warehouse error."""
    nowhere = WarehouseConfig(engine="duckdb", dialect="duckdb", path="/nonexistent/wh.duckdb")
    with pytest.raises(TimeSpineError) as caught:
        spine_build(nowhere, DayRange(dt.date(2026, 1, 1), dt.date(2025, 1, 1)))
    assert caught.value.code == "bad_time_spine_range"
    assert caught.value.message == START_AFTER_END_MESSAGE.format(
        start="2026-01-01", end="2025-01-01"
    )
    assert caught.value.http_status == 400


def test_an_implausibly_large_range_is_refused() -> None:
    """A typo'd year cannot fill the warehouse with a million days."""
    nowhere = WarehouseConfig(engine="duckdb", dialect="duckdb", path="/nonexistent/wh.duckdb")
    with pytest.raises(TimeSpineError) as caught:
        spine_build(nowhere, DayRange(dt.date(2024, 1, 1), dt.date(2804, 1, 1)))
    assert caught.value.code == "time_spine_too_large"
    assert str(MAX_SPINE_DAYS) in caught.value.message


def test_an_unsupported_warehouse_is_refused() -> None:
    """Snowflake and friends get a clear error pointing at dbt's time_spine model."""
    snowflake = WarehouseConfig(engine="snowflake", dialect="snowflake", host="acme")
    for call in (
        lambda: spine_build(snowflake, THREE_YEARS),
        lambda: spine_read(snowflake, (None, "main", SPINE_TABLE)),
    ):
        with pytest.raises(TimeSpineError) as caught:
            call()
        assert caught.value.code == "unsupported_warehouse"
        assert caught.value.message == UNSUPPORTED_MESSAGE.format(engine="snowflake")
        assert "time_spine" in (caught.value.hint or "")


def test_data_range_is_min_and_max_over_every_agg_time_dimension(
    manifest: Manifest, warehouse_path: Path
) -> None:
    """The default range comes from every measure's agg_time_dimension, including the
    nullable ones (ended_at, paid_at, churned_at), read with one query."""
    config = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    columns = {
        "subscriptions": ("started_at", "ended_at"),
        "events": ("occurred_at",),
        "users": ("signed_up_at",),
        "invoices": ("issued_at", "paid_at"),
        "accounts": ("created_at", "churned_at"),
    }
    union = " UNION ALL ".join(
        f"SELECT CAST({column} AS DATE) AS d FROM {table}"
        for table, names in columns.items()
        for column in names
    )
    con = duckdb.connect(str(warehouse_path), read_only=True)
    ((low, high),) = con.execute(f"SELECT min(d), max(d) FROM ({union})").fetchall()
    con.close()
    assert data_range(config, manifest) == DayRange(low, high)


def test_a_failed_refresh_leaves_the_previous_spine_whole(warehouse: tuple) -> None:
    """Delete-outside and insert-missing are one transaction: when the insert fails (here a
    CHECK constraint refuses 2027), the days already deleted come back."""
    config, relation = warehouse
    table = ".".join(p for p in relation if p)
    if config.engine == "postgresql":
        execute_ddl(config, "CREATE SCHEMA IF NOT EXISTS main")
    execute_ddl(
        config,
        f"CREATE TABLE {table} (date_day DATE NOT NULL PRIMARY KEY "
        "CHECK (date_day < DATE '2027-01-01'))",
    )
    spine_build(config, THREE_YEARS, relation=relation)
    with pytest.raises(WarehouseError):
        spine_build(config, DayRange(dt.date(2025, 7, 1), dt.date(2027, 6, 30)), relation=relation)
    after = spine_read(config, relation)
    assert (after.start, after.end, after.rows) == (THREE_YEARS.start, THREE_YEARS.end, 1096)


def test_a_concurrent_reader_sees_no_spine_or_a_whole_one(warehouse: tuple) -> None:
    """While the spine is created and then moved back and forth, a reader on another
    connection counts either nothing (not created yet) or all the days of one range."""
    config, relation = warehouse
    table = ".".join(p for p in relation if p)
    moved = DayRange(dt.date(2025, 7, 1), dt.date(2027, 6, 30))
    seen: set[object] = set()
    stop = threading.Event()

    def read() -> None:
        conn = connect(config)
        try:
            while not stop.is_set():
                try:
                    cur = conn.cursor()
                    cur.execute(f"SELECT count(*) FROM {table}")
                    seen.add(int(cur.fetchone()[0]))
                    if config.engine != "duckdb":
                        conn.commit()  # a fresh snapshot for the next count
                except Exception:
                    seen.add("missing")
                    with contextlib.suppress(Exception):
                        conn.rollback()
        finally:
            conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for span in (THREE_YEARS, moved, THREE_YEARS, moved):
            spine_build(config, span, relation=relation)
    finally:
        stop.set()
        reader.join()
    assert seen <= {"missing", THREE_YEARS.days, moved.days}, seen
    assert seen & {THREE_YEARS.days, moved.days}


def execute_ddl(config: WarehouseConfig, sql: str) -> None:
    conn = connect(config)
    try:
        conn.cursor().execute(sql)
        conn.commit()
    finally:
        conn.close()
