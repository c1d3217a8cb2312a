"""The base model of a query without metrics (semantic/compiler/dimension_base.py): the model
that reaches every group-by and filter item with the fewest joins, ties to the one offering
fewer items, as MetricFlow's plan builder picks it. Each case runs on DuckDB against plain SQL
of the join MetricFlow builds."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.dimension_base import base_candidates, offered_items
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.resolve import parse_group_by
from semantic.compiler.spec import MetricQuery


def _model(name: str, entities: list[tuple[str, str, str]], dims: list[Any]) -> dict[str, Any]:
    return {
        "name": name,
        "model": f"ref('{name}')",
        "entities": [{"name": n, "type": t, "expr": e} for n, t, e in entities],
        "dimensions": [
            d if isinstance(d, dict) else {"name": d, "type": "categorical"} for d in dims
        ],
    }


def _manifest(*models: dict[str, Any]) -> Manifest:
    return build_manifest([("semantic_model", m["name"], m, "1") for m in models])


def _day(name: str, *, partition: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "type": "time",
        "type_params": {"time_granularity": "day"},
        "is_partition": partition,
    }


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return sorted(con.execute(sql).fetchall(), key=repr)


def _query(manifest: Manifest, *group_by: str, **extra: Any) -> Any:
    return compile_query(MetricQuery(metrics=(), group_by=group_by, **extra), manifest)


# Teams name a lead user and a lead device; a user has one device (a unique key of users).
TEAMS = _model(
    "teams",
    [
        ("team", "primary", "team_id"),
        ("user", "foreign", "lead_user"),
        ("device", "foreign", "lead_device"),
    ],
    ["team_name"],
)
USERS = _model(
    "users",
    [
        ("user", "primary", "user_id"),
        ("device", "unique", "device_id"),
        ("team", "foreign", "team_id"),
    ],
    ["country", "os"],
)


@pytest.fixture
def teams_db() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE teams AS SELECT 't1' AS team_id, 'red' AS team_name, 'u1' AS lead_user, 'd2' AS lead_device"
    )
    con.execute(
        "CREATE TABLE users AS SELECT * FROM (VALUES ('u1', 'd1', 't1', 'DE', 'ios'), "
        "('u2', 'd2', 't1', 'FR', 'android')) AS t(user_id, device_id, team_id, country, os)"
    )
    return con


def test_the_model_reaching_every_item_with_fewest_joins_is_the_base(
    teams_db: duckdb.DuckDBPyConnection,
) -> None:
    """Bug (itest_dimensions no_dedupe): the first item's model was the base whenever it
    reached the others. teams reaches user__country and device__os with two joins (a lead
    user's country beside another user's os, a pair no user has); users holds both and
    reaches team__team_name with one join, so MetricFlow reads users."""
    manifest = _manifest(TEAMS, USERS)
    compiled = _query(manifest, "team__team_name", "user__country", "device__os")
    assert "FROM main.users AS users" in compiled.sql
    expected = _rows(
        teams_db,
        "SELECT DISTINCT t.team_name, u.country, u.os FROM users u "
        "FULL JOIN teams t ON u.team_id = t.team_id",
    )
    assert expected == [("red", "DE", "ios"), ("red", "FR", "android")]
    assert _rows(teams_db, compiled.sql) == expected


# One profile per user, each side keeping the other's key.
PROFILES = _model(
    "profiles",
    [("profile", "primary", "profile_id"), ("user", "foreign", "user_id")],
    ["bio", "language", _day("created_at")],
)
PEOPLE = _model(
    "people",
    [("user", "primary", "user_id"), ("profile", "foreign", "profile_id")],
    ["country"],
)


def test_equal_joins_go_to_the_model_offering_fewer_items() -> None:
    """profiles and people each hold one item and reach the other with one join: MetricFlow
    tries the model with fewer linkable items first (people), not the first item's model."""
    manifest = _manifest(PROFILES, PEOPLE)
    con = duckdb.connect()
    con.execute("CREATE TABLE profiles AS SELECT 'p1' AS profile_id, 'u1' AS user_id, 'hi' AS bio")
    con.execute(
        "CREATE TABLE people AS SELECT * FROM (VALUES ('u1', 'p2', 'DE'), ('u2', 'p1', 'FR')) "
        "AS t(user_id, profile_id, country)"
    )
    compiled = _query(manifest, "profile__bio", "user__country")
    assert "FROM main.people AS people" in compiled.sql
    expected = _rows(
        con,
        "SELECT DISTINCT p.bio, u.country FROM people u "
        "FULL JOIN profiles p ON u.profile_id = p.profile_id",
    )
    assert ("hi", "FR") in expected and ("hi", "DE") not in expected
    assert _rows(con, compiled.sql) == expected


