"""semantic.streams: the generic Arrow path (warehouse cursor batches → IPC, used for
PostgreSQL and MySQL warehouses) and the native DuckDB one give the same table."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.services import query_execute
from semantic.streams import arrow_ipc_chunks, arrow_response_chunks, query_stream
from semantic.warehouse.config import parse_warehouse_url
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db

QUERY = MetricQuery(
    metrics=("revenue", "signups"),
    group_by=("metric_time__month", "account__plan"),
    order_by=("metric_time__month", "account__plan"),
)


@pytest.fixture
def synced(settings: Settings, warehouse_path: Path) -> None:
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{warehouse_path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)


def read(chunks: list[bytes]) -> tuple[pa.Table, dict[bytes, bytes]]:
    reader = pa.ipc.open_stream(b"".join(chunks))
    batches, last = [], {}
    while True:
        try:
            batch, custom = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            break
        batches.append(batch)
        last = dict(custom) if custom is not None else last
    return pa.Table.from_batches(batches, schema=reader.schema), last


def test_generic_and_native_arrow_paths_agree_with_query_execute(synced: None) -> None:
    """Same columns, types and rows through both paths, and equal to query_execute."""
    with query_stream(
        query=QUERY, principal=None, acting_user=None, row_cap=10_000, timeout_s=60,
        batch_size=7,
    ) as result:  # fmt: skip
        generic, generic_end = read(list(arrow_ipc_chunks(result)))
    native, native_end = read(
        list(
            arrow_response_chunks(
                query=QUERY,
                principal=None,
                acting_user=None,
                release_ref=None,
                row_cap=10_000,
                timeout_s=60,
            )
        )
    )
    assert generic.schema.names == native.schema.names == list(QUERY.group_by + QUERY.metrics)
    assert generic.column("revenue").type == native.column("revenue").type == pa.float64()
    assert generic.to_pylist() == native.to_pylist()
    assert generic_end[b"tally.truncated"] == native_end[b"tally.truncated"] == b"false"
    expected = query_execute(query=QUERY).rows
    assert [tuple(r.values())[2:] for r in generic.to_pylist()] == [
        (None if r[2] is None else float(r[2]), r[3]) for r in expected
    ]


def test_row_cap_marks_both_paths_truncated(synced: None) -> None:
    with query_stream(
        query=QUERY, principal=None, acting_user=None, row_cap=3, timeout_s=60, batch_size=2
    ) as result:
        generic, generic_end = read(list(arrow_ipc_chunks(result)))
    native, native_end = read(
        list(
            arrow_response_chunks(
                query=QUERY, principal=None, acting_user=None, release_ref=None,
                row_cap=3, timeout_s=60,
            )
        )
    )  # fmt: skip
    assert generic.num_rows == native.num_rows == 3
    assert generic_end[b"tally.truncated"] == native_end[b"tally.truncated"] == b"true"
