"""The data version (semantic.result_cache) changes on PostgreSQL and MariaDB with every
committed write to a source, including an UPDATE that keeps the row count and the newest
time: the fan-out guard's cached "key holds" answer and the result cache are keyed on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from semantic.result_cache import WRITES, data_version_sql, write_marker_sql
from semantic.warehouse.execute import execute
from tests.conftest import POSTGRES_ADMIN, demo_on_engines, demo_warehouse_at
from tests.integration.test_engines import manifest_for

SHAPE = "SELECT count(*), max(created_at) FROM accounts"
# Changes one account's seats: no row count, no time the version used to see.
UPDATE = "UPDATE accounts SET seats = seats + 1 WHERE id = (SELECT min(id) FROM {table})"


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    source: Path = tmp_path_factory.mktemp("version") / "demo.duckdb"
    demo_warehouse_at(source, events=500, seed=7)
    with demo_on_engines(source, "tally_ver") as loaded:
        yield loaded


def _version_rows(config: Any, schema: str) -> list[list[Any]]:
    sql = data_version_sql(manifest_for(schema), config.dialect)
    assert sql is not None
    return sorted(map(list, execute(config, sql).rows), key=repr)


def _postgres_write(database: str) -> list[Any]:
    admin = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(admin, autocommit=True) as conn:
        before = conn.execute(SHAPE).fetchall()
        conn.execute(UPDATE.format(table="(SELECT * FROM accounts) AS a"))
        # A backend reports its statistics when it next goes idle, at most once a second;
        # this makes the report due, and it is sent before this call returns.
        conn.execute("SELECT pg_stat_force_next_flush()")
        assert conn.execute(SHAPE).fetchall() == before
    return before


def _mariadb_write(database: str) -> None:
    conn = pymysql.connect(host="127.0.0.1", user="root", database=database, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(SHAPE)
            before = cur.fetchall()
            # MariaDB refuses a subquery on the table it updates: a derived table copy.
            cur.execute(UPDATE.format(table="(SELECT * FROM accounts) AS a"))
            cur.execute(SHAPE)
            assert cur.fetchall() == before
    finally:
        conn.close()


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_an_update_keeping_counts_and_times_changes_the_data_version(
    engine: str, engines: dict[str, Any]
) -> None:
    """Bug: the version was row counts and newest times only, so this UPDATE kept it (and a
    cached "key holds" answer with it, up to an hour). Each source table now adds a row of
    the engine's own write mark: PostgreSQL's cumulative row writes, MariaDB's UPDATE_TIME."""
    config, schema = engines[engine]
    before = _version_rows(config, schema)
    marks = [row for row in before if str(row[0]).startswith(WRITES)]
    assert {row[0] for row in marks} >= {f"{WRITES}{schema}.accounts"}, before
    if engine == "postgres":
        _postgres_write(engines["database"])
    else:
        _mariadb_write(engines["database"])
    after = _version_rows(config, schema)
    assert after != before
    unmarked = [row for row in after if not str(row[0]).startswith(WRITES)]
    assert unmarked == [row for row in before if not str(row[0]).startswith(WRITES)]


# Sources whose rows the engine's write mark does not follow, made beside the demo tables.
UNMARKED = {
    "postgres": [
        "CREATE VIEW accounts_view AS SELECT * FROM accounts",
        "CREATE TABLE accounts_split (id BIGINT, seats INT) PARTITION BY RANGE (id)",
        "CREATE TABLE accounts_split_all PARTITION OF accounts_split "
        "FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
        "INSERT INTO accounts_split SELECT id, seats FROM accounts",
    ],
    "mysql": [
        "CREATE VIEW accounts_view AS SELECT * FROM accounts",
        # A table copied by CREATE … SELECT has no UPDATE_TIME until its first write.
        "CREATE TABLE accounts_copy ENGINE=InnoDB AS SELECT * FROM accounts",
    ],
}


def _admin_run(engine: str, database: str, statements: list[str]) -> None:
    if engine == "postgres":
        admin = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{database}"
        with psycopg.connect(admin, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.execute("SELECT pg_stat_force_next_flush()")
        return
    conn = pymysql.connect(host="127.0.0.1", user="root", database=database, autocommit=True)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


@pytest.mark.parametrize("engine", ["postgres", "mysql"])
def test_a_source_whose_rows_the_mark_does_not_follow_has_no_write_mark(
    engine: str, engines: dict[str, Any]
) -> None:
    """Bug: PostgreSQL's partitioned table has a pg_stat_all_tables row whose counters stand
    at 0 (its partitions count the writes) and MariaDB's table without UPDATE_TIME had a
    NULL mark: both counted as marking every write, so the version claimed ``writes_seen``
    while blind to an UPDATE there. No row now (views had none already): the answer is kept
    only TALLY_KEY_PROBE_UNVERSIONED_S."""
    config, schema = engines[engine]
    statements = UNMARKED[engine]
    _admin_run(engine, engines["database"], statements)
    names = [s.split()[2] for s in statements if s.startswith("CREATE")]
    names = [n for n in names if n != "accounts_split_all"]
    relations = [("", schema, name) for name in ["accounts", *names]]
    marker = write_marker_sql(relations, config.dialect).sql(dialect=config.dialect)
    marked = {row[0] for row in execute(config, marker).rows}
    assert marked == {f"{WRITES}{schema}.accounts"}
