"""The demo warehouse generator: determinism, data invariants, validation, atomic replace.

Plain pytest functions on DuckDB; no Django database is involved.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semantic import demo
from semantic.demo import (
    DEFAULT_END_DATE,
    HISTORY_DAYS,
    TABLES,
    build_demo_warehouse,
    demo_warehouse_exists,
    table_checksums,
)
from semantic.demo import build as demo_build

EVENTS = 20_000


@pytest.fixture(scope="module")
def wh() -> Iterator[duckdb.DuckDBPyConnection]:
    """One in-memory demo warehouse shared by the read-only invariant tests."""
    con = duckdb.connect()
    build_demo_warehouse(con, events=EVENTS, seed=42)
    yield con
    con.close()


def one_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    # fetchall, not fetchone: DuckDB 2 keeps a partly read result open on the connection.
    rows = con.execute(sql).fetchall()
    assert len(rows) == 1, rows
    return tuple(rows[0])


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    (value,) = one_row(con, sql)
    return value


def checksums_of(events: int, seed: int, **config: Any) -> dict[str, str]:
    con = duckdb.connect(config=config)
    try:
        build_demo_warehouse(con, events=events, seed=seed)
        return table_checksums(con)
    finally:
        con.close()


def failing_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the next build fail after every table has been written."""
    monkeypatch.setattr(
        demo_build, "_BUILD_STEPS", (*demo_build._BUILD_STEPS, "SELECT error('injected failure')")
    )


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_builds_identical_tables_in_identical_order() -> None:
    """Guards reproducibility: golden results and demos rely on the same seed, same data."""
    assert checksums_of(3_000, 5) == checksums_of(3_000, 5)


def test_different_seed_changes_every_table() -> None:
    """Guards that the seed reaches every table rather than a few columns."""
    first, second = checksums_of(3_000, 5), checksums_of(3_000, 6)
    assert all(first[table] != second[table] for table in TABLES)


def test_thread_count_does_not_change_data_or_row_order() -> None:
    """Guards against parallelism leaking into the data (random(), unordered inserts)."""
    assert checksums_of(5_000, 9, threads=1) == checksums_of(5_000, 9, threads=4)


def test_file_build_matches_connection_build(tmp_path: Path) -> None:
    """Guards that the atomic file path builds exactly what an in-memory build does."""
    target = tmp_path / "warehouse.duckdb"
    build_demo_warehouse(target, events=3_000, seed=5)
    with duckdb.connect(str(target), read_only=True) as con:
        assert table_checksums(con) == checksums_of(3_000, 5)


def test_checksum_detects_a_reordered_table() -> None:
    """Guards that table_checksums is order-sensitive, so row-order drift is caught."""
    con = duckdb.connect()
    build_demo_warehouse(con, events=1_000, seed=1)
    before = table_checksums(con)["accounts"]
    con.execute("CREATE OR REPLACE TABLE accounts AS SELECT * FROM accounts ORDER BY id DESC")
    assert table_checksums(con)["accounts"] != before


# --- sizes ---------------------------------------------------------------------------------


def test_row_counts_scale_with_events_and_events_are_exact(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards the documented sizes: accounts ≈ events/100, users ≈ events/20, exact events."""
    assert scalar(wh, "SELECT count(*) FROM events") == EVENTS
    assert scalar(wh, "SELECT count(*) FROM accounts") == EVENTS // 100
    assert scalar(wh, "SELECT count(*) FROM users") == EVENTS // 20


@settings(max_examples=8, deadline=None)
@given(events=st.integers(min_value=1, max_value=3_000))
def test_any_event_count_builds_exactly_that_many_rows(events: int) -> None:
    """Guards the allocation arithmetic at small and odd sizes (no rounding drift)."""
    con = duckdb.connect()
    summary = build_demo_warehouse(con, events=events, seed=3)
    assert summary.tables["events"] == events
    signups = "SELECT count(*) FROM events WHERE event_type = 'signup'"
    assert scalar(con, signups) == summary.tables["users"]
    assert (
        scalar(con, "SELECT count(*) FROM accounts WHERE id NOT IN (SELECT account_id FROM users)")
        == 0
    )
    con.close()


# --- invariants ----------------------------------------------------------------------------


def test_each_event_user_belongs_to_the_event_account(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards events.account_id = the user's account, which account rollups depend on."""
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM events e LEFT JOIN users u ON u.id = e.user_id "
            "WHERE u.account_id IS DISTINCT FROM e.account_id",
        )
        == 0
    )


