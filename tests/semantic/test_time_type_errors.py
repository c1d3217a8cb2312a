"""A time dimension over a text column (issue #16): the warehouse refuses DATE_TRUNC, and the
user gets an error naming the dimension, its model and the column's type instead of a generic
``warehouse_error`` with a reference."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.jobs.audits import audit_run
from semantic.jobs.compute import compute_run_create, compute_run_execute
from semantic.models import ComputeRun, MetricValue
from semantic.services import query_execute
from semantic.streams import arrow_response_chunks, query_stream
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.time_types import MSG_NOT_TIME, MSG_NOT_TIME_COMPARED
from tally.errors import WarehouseError
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def text_signup(tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    """The demo warehouse with users.signed_up_at stored as text (a snapshot loaded as CSV)."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE users ALTER signed_up_at TYPE VARCHAR")
    con.close()
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    return path


def test_a_time_dimension_over_text_is_named_with_its_type(text_signup: Path) -> None:
    query = MetricQuery(metrics=(), group_by=("user__signed_up_at__month",))
    with pytest.raises(WarehouseError) as caught:
        query_execute(query=query)
    error = caught.value
    assert error.code == "warehouse_type"
    assert error.message == MSG_NOT_TIME.format(
        names="'signed_up_at'",
        what="'signed_up_at' of semantic model 'users' (expr: signed_up_at) is a VARCHAR column",
    )
    assert "CAST(signed_up_at AS TIMESTAMP)" in (error.hint or "")
    # The engine's own text stays for administrators, under the same reference.
    assert error.reference and "date_trunc" in (error.warehouse_message or "").lower()


def test_another_refusal_stays_a_generic_warehouse_error(text_signup: Path) -> None:
    """Only a refused truncation is re-read: a dropped table is the engine's business."""
    con = duckdb.connect(str(text_signup))
    con.execute("DROP TABLE accounts")
    con.close()
    with pytest.raises(WarehouseError) as caught:
        query_execute(query=MetricQuery(metrics=(), group_by=("account__plan",)))
    assert caught.value.code == "warehouse_error"


# The same refusal on every path that runs compiled SQL: the translation lives in the one
# executor seam (semantic.warehouse.run.errors_named), not in each caller.
BY_SIGNUP_MONTH = MetricQuery(metrics=(), group_by=("user__signed_up_at__month",))
NAMED = MSG_NOT_TIME.format(
    names="'signed_up_at'",
    what="'signed_up_at' of semantic model 'users' (expr: signed_up_at) is a VARCHAR column",
)
NOT_COMPARED = MSG_NOT_TIME_COMPARED.format(
    names="'signed_up_at'",
    what="'signed_up_at' of semantic model 'users' (expr: signed_up_at) is a VARCHAR column",
)


def test_a_stream_names_the_dimension(text_signup: Path) -> None:
    """The cursor stream (PostgreSQL and MySQL warehouses' Arrow and CSV paths)."""
    with (
        pytest.raises(WarehouseError) as caught,
        query_stream(
            query=BY_SIGNUP_MONTH, principal=None, acting_user=None, row_cap=100, timeout_s=60
        ),
    ):
        pass
    assert (caught.value.code, caught.value.message) == ("warehouse_type", NAMED)


def test_the_native_duckdb_arrow_stream_names_the_dimension(text_signup: Path) -> None:
    chunks = arrow_response_chunks(
        query=BY_SIGNUP_MONTH, principal=None, acting_user=None, release_ref=None,
        row_cap=100, timeout_s=60,
    )  # fmt: skip
    with pytest.raises(WarehouseError) as caught:
        list(chunks)
    assert (caught.value.code, caught.value.message) == ("warehouse_type", NAMED)


def test_a_compute_run_fails_naming_the_dimension(text_signup: Path) -> None:
    """events_tracked sliced by the month its user signed up: that truncation is refused.
    The run is failed with warehouse_type (not retried: the definitions must change), and
    stores no values."""
    run = compute_run_create(
        metrics=["events_tracked"], start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 3),
        slices=["user__signed_up_at__month"], enqueue=False, acting_user=None,
    )  # fmt: skip
    run = compute_run_execute(run_id=run.pk)
    assert run.status == ComputeRun.Status.FAILED
    assert run.error["code"] == "warehouse_type"
    assert run.error["message"].startswith("time dimension 'signed_up_at' cannot be truncated")
    assert MetricValue.objects.count() == 0


def test_a_compute_run_over_a_text_time_names_it_as_not_comparable(text_signup: Path) -> None:
    """signups counts users by signed_up_at: each chunk's range filter compares that text
    column with dates, which the warehouse refuses before any truncation; named too."""
    run = compute_run_create(
        metrics=["signups"], start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 3),
        enqueue=False, acting_user=None,
    )  # fmt: skip
    run = compute_run_execute(run_id=run.pk)
    assert run.status == ComputeRun.Status.FAILED
    assert (run.error["code"], run.error["message"]) == ("warehouse_type", NOT_COMPARED)
    assert "CAST(signed_up_at AS TIMESTAMP)" in run.error["hint"]
    assert MetricValue.objects.count() == 0


def test_an_audit_reconciliation_names_the_dimension(
    tmp_path: Path, warehouse_path: Path, settings: Settings
) -> None:
    """Values stored while signed_up_at was a timestamp; the column then loaded as text:
    reconciling them records warehouse_type's message on each error row."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    run = compute_run_create(
        metrics=["signups"], start=dt.date(2026, 9, 1), end=dt.date(2026, 9, 2),
        enqueue=False, acting_user=None,
    )  # fmt: skip
    assert compute_run_execute(run_id=run.pk).status == ComputeRun.Status.SUCCEEDED
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE users ALTER signed_up_at TYPE VARCHAR")
    con.close()
    results = audit_run(metrics=["signups"], checks=("reconcile",), sample=10)
    assert len(results) == 2
    assert {(r.status, r.message) for r in results} == {("error", NOT_COMPARED)}
