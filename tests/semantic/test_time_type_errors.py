"""A time dimension over a text column (issue #16): the warehouse refuses DATE_TRUNC, and the
user gets an error naming the dimension, its model and the column's type instead of a generic
``warehouse_error`` with a reference."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.services import query_execute
from semantic.warehouse.config import parse_warehouse_url
from semantic.warehouse.time_types import MSG_NOT_TIME
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