def test_every_user_belongs_to_an_existing_account(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards the users → accounts foreign key, which DuckDB does not enforce here."""
    assert (
        scalar(wh, "SELECT count(*) FROM users WHERE account_id NOT IN (SELECT id FROM accounts)")
        == 0
    )


def test_hierarchy_is_acyclic_with_existing_parents_and_at_most_three_levels(
    wh: duckdb.DuckDBPyConnection,
) -> None:
    """Guards the parent_account_id tree that hierarchy rollups walk."""
    assert scalar(wh, "SELECT count(*) FROM accounts WHERE parent_account_id >= id") == 0
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM accounts WHERE parent_account_id IS NOT NULL "
            "AND parent_account_id NOT IN (SELECT id FROM accounts)",
        )
        == 0
    )
    depth = wh.execute(
        """
        WITH RECURSIVE chain(id, parent, depth) AS (
            SELECT id, parent_account_id, 1 FROM accounts
            UNION ALL
            SELECT c.id, a.parent_account_id, c.depth + 1
            FROM chain c JOIN accounts a ON a.id = c.parent
        )
        SELECT depth, count(*) FROM (SELECT id, max(depth) AS depth FROM chain GROUP BY id)
        GROUP BY depth ORDER BY depth
        """
    ).fetchall()
    assert [d for d, _ in depth] == [1, 2, 3]


def test_events_never_precede_signup_and_each_user_has_one_signup_at_signup(
    wh: duckdb.DuckDBPyConnection,
) -> None:
    """Guards event time vs signed_up_at, and the one signup event per user."""
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM events e JOIN users u ON u.id = e.user_id "
            "WHERE e.occurred_at < u.signed_up_at",
        )
        == 0
    )
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM users u LEFT JOIN events s "
            "ON s.user_id = u.id AND s.event_type = 'signup' "
            "WHERE s.occurred_at IS DISTINCT FROM u.signed_up_at",
        )
        == 0
    )
    assert scalar(wh, "SELECT count(*) FROM events WHERE event_type = 'signup'") == scalar(
        wh, "SELECT count(*) FROM users"
    )


def test_users_sign_up_within_their_account_lifetime(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards signed_up_at >= account created_at and before the account churned."""
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM users u JOIN accounts a ON a.id = u.account_id "
            "WHERE u.signed_up_at < a.created_at OR u.signed_up_at >= a.churned_at",
        )
        == 0
    )


