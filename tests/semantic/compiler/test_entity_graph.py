"""semantic.compiler.entity_graph and SCD joins: MetricFlow's join rules, per hop (issue #16)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot import exp

from semantic.compiler.api import compile_query, queryable_items
from semantic.compiler.entity_graph import (
    MSG_AMBIGUOUS,
    MSG_FAN_OUT,
    MSG_NATURAL_NO_WINDOW,
    MSG_SCD_TO_SCD,
    PathError,
    resolve_path,
)
from semantic.compiler.joins import MSG_SCD_NO_TIME, Source
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.spec import MetricQuery
from tally.errors import QueryError


def day(name: str, expr: str, **validity: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"time_granularity": "day"}
    if validity:
        params["validity_params"] = validity
    return {"name": name, "type": "time", "expr": expr, "type_params": params}


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


def metric(name: str, measure: str) -> Any:
    spec = {"name": name, "type": "simple", "type_params": {"measure": measure}}
    return ("metric", name, spec, "1.0")


BOOKINGS = model(
    "bookings",
    [("booking", "primary"), ("listing", "foreign"), ("guest", "foreign")],
    [day("ds", "ds")],
    defaults={"agg_time_dimension": "ds"},
    measures=[{"name": "bookings", "agg": "sum", "expr": "1"}],
)
LISTINGS_SCD = model(
    "listings",
    [("listing", "natural"), ("user", "foreign")],
    [
        day("valid_from", "active_from", is_start=True),
        day("valid_to", "active_to", is_end=True),
        "country",
        "capacity",
    ],
    primary_entity="listing",
)
LISTINGS_NOW = model("listings_latest", [("listing", "primary")], ["country_latest"])
USERS = model("users", [("user", "primary")], ["home_state"])


def manifest(*rows: Any) -> Manifest:
    return build_manifest([*rows, metric("bookings", "bookings")])


def test_a_shared_entity_resolves_through_the_model_that_holds_the_dimension() -> None:
    """An SCD model and a current-state model share entity listing: listing__country_latest
    joins listings_latest only, listing__country the SCD model only (was ambiguous_join)."""
    m = manifest(BOOKINGS, LISTINGS_SCD, LISTINGS_NOW)
    bookings = m.semantic_models["bookings"]
    latest = resolve_path(m, bookings, ("listing",), "country_latest")
    scd = resolve_path(m, bookings, ("listing",), "country")
    assert not isinstance(latest, PathError) and not isinstance(scd, PathError)
    assert [hop.model.name for hop in latest] == ["listings_latest"]
    assert [hop.model.name for hop in scd] == ["listings"]
    assert {"listing__country", "listing__country_latest"} <= set(queryable_items(m, "bookings"))


def test_an_item_two_models_supply_is_ambiguous_and_names_both() -> None:
    """Two models with listing as primary and both with 'country': refused, both named."""
    other = model("listings_copy", [("listing", "unique")], ["country_latest"])
    m = manifest(BOOKINGS, LISTINGS_NOW, other)
    found = resolve_path(m, m.semantic_models["bookings"], ("listing",), "country_latest")
    assert isinstance(found, PathError) and found.code == "ambiguous_join"
    assert found.message == MSG_AMBIGUOUS.format(
        item="listing__country_latest",
        paths="listings_copy (on listing) and listings_latest (on listing)",
    )
    assert "listing__country_latest" not in queryable_items(m, "bookings")


def test_the_scd_join_picks_the_row_valid_at_the_measures_time() -> None:
    """start <= t AND (t < end OR end IS NULL), each side at its dimension's grain."""
    m = manifest(BOOKINGS, LISTINGS_SCD)
    source = Source(m.semantic_models["bookings"], m, "bookings", "ds")
    _, alias = source.walk(("listing",), "listing__country")
    sql = source.from_clause(exp.select("1")).sql("duckdb")
    assert alias == "listing__listings"
    assert sql == (
        "SELECT 1 FROM main.bookings AS bookings LEFT JOIN main.listings AS listing__listings "
        "ON bookings.listing_id = listing__listings.listing_id AND "
        "(DATE_TRUNC('DAY', listing__listings.active_from) <= DATE_TRUNC('DAY', bookings.ds) "
        "AND (DATE_TRUNC('DAY', bookings.ds) < DATE_TRUNC('DAY', listing__listings.active_to) "
        "OR DATE_TRUNC('DAY', listing__listings.active_to) IS NULL))"
    )


