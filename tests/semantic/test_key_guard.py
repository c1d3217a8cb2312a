"""The query-time fan-out guard (issue 16): a metric query whose join relies on a declared
key that the warehouse data repeats is refused with ``fan_out`` instead of returning
multiplied sums; the probe runs once per data version."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pytest_django.fixtures import Settings

from registry.services.definitions import definitions_sync
from semantic.compiler.spec import MetricQuery
from semantic.key_guard import COUNTS, HINT_KEY_REPEATS, MSG_KEY_REPEATS
from semantic.services import compile_metric_query, query_execute
from semantic.warehouse.config import parse_warehouse_url
from tally.errors import QueryError
from tally.metrics import KEY_PROBES
from tests.conftest import ROOT

BY_PLAN = MetricQuery(metrics=("events_tracked",), group_by=("account__plan",))


def probes() -> float:
    return sum(KEY_PROBES.labels(o)._value.get() for o in ("unique", "repeated"))


@pytest.fixture
def warehouse(db: None, tmp_path: Path, warehouse_path: Path, settings: Settings) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_path, path)
    settings.WAREHOUSE = parse_warehouse_url(f"duckdb:///{path}", base_dir=ROOT)
    settings.TALLY_RESULT_CACHE_TTL_S = 0  # every query runs: only the probe cache is tested
    settings.TALLY_RESULT_CACHE_VERSION_S = 0  # the data version is looked at every time
    definitions_sync(root=ROOT / "fixtures", acting_user=None)
    return path


def sql(path: Path, text: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path))
    try:
        return con.execute(text).fetchall()
    finally:
        con.close()


def repeat_one_account(path: Path) -> str:
    """Copies one account row (its id repeats; the demo's PRIMARY KEY constraint, which a
    warehouse need not have, is dropped first); returns that id."""
    (account_id,) = sql(path, "SELECT MAX(id) FROM accounts")[0]
    sql(
        path,
        "CREATE TABLE loose AS SELECT * FROM accounts; DROP TABLE accounts; "
        "ALTER TABLE loose RENAME TO accounts; "
        f"INSERT INTO accounts SELECT * FROM accounts WHERE id = {account_id}",
    )
    return str(account_id)


def test_compiled_query_names_the_keys_its_joins_rely_on(warehouse: Path) -> None:
    joined = compile_metric_query(query=BY_PLAN)
    assert [(u.model, u.entity, u.type, u.table) for u in joined.key_uses] == [
        ("accounts", "account", "primary", "main.accounts")
    ]
    alone = compile_metric_query(
        query=MetricQuery(metrics=("events_tracked",), group_by=("metric_time__year",))
    )
    assert alone.key_uses == ()


def test_a_query_joining_a_repeated_primary_key_is_refused_until_the_data_is_fixed(
    warehouse: Path,
) -> None:
    """Bug (issue 16): events grouped by account__plan summed each event of the repeated
    account twice, silently; now refused, and answered again once the data is fixed."""
    before = query_execute(query=BY_PLAN)
    account_id = repeat_one_account(warehouse)
    with pytest.raises(QueryError) as refused:
        query_execute(query=BY_PLAN)
    assert refused.value.code == "fan_out"
    assert refused.value.message == MSG_KEY_REPEATS.format(
        item="account__plan", entity="account", model="accounts", table="main.accounts",
        type="primary", counts=COUNTS.format(keys=1, rows=2, when=""),
    )  # fmt: skip
    assert refused.value.hint == HINT_KEY_REPEATS.format(
        table="main.accounts", entity="account", model="accounts", when=""
    )
    assert account_id not in refused.value.message  # counts only, never a key value

    # Fixed: one row of the account again (the row count, so the data version, changes).
    sql(
        warehouse,
        f"CREATE TABLE one AS SELECT DISTINCT * FROM accounts WHERE id = {account_id}; "
        f"DELETE FROM accounts WHERE id = {account_id}; "
        "INSERT INTO accounts SELECT * FROM one; DROP TABLE one",
    )
    assert sorted(query_execute(query=BY_PLAN).rows) == sorted(before.rows)


def test_a_unique_key_is_probed_once_per_data_version(warehouse: Path) -> None:
    before = probes()
    first = query_execute(query=BY_PLAN)
    assert probes() == before + 1
    again = query_execute(query=BY_PLAN)
    assert probes() == before + 1, "a repeat at the same data version must not probe again"
    assert sorted(again.rows) == sorted(first.rows)
    sql(
        warehouse,
        "INSERT INTO accounts SELECT * REPLACE (id + 1000000 AS id) FROM accounts LIMIT 1",
    )
    query_execute(query=BY_PLAN)
    assert probes() == before + 2, "a data change probes again"


def test_an_update_repeating_a_key_with_the_same_counts_and_times_is_refused(
    warehouse: Path,
) -> None:
    """Bug: the probe's "unique" answer was kept for an hour at a data version of row counts
    and newest times, so an UPDATE giving one account another's id (same row count, same
    newest created_at) kept it, and the next query summed that account's events under both
    rows' plans, silently. The DuckDB files' write mark is part of the version now."""
    sql(
        warehouse,
        "CREATE TABLE loose AS SELECT * FROM accounts; DROP TABLE accounts; "
        "ALTER TABLE loose RENAME TO accounts",
    )
    query_execute(query=BY_PLAN)  # probed: the key holds
    shape = "SELECT count(*), max(created_at), max(churned_at) FROM accounts"
    before = sql(warehouse, shape)
    sql(
        warehouse,
        "UPDATE accounts SET id = (SELECT min(id) FROM accounts) WHERE id = (SELECT max(id) "
        "FROM accounts WHERE created_at < (SELECT max(created_at) FROM accounts))",
    )
    assert sql(warehouse, shape) == before  # what the version used to see did not move
    with pytest.raises(QueryError) as refused:
        query_execute(query=BY_PLAN)
    assert refused.value.code == "fan_out"


def test_the_http_api_refuses_a_repeated_key_with_fan_out(warehouse: Path, sign_in: Any) -> None:
    """An analyst bound to a tenant by row policies is refused too, and is shown neither the
    repeated key nor counts of the whole table (rows of other tenants, maybe)."""
    account_id = repeat_one_account(warehouse)
    client = sign_in("ana", "analyst")
    response = client.post(
        "/api/v1/query",
        {"metrics": ["events_tracked"], "group_by": ["account__plan"]},
        content_type="application/json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "fan_out" and account_id not in error["message"]
    assert error["message"] == MSG_KEY_REPEATS.format(
        item="account__plan", entity="account", model="accounts", table="main.accounts",
        type="primary", counts="",
    )  # fmt: skip


def test_an_scd_key_valid_twice_at_one_time_is_refused(warehouse: Path) -> None:
    """plan_history's natural key is unique within validity windows: a subscription row that
    overlaps another of the same account is a fan-out; consecutive windows are not."""
    query = MetricQuery(metrics=("events_tracked",), group_by=("account__plan_at_time",))
    query_execute(query=query)  # the demo's plan changes end one window as the next starts
    sql(
        warehouse,
        "INSERT INTO subscriptions SELECT * REPLACE (subscription_id + 1000000 AS subscription_id) "
        "FROM subscriptions "
        "WHERE ended_at IS NULL LIMIT 1",
    )
    with pytest.raises(QueryError) as refused:
        query_execute(query=query)
    assert refused.value.code == "fan_out"
    assert "at the same time" in refused.value.message
    assert "'plan_history'" in refused.value.message


def test_an_scd_window_opening_inside_another_is_refused(warehouse: Path) -> None:
    """Overlap without a shared start: a second plan of one account opens while its first,
    closed later, is still valid. Both rows are valid from the second's start until the
    first ends, so the validity join would match each event there twice; refused too."""
    query = MetricQuery(metrics=("events_tracked",), group_by=("account__plan_at_time",))
    query_execute(query=query)
    sql(
        warehouse,
        "INSERT INTO subscriptions SELECT * REPLACE ("
        "subscription_id + 1000000 AS subscription_id, started_at + INTERVAL 1 DAY AS started_at, "
        "ended_at + INTERVAL 30 DAY AS ended_at) "
        "FROM subscriptions WHERE ended_at - started_at > INTERVAL 3 DAY "
        "ORDER BY subscription_id LIMIT 1",
    )
    with pytest.raises(QueryError) as refused:
        query_execute(query=query)
    assert refused.value.code == "fan_out"
    assert refused.value.message == MSG_KEY_REPEATS.format(
        item="account__plan_at_time", entity="account", model="plan_history",
        table="main.subscriptions", type="natural",
        counts=COUNTS.format(keys=1, rows=2, when=" at the same time"),
    )  # fmt: skip