def test_churned_accounts_produce_no_events_after_churn(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards churn: retention metrics break if churned accounts keep emitting events."""
    assert scalar(wh, "SELECT count(*) FROM accounts WHERE churned_at IS NOT NULL") > 0
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM events e JOIN accounts a ON a.id = e.account_id "
            "WHERE e.occurred_at >= a.churned_at",
        )
        == 0
    )


def test_late_arrivals_are_a_few_percent_and_never_more_than_three_days(
    wh: duckdb.DuckDBPyConnection,
) -> None:
    """Guards received_at: never before occurred_at, late share small, lateness ≤ 3 days."""
    earliest, latest, late_share = one_row(
        wh,
        "SELECT min(received_at - occurred_at), max(received_at - occurred_at), "
        "avg((received_at - occurred_at > INTERVAL 1 HOUR)::INT) FROM events",
    )
    assert earliest >= timedelta(0)
    assert latest <= timedelta(days=3)
    assert 0.01 <= late_share <= 0.06


def test_about_one_percent_of_rows_are_redelivered_duplicates(
    wh: duckdb.DuckDBPyConnection,
) -> None:
    """Guards the duplicate share and that a re-delivery repeats the event, arriving later."""
    share = scalar(wh, "SELECT 1 - count(DISTINCT event_id) / count(*) FROM events")
    assert 0.005 <= share <= 0.015
    differing = scalar(
        wh,
        """
        SELECT count(*) FROM (
            SELECT event_id,
                   count(DISTINCT (user_id, account_id, anonymous_id, event_type, occurred_at,
                                   revenue, properties)) AS versions,
                   count(DISTINCT received_at) AS arrivals
            FROM events GROUP BY event_id HAVING count(*) > 1
        ) WHERE versions <> 1 OR arrivals < 2
        """,
    )
    assert differing == 0


def test_weekends_see_clearly_fewer_events_than_weekdays(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards weekly seasonality, which day-grain charts and anomaly demos show."""
    weekend_per_day, weekday_per_day = one_row(
        wh,
        "SELECT count(*) FILTER (WHERE isodow(occurred_at) >= 6) / 2, "
        "count(*) FILTER (WHERE isodow(occurred_at) <= 5) / 5 FROM events",
    )
    assert weekend_per_day < 0.6 * weekday_per_day


def test_event_volume_grows_over_time(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards growth: the last six months carry more than twice the first six."""
    end = f"DATE '{DEFAULT_END_DATE}'"
    first, last = one_row(
        wh,
        f"SELECT count(*) FILTER (WHERE occurred_at < {end} - INTERVAL 18 MONTH), "
        f"count(*) FILTER (WHERE occurred_at >= {end} - INTERVAL 6 MONTH) FROM events",
    )
    assert last > 2 * first > 0


def test_a_few_large_accounts_produce_most_events(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards the power-law activity that makes top-N and concentration metrics meaningful."""
    top_decile_share = scalar(
        wh,
        """
        SELECT sum(n) FILTER (WHERE rank <= (SELECT count(*) FROM accounts) / 10) / sum(n)
        FROM (SELECT count(*) AS n, row_number() OVER (ORDER BY count(*) DESC) AS rank
              FROM events GROUP BY account_id)
        """,
    )
    assert top_decile_share >= 0.5


def test_revenue_only_on_revenue_events_and_always_on_purchases(
    wh: duckdb.DuckDBPyConnection,
) -> None:
    """Guards revenue placement: revenue metrics filter on these two event types."""
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM events WHERE revenue <> 0 "
            "AND event_type NOT IN ('purchase', 'plan_upgraded')",
        )
        == 0
    )
    assert (
        scalar(wh, "SELECT count(*) FROM events WHERE event_type = 'purchase' AND revenue <= 0")
        == 0
    )


def test_properties_carry_source_and_plan_and_feature_only_for_feature_used(
    wh: duckdb.DuckDBPyConnection,
) -> None:
    """Guards the properties JSON shape that YAML dimensions extract with ->>."""
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM events e JOIN accounts a ON a.id = e.account_id "
            "WHERE e.properties->>'plan' <> a.plan OR e.properties->>'source' IS NULL "
            "OR ((e.properties->>'feature') IS NOT NULL) <> (e.event_type = 'feature_used')",
        )
        == 0
    )


