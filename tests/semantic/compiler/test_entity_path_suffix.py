"""A group-by item named by the end of its entity path (issue #16; MetricFlow's entity-link
suffix match): ``user__home_state`` from bookings, which has no user entity, resolves through
the one shortest reachable path ending in ``user``; two such paths are ``ambiguous_join``."""

from __future__ import annotations

from typing import Any

import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.entity_graph import (
    HINT_AMBIGUOUS_SUFFIX,
    MSG_AMBIGUOUS_SUFFIX,
    PathError,
    resolve_path,
)
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def model(name: str, entities: list[tuple[str, str]], dims: list[Any], **extra: Any) -> Any:
    spec: dict[str, Any] = {
        "name": name,
        "model": f"ref('{name}')",
        "entities": [{"name": e, "type": t, "expr": f"{e}_id"} for e, t in entities],
        "dimensions": [
            d if isinstance(d, dict) else {"name": d, "type": "categorical"} for d in dims
        ],
        **extra,
    }
    return ("semantic_model", name, spec, "1.0")


def stamp(name: str) -> dict[str, Any]:
    return {"name": name, "type": "time", "type_params": {"time_granularity": "second"}}


BOOKINGS = model(
    "bookings",
    [("booking", "primary"), ("listing", "foreign")],
    [{"name": "ds", "type": "time", "type_params": {"time_granularity": "day"}}],
    defaults={"agg_time_dimension": "ds"},
    measures=[{"name": "bookings", "agg": "sum", "expr": "1"}],
)
LISTINGS = model("listings", [("listing", "primary"), ("user", "foreign")], ["country"])
USERS = model("users", [("user", "primary"), ("region", "foreign")], ["home_state", stamp("login")])
REGIONS = model("regions", [("region", "primary"), ("zone", "foreign")], ["area"])
ZONES = model("zones", [("zone", "primary")], ["climate"])


def manifest(*rows: Any) -> Manifest:
    metric = {"name": "bookings", "type": "simple", "type_params": {"measure": "bookings"}}
    return build_manifest([*rows, ("metric", "bookings", metric, "1.0")])


def test_a_partial_path_resolves_through_the_one_path_ending_with_it() -> None:
    """Was unreachable_dimension: Tally read a path from its first entity only."""
    m = manifest(BOOKINGS, LISTINGS, USERS)
    chain = resolve_path(m, m.semantic_models["bookings"], ("user",), "home_state")
    assert not isinstance(chain, PathError)
    assert [(hop.entity, hop.model.name) for hop in chain] == [
        ("listing", "listings"),
        ("user", "users"),
    ]


def test_the_column_is_named_by_the_whole_path_and_order_by_may_use_the_short_name() -> None:
    """MetricFlow's output name is listing__user__login__minute; ordering by the name asked
    for still works (it is the same item)."""
    m = manifest(BOOKINGS, LISTINGS, USERS)
    query = MetricQuery(
        metrics=("bookings",),
        group_by=("user__login__minute", "user__home_state"),
        order_by=("-user__home_state", "user__login__minute"),
    )
    compiled = compile_query(query, m)
    assert compiled.columns == (
        "listing__user__home_state",
        "listing__user__login__minute",
        "bookings",
    )
    assert "LEFT JOIN main.users AS listing__user__users" in compiled.sql
    assert "ORDER BY\n  listing__user__home_state DESC,\n  listing__user__login__minute" in (
        compiled.sql
    )


def test_a_filter_on_a_partial_path_joins_the_same_path() -> None:
    """Dimension('user__home_state') in a where reads the same users row as the group-by."""
    m = manifest(BOOKINGS, LISTINGS, USERS)
    where = "{{ Dimension('user__home_state') }} = 'CA'"
    sql = compile_query(MetricQuery(metrics=("bookings",), where=(where,)), m).sql
    assert "listing__user__users" in sql and "= 'CA'" in sql


def test_a_path_written_in_full_is_never_read_as_a_suffix() -> None:
    """listing__country resolves as written (one hop), not as some longer path's end."""
    m = manifest(BOOKINGS, LISTINGS, USERS)
    chain = resolve_path(m, m.semantic_models["bookings"], ("listing",), "country")
    assert not isinstance(chain, PathError)
    assert [hop.model.name for hop in chain] == ["listings"]
    compiled = compile_query(MetricQuery(metrics=("bookings",), group_by=("listing__country",)), m)
    assert compiled.columns == ("listing__country", "bookings")