def test_a_hop_past_an_scd_model_keeps_the_window_on_the_measures_time() -> None:
    """listing__user__home_state: SCD listings (window on bookings.ds), then users."""
    m = manifest(BOOKINGS, LISTINGS_SCD, USERS)
    sql = compile_query(
        MetricQuery(metrics=("bookings",), group_by=("listing__user__home_state",)), m
    ).sql
    assert "DATE_TRUNC('DAY', bookings.ds) < DATE_TRUNC('DAY', listing__listings.active_to)" in sql
    assert "LEFT JOIN main.users AS listing__user__users" in sql


def test_an_scd_join_without_the_measures_time_is_refused() -> None:
    """A read with no measure (a row policy's home) cannot pick the row valid 'then'."""
    m = manifest(BOOKINGS, LISTINGS_SCD)
    source = Source(m.semantic_models["bookings"], m, "row policy on listing")
    with pytest.raises(QueryError) as info:
        source.walk(("listing",), "listing__country")
    assert info.value.code == "scd_needs_time"
    assert info.value.message == MSG_SCD_NO_TIME.format(
        name="listing__country", model="listings", source="row policy on listing"
    )


def test_a_natural_entity_without_a_validity_window_is_not_joined() -> None:
    """No window: many rows per listing, the measure would fan out."""
    plain = model("listing_notes", [("listing", "natural")], ["note"])
    m = manifest(BOOKINGS, plain)
    found = resolve_path(m, m.semantic_models["bookings"], ("listing",), "note")
    assert isinstance(found, PathError) and found.code == "fan_out"
    assert found.message == MSG_NATURAL_NO_WINDOW.format(
        target="listing_notes", model="bookings", entity="listing"
    )


def test_two_scd_models_are_never_joined() -> None:
    """SCD → SCD: two windows in one join (MetricFlow refuses it too)."""
    owners = model(
        "owners",
        [("user", "natural")],
        [day("f", "f", is_start=True), day("t", "t", is_end=True), "tier"],
        primary_entity="user",
    )
    m = manifest(BOOKINGS, LISTINGS_SCD, owners)
    found = resolve_path(m, m.semantic_models["bookings"], ("listing", "user"), "tier")
    assert isinstance(found, PathError) and found.code == "fan_out"
    assert found.message == MSG_SCD_TO_SCD.format(target="owners", model="listings", entity="user")


def test_a_join_to_a_foreign_entity_is_refused_naming_entity_and_models() -> None:
    """bookings → reviews on listing (foreign in reviews): many reviews per listing."""
    reviews = model("reviews", [("review", "primary"), ("listing", "foreign")], ["stars"])
    m = manifest(BOOKINGS, reviews)
    with pytest.raises(QueryError) as info:
        compile_query(MetricQuery(metrics=("bookings",), group_by=("listing__stars",)), m)
    assert info.value.code == "fan_out"
    assert info.value.message == MSG_FAN_OUT.format(
        target="reviews", model="bookings", entity="listing", type="foreign"
    )


def test_validation_warns_about_a_dimension_two_models_of_one_entity_hold(tmp_path: Any) -> None:
    """Issue #16: the ambiguity surfaces at validate with file and line, not first at query."""
    import shutil

    from semantic.compiler.definition_checks import MSG_AMBIGUOUS_ITEM, load_project
    from tests.conftest import ROOT

    shutil.copytree(ROOT / "fixtures", tmp_path / "fixtures")
    (tmp_path / "fixtures" / "semantic_models" / "account_facts.yml").write_text(
        """version: 2
semantic_models:
  - name: account_facts
    model: ref('accounts')
    primary_entity: account_fact
    config: {meta: {owner: growth-analytics, domain: growth, tier: standard}}
    entities: [{name: account, type: unique, expr: id}]
    dimensions: [{name: region, type: categorical}]
"""
    )
    issues = load_project(tmp_path / "fixtures").issues
    assert not issues.errors, [i.cli_lines() for i in issues.errors]
    found = [i for i in issues.warnings if i.code == "ambiguous_item"]
    assert [i.message for i in found] == [
        MSG_AMBIGUOUS_ITEM.format(
            item="account__region", first="account_facts", second="accounts", entity="account"
        )
    ]
    assert found[0].file.endswith("accounts.yml") and found[0].line > 0