def test_subscriptions_follow_account_plan_and_churn(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards subscriptions: contiguous, first at creation, last = current plan, ends at churn."""
    assert (
        scalar(
            wh,
            """
        WITH s AS (
            SELECT
                *,
                row_number() OVER (PARTITION BY account_id ORDER BY started_at DESC) AS rn,
                lead(started_at) OVER (PARTITION BY account_id ORDER BY started_at) AS next_start,
                min(started_at) OVER (PARTITION BY account_id) AS first_start
            FROM subscriptions
        )
        SELECT count(*) FROM s JOIN accounts a ON a.id = s.account_id
        WHERE s.first_start <> a.created_at
           OR (s.rn = 1 AND (s.plan <> a.plan OR s.ended_at IS DISTINCT FROM a.churned_at))
           OR (s.rn > 1 AND s.ended_at IS DISTINCT FROM s.next_start)
        """,
        )
        == 0
    )
    assert (
        scalar(
            wh,
            "SELECT count(*) FROM accounts WHERE id NOT IN (SELECT account_id FROM subscriptions)",
        )
        == 0
    )


def test_invoices_are_monthly_within_paid_subscriptions(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards invoices: one per started month of a paid subscription, amounts = MRR."""
    assert (
        scalar(
            wh,
            """
        SELECT count(*) FROM invoices i JOIN subscriptions s USING (subscription_id)
        WHERE i.account_id <> s.account_id OR i.amount <> s.mrr OR s.mrr <= 0
           OR i.issued_at < s.started_at
           OR i.issued_at >= coalesce(s.ended_at, TIMESTAMP '9999-01-01')
           OR (i.status = 'paid') <> (i.paid_at IS NOT NULL) OR i.due_at <= i.issued_at
        """,
        )
        == 0
    )
    # Months are consecutive: a subscription's k-th invoice is issued k months after its start.
    assert (
        scalar(
            wh,
            """
        SELECT count(*) FROM (
            SELECT i.issued_at, s.started_at,
                   row_number() OVER (PARTITION BY i.subscription_id ORDER BY i.issued_at) - 1 AS m
            FROM invoices i JOIN subscriptions s USING (subscription_id)
        ) WHERE issued_at <> started_at + to_months(m)
        """,
        )
        == 0
    )


@pytest.mark.parametrize(
    ("column", "allowed"),
    [
        ("accounts.plan", demo.PLANS),
        ("subscriptions.plan", demo.PLANS),
        ("accounts.region", ("NA", "EMEA", "APAC", "LATAM")),
        ("users.role", ("admin", "member", "viewer")),
        ("invoices.status", ("paid", "open", "void")),
        ("events.event_type", demo.EVENT_TYPES),
    ],
)
def test_categorical_columns_hold_only_documented_values(
    wh: duckdb.DuckDBPyConnection, column: str, allowed: tuple[str, ...]
) -> None:
    """Guards the value sets that contracts and YAML definitions declare as accepted values."""
    table, name = column.split(".")
    values = {v for (v,) in wh.execute(f"SELECT DISTINCT {name} FROM {table}").fetchall()}
    assert values == set(allowed)


def test_tables_are_stored_in_key_order(wh: duckdb.DuckDBPyConnection) -> None:
    """Guards physical order: ids ascend with rowid and events ascend in occurred_at."""
    for table, key in [
        ("accounts", "id"),
        ("users", "id"),
        ("subscriptions", "subscription_id"),
        ("invoices", "invoice_id"),
        ("events", "occurred_at"),
    ]:
        out_of_order = scalar(
            wh,
            f"SELECT count(*) FROM (SELECT {key} < lag({key}) OVER (ORDER BY rowid) AS bad "
            f"FROM {table}) WHERE bad",
        )
        assert out_of_order == 0, table


# --- arguments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"events": 0}, ValueError, "events must be between 1 and"),
        ({"events": -5}, ValueError, "events must be between 1 and"),
        ({"events": demo.MAX_EVENTS + 1}, ValueError, "events must be between 1 and"),
        ({"events": 10.5}, TypeError, "events must be an int"),
        ({"events": True}, TypeError, "events must be an int"),
        ({"seed": -1}, ValueError, "seed must be between 0 and 2\\*\\*63 - 1"),
        ({"seed": 2**63}, ValueError, "seed must be between 0 and 2\\*\\*63 - 1"),
        ({"seed": "42"}, TypeError, "seed must be an int"),
        ({"end_date": "2026-10-31"}, TypeError, "end_date must be a datetime.date"),
        ({"end_date": datetime(2026, 10, 31, 12)}, TypeError, "end_date must be a datetime.date"),
        ({"end_date": date(1970, 1, 1)}, ValueError, "end_date must be between years"),
        ({"replace": "yes"}, TypeError, "replace must be a bool"),
    ],
)
def test_invalid_arguments_raise_clear_errors(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Guards argument validation: bad values fail fast, naming the argument, writing nothing."""
    target = tmp_path / "warehouse.duckdb"
    with pytest.raises(error, match=message):
        build_demo_warehouse(target, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target", [":memory:", ""])
def test_in_memory_path_strings_are_rejected(target: str) -> None:
    """Guards against building into a throwaway :memory: database by mistake."""
    with pytest.raises(ValueError, match="pass a duckdb connection"):
        build_demo_warehouse(target, events=100)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    """Guards the error for a target whose directory does not exist."""
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_demo_warehouse(tmp_path / "nope" / "w.duckdb", events=100)


# --- atomic replace ------------------------------------------------------------------------


def test_rebuild_replaces_the_file_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    """Guards the build-then-rename path: the new data replaces the old, nothing left over."""
    target = tmp_path / "warehouse.duckdb"
    build_demo_warehouse(target, events=1_000, seed=1)
    summary = build_demo_warehouse(target, events=2_000, seed=2)
    assert summary.path == str(target.resolve())
    assert dict(summary.tables)["events"] == 2_000
    assert [p.name for p in tmp_path.iterdir()] == ["warehouse.duckdb"]
    with duckdb.connect(str(target), read_only=True) as con:
        assert table_checksums(con) == checksums_of(2_000, 2)


def test_failed_build_leaves_the_previous_warehouse_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards atomicity: an interrupted build never leaves a half warehouse or temp files."""
    target = tmp_path / "warehouse.duckdb"
    build_demo_warehouse(target, events=1_000, seed=1)
    with duckdb.connect(str(target), read_only=True) as con:
        before = table_checksums(con)
    failing_build(monkeypatch)
    with pytest.raises(duckdb.Error, match="injected failure"):
        build_demo_warehouse(target, events=2_000, seed=2)
    assert [p.name for p in tmp_path.iterdir()] == ["warehouse.duckdb"]
    with duckdb.connect(str(target), read_only=True) as con:
        assert table_checksums(con) == before


def test_failed_build_in_a_connection_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guards the connection target: a failed rebuild keeps the previous tables."""
    con = duckdb.connect()
    build_demo_warehouse(con, events=1_000, seed=1)
    before = table_checksums(con)
    failing_build(monkeypatch)
    with pytest.raises(duckdb.Error, match="injected failure"):
        build_demo_warehouse(con, events=2_000, seed=2)
    assert table_checksums(con) == before
    assert scalar(con, "SELECT count(*) FROM duckdb_tables() WHERE temporary") == 0


def test_replace_false_refuses_an_existing_warehouse(tmp_path: Path) -> None:
    """Guards replace=False: an existing file or demo tables are never overwritten."""
    target = tmp_path / "warehouse.duckdb"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="replace=True"):
        build_demo_warehouse(target, events=100, replace=False)
    assert target.read_bytes() == b"precious"
    con = duckdb.connect()
    build_demo_warehouse(con, events=100)
    with pytest.raises(FileExistsError, match="replace=True"):
        build_demo_warehouse(con, events=100, replace=False)


def test_stale_wal_of_the_replaced_file_is_discarded(tmp_path: Path) -> None:
    """Guards against DuckDB replaying an old write-ahead log onto the new file."""
    target = tmp_path / "warehouse.duckdb"
    Path(f"{target}.wal").write_bytes(b"stale log from a crashed writer")
    build_demo_warehouse(target, events=500, seed=1)
    assert not Path(f"{target}.wal").exists()
    assert demo_warehouse_exists(target)


def test_demo_warehouse_exists_only_when_all_tables_are_present(tmp_path: Path) -> None:
    """Guards the check `tally demo` uses to decide whether to build."""
    target = tmp_path / "warehouse.duckdb"
    assert not demo_warehouse_exists(target)
    target.write_text("not a database")
    assert not demo_warehouse_exists(target)
    target.unlink()
    with duckdb.connect(str(target)) as con:
        con.execute("CREATE TABLE accounts (id BIGINT)")
    assert not demo_warehouse_exists(target)
    build_demo_warehouse(target, events=500)
    assert demo_warehouse_exists(target)
    assert demo_warehouse_exists(str(target))


def test_time_spine_has_one_row_per_day_of_history() -> None:
    """Guards the time spine the fixtures' `time_spine` model reads: every day, no gaps."""
    con = duckdb.connect()
    build_demo_warehouse(con, events=2_000, seed=1)
    days, first, last, distinct = con.execute(
        "SELECT count(*), min(date_day), max(date_day), count(DISTINCT date_day) FROM time_spine"
    ).fetchall()[0]
    assert last == DEFAULT_END_DATE
    assert days == distinct == (last - first).days + 1 == HISTORY_DAYS