def test_candidates_are_models_holding_an_item_fewest_offered_first() -> None:
    """Filter items count as required items; people offers fewer items than profiles; teams
    holds none of them and is only a fallback."""
    manifest = _manifest(PROFILES, PEOPLE, TEAMS)
    item = parse_group_by("profile__bio", "group_by[0]")
    where = ["{{ Dimension('user__country') }} = 'DE'"]
    order = [(c.model.name, c.holds) for c in base_candidates(manifest, [item], where)]
    assert order == [("people", True), ("profiles", True), ("teams", False)]
    assert [(c.model.name, c.holds) for c in base_candidates(manifest, [item], [])] == [
        ("profiles", True),
        ("people", False),
        ("teams", False),
    ]


def test_offered_items_count_as_metricflow_read_nodes_do() -> None:
    """people: country and the entities user and profile, bare and under user, less
    user__user: 2 × 3 − 1. profiles: a daily time dimension offers day, 4 coarser grains and 6
    date parts (MetricFlow's, no ISO week): 2 × (2 + 11 + 2) − 1."""
    manifest = _manifest(PROFILES, PEOPLE)
    assert offered_items(manifest.semantic_models["people"]) == 5
    assert offered_items(manifest.semantic_models["profiles"]) == 29


# The no_dedupe shape: listings reference users, a daily snapshot partitioned by day.
LISTINGS = _model(
    "listings",
    [("listing", "primary", "listing_id"), ("user", "foreign", "user_id")],
    ["country"],
)
USER_SNAPSHOTS = _model(
    "user_snapshots",
    [("user", "primary", "user_id")],
    ["home_state", _day("ds_partitioned", partition=True)],
)


def test_a_filter_item_picks_the_base_and_a_snapshot_is_joined_on_its_entity() -> None:
    """The filter's listing__country is held only by listings, which reaches
    user__home_state: listings is the base, its users FULL OUTER JOINed on the user alone
    (listings has no partition to match), every snapshot row listed without GROUP BY, as
    MetricFlow's no_dedupe check query reads them. Before, the join was refused as a
    partition fan-out and no base was found."""
    manifest = _manifest(LISTINGS, USER_SNAPSHOTS)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE listings AS SELECT * FROM (VALUES ('l1', 'u1', 'us'), ('l2', 'u1', 'us'), "
        "('l3', 'u2', 'fr')) AS t(listing_id, user_id, country)"
    )
    con.execute(
        "CREATE TABLE user_snapshots AS SELECT * FROM (VALUES ('u1', 'CA', DATE '2024-01-01'), "
        "('u1', 'NY', DATE '2024-01-02'), ('u2', 'TX', DATE '2024-01-01')) "
        "AS t(user_id, home_state, ds_partitioned)"
    )
    compiled = _query(
        manifest,
        "user__home_state",
        where=("{{ Dimension('listing__country') }} = 'us'",),
        apply_group_by=False,
    )
    assert "FROM main.listings AS listings" in compiled.sql
    expected = _rows(
        con,
        "SELECT u.home_state FROM listings l FULL JOIN user_snapshots u "
        "ON l.user_id = u.user_id WHERE l.country = 'us'",
    )
    assert expected == [("CA",), ("CA",), ("NY",), ("NY",)]
    assert _rows(con, compiled.sql) == expected
