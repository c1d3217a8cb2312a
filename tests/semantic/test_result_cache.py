"""The result cache of metric queries (issue 23): repeats are served without a scan until
the data changes, and never across principals whose policies differ."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.services import query_execute
from semantic.warehouse.config import parse_warehouse_url
from tally.metrics import RESULT_CACHE
from tests.conftest import ROOT

QUERY = MetricQuery(metrics=("events_tracked",), group_by=("metric_time__year",))


def hits() -> float:
    return RESULT_CACHE.labels("hit")._value.get()


@pytest.fixture
def warehouse(db: None, tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    settings.TALLY_RESULT_CACHE_TTL_S = 300
    settings.TALLY_RESULT_CACHE_VERSION_S = 0  # look at the data every time: no clock games
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    return path


def test_a_repeated_query_is_served_from_the_cache_until_the_data_changes(
    warehouse: Path,
) -> None:
    first = query_execute(query=QUERY)
    before = hits()
    again = query_execute(query=QUERY)
    assert hits() == before + 1 and again.rows == first.rows
    con = duckdb.connect(str(warehouse))
    con.execute(
        "INSERT INTO events SELECT 'cache-new-1', user_id, account_id, anonymous_id, event_type, "
        "occurred_at + INTERVAL 1 SECOND, received_at, revenue, properties FROM events "
        "ORDER BY occurred_at DESC LIMIT 1"
    )
    con.close()
    changed = query_execute(query=QUERY)
    assert hits() == before + 1, "a changed warehouse must be scanned again"
    assert sum(r[-1] for r in changed.rows) == sum(r[-1] for r in first.rows) + 1


def test_principals_whose_policies_differ_never_share_an_answer(warehouse: Path) -> None:
    """revenue has a tenant row policy: an unrestricted answer is never served to a tenant."""
    query = MetricQuery(metrics=("revenue",), group_by=("metric_time__year",))
    everyone = query_execute(query=query, principal=Principal("user:audrey", unrestricted=True))
    before = hits()
    tenant = query_execute(query=query, principal=Principal("token:bi", {"tenant_id": "nobody"}))
    assert hits() == before
    assert tenant.rows != everyone.rows
    again = query_execute(query=query, principal=Principal("token:bi2", {"tenant_id": "nobody"}))
    assert hits() == before + 1 and again.rows == tenant.rows  # same policy binding: shared