def test_two_paths_of_the_shortest_length_are_ambiguous_and_named() -> None:
    """bookings → listings → users and bookings → venues → users both end in user."""
    bookings = model(
        "bookings",
        [("booking", "primary"), ("listing", "foreign"), ("venue", "foreign")],
        [{"name": "ds", "type": "time", "type_params": {"time_granularity": "day"}}],
        defaults={"agg_time_dimension": "ds"},
        measures=[{"name": "bookings", "agg": "sum", "expr": "1"}],
    )
    venues = model("venues", [("venue", "primary"), ("user", "foreign")], ["size"])
    m = manifest(bookings, LISTINGS, USERS, venues)
    found = resolve_path(m, m.semantic_models["bookings"], ("user",), "home_state")
    assert isinstance(found, PathError) and found.code == "ambiguous_join"
    assert found.message == MSG_AMBIGUOUS_SUFFIX.format(
        item="user__home_state",
        model="bookings",
        entity="user",
        count=2,
        paths="listing__user__home_state (listings (on listing) → users (on user)) and "
        "venue__user__home_state (venues (on venue) → users (on user))",
    )
    assert found.hint == HINT_AMBIGUOUS_SUFFIX.format(example="listing__user__home_state")
    with pytest.raises(QueryError) as info:
        compile_query(MetricQuery(metrics=("bookings",), group_by=("user__home_state",)), m)
    assert info.value.code == "ambiguous_join"
    # The whole path still resolves, one hop chain each.
    whole = MetricQuery(metrics=("bookings",), group_by=("venue__user__home_state",))
    assert compile_query(whole, m).columns == ("venue__user__home_state", "bookings")


def test_the_shortest_matching_path_wins_over_a_longer_one() -> None:
    """region is reached by listing__user__region (3 hops) and by venue__region (2): the
    shorter one is taken, as MetricFlow keeps the shortest entity-link paths."""
    bookings = model(
        "bookings",
        [("booking", "primary"), ("listing", "foreign"), ("venue", "foreign")],
        [{"name": "ds", "type": "time", "type_params": {"time_granularity": "day"}}],
        defaults={"agg_time_dimension": "ds"},
        measures=[{"name": "bookings", "agg": "sum", "expr": "1"}],
    )
    venues = model("venues", [("venue", "primary"), ("region", "foreign")], ["size"])
    m = manifest(bookings, LISTINGS, USERS, REGIONS, venues)
    compiled = compile_query(MetricQuery(metrics=("bookings",), group_by=("region__area",)), m)
    assert compiled.columns == ("venue__region__area", "bookings")


def test_a_suffix_beyond_three_joins_stays_unreachable() -> None:
    """zone__climate is four joins from bookings (listing, user, region, zone): refused."""
    m = manifest(BOOKINGS, LISTINGS, USERS, REGIONS, ZONES)
    bookings = m.semantic_models["bookings"]
    assert not isinstance(resolve_path(m, bookings, ("region",), "area"), PathError)
    found = resolve_path(m, bookings, ("zone",), "climate")
    assert isinstance(found, PathError) and found.code == "unreachable_dimension"
    with pytest.raises(QueryError) as info:
        compile_query(MetricQuery(metrics=("bookings",), group_by=("zone__climate",)), m)
    assert info.value.code == "unreachable_dimension"


def test_a_query_without_metrics_prefers_a_base_reaching_items_as_written() -> None:
    """Was: bookings (a fact table) became the base of user__home_state by the suffix rule,
    and apply_group_by=False listed one row per booking (MetricFlow's no_dedupe case)."""
    m = manifest(BOOKINGS, LISTINGS, USERS)
    query = MetricQuery(
        metrics=(),
        group_by=("user__home_state",),
        where=("{{ Dimension('listing__country') }} = 'us'",),
        apply_group_by=False,
    )
    sql = compile_query(query, m).sql
    assert "FROM main.listings AS listings" in sql and "bookings" not in sql
