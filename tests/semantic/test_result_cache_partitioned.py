"""The result cache over a PostgreSQL warehouse whose invoices table is partitioned.

A partitioned table's own row in pg_stat_all_tables stands at 0 writes (its partitions count
them), so it is no write mark (semantic.result_cache.write_marker_sql): an UPDATE that keeps
the row count and the newest time must not be answered from the cache as if the data were
unchanged (TALLY_KEY_PROBE_UNVERSIONED_S 0 here: an unmarked answer is never kept).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.manifests import release_resolve
from semantic.result_cache import data_version_detail
from semantic.services import query_execute
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.loader import copy_duckdb_tables
from tally.metrics import RESULT_CACHE
from tests.conftest import POSTGRES_ADMIN, ROOT, postgres_reader_url, require_service

REVENUE = MetricQuery(metrics=("revenue",), group_by=("metric_time__year",))
PARTITION = (
    "CREATE TABLE main.invoices_split (LIKE main.invoices) PARTITION BY RANGE (issued_at); "
    "CREATE TABLE main.invoices_split_all PARTITION OF main.invoices_split DEFAULT; "
    "INSERT INTO main.invoices_split SELECT * FROM main.invoices; DROP TABLE main.invoices; "
    "ALTER TABLE main.invoices_split RENAME TO invoices"
)


def hits() -> float:
    return RESULT_CACHE.labels("hit")._value.get()


@pytest.fixture
def database(db: None, warehouse_path: Path, settings: Settings) -> Iterator[str]:
    """The demo in a fresh PostgreSQL database (schema ``main``, as fixtures/ name it), invoices
    partitioned; Tally queries it as the read-only role."""
    require_service("postgres")
    name = f"tally_rcpart_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        copy_duckdb_tables(warehouse_path, parse_warehouse_url(admin, base_dir=ROOT), schema="main")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(PARTITION)
        reader = postgres_reader_url(name, ("main",))
        settings.WAREHOUSE = parse_warehouse_url(reader, base_dir=ROOT)
        settings.TALLY_RESULT_CACHE_TTL_S = 300
        settings.TALLY_RESULT_CACHE_VERSION_S = 0  # the data version is looked at every time
        settings.TALLY_KEY_PROBE_UNVERSIONED_S = 0
        definitions_sync(root=ROOT / "fixtures", acting_user=None)
        yield admin
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_update_of_a_partitioned_table_is_not_served_from_the_cache(database: str) -> None:
    """Bug: the partitioned invoices table counted as write-marked by its standing counters:
    doubling every amount (same rows, same newest time) kept the data version, and the old
    revenue was served from the cache for TALLY_RESULT_CACHE_TTL_S (300 s)."""
    assert not data_version_detail(release_resolve(None)).writes_seen
    first = query_execute(query=REVENUE)
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("UPDATE main.invoices SET amount = amount * 2")
        conn.execute("SELECT pg_stat_force_next_flush()")
    before = hits()
    second = query_execute(query=REVENUE)
    assert hits() == before, "an unmarked source must not be answered from the cache"
    assert [row[-1] * 2 for row in first.rows] == [row[-1] for row in second.rows]
