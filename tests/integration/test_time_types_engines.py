"""A time dimension over text on PostgreSQL (issue 16): the warehouse refuses DATE_TRUNC on
it ("function date_trunc(unknown, text) does not exist"), which reaches the caller as
``warehouse_type`` naming the dimension, through the executor every path shares
(semantic.warehouse.run). MariaDB truncates and compares text as dates: nothing to name."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from semantic.compiler.compile import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.config import WarehouseConfig
from semantic.warehouse.run import ReadyQuery, run_compiled
from semantic.warehouse.time_types import MSG_NOT_TIME
from tally.errors import WarehouseError
from tests.conftest import demo_on_engines, demo_warehouse_at
from tests.integration.test_engines import manifest_for

WHAT = "'signed_up_at' of semantic model 'users' (expr: signed_up_at) is a text column"


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WarehouseConfig, str]]:
    path: Path = tmp_path_factory.mktemp("time_types") / "demo.duckdb"
    demo_warehouse_at(path, events=2_000, seed=3)
    with demo_on_engines(path, "i16_time_types") as loaded:
        admin = f"postgresql://postgres@127.0.0.1:5432/{loaded['database']}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("ALTER TABLE public.users ALTER signed_up_at TYPE text")
        yield loaded["postgres"]


def _refusal(config: WarehouseConfig, manifest: Manifest, query: MetricQuery) -> WarehouseError:
    compiled = compile_query(MetricQuery(**{**query.__dict__, "dialect": "postgres"}), manifest)
    with pytest.raises(WarehouseError) as caught:
        run_compiled(ReadyQuery(compiled.sql, {}, manifest), principal=None, config=config)
    return caught.value


def test_postgresql_refusals_of_a_text_time_are_named(postgres: tuple) -> None:
    config, schema = postgres
    manifest = manifest_for(schema)
    grouped = _refusal(
        config,
        manifest,
        MetricQuery(metrics=("events_tracked",), group_by=("user__signed_up_at__month",)),
    )
    assert (grouped.code, grouped.message) == (
        "warehouse_type",
        MSG_NOT_TIME.format(names="'signed_up_at'", what=WHAT),
    )
    # A compute chunk's shape (a range on the same column): PostgreSQL binds the select list
    # first, so the truncation is what it refuses (DuckDB refuses the range's comparison).
    ranged = _refusal(
        config,
        manifest,
        MetricQuery(
            metrics=("signups",), group_by=("metric_time__day",), start_time="2026-09-01",
            end_time="2026-09-03",
        ),
    )  # fmt: skip
    assert (ranged.code, ranged.message) == (
        "warehouse_type",
        MSG_NOT_TIME.format(names="'signed_up_at'", what=WHAT),
    )
