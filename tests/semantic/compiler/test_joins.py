"""semantic.compiler.joins: a scan's entity joins, fan-out refusal, what a metric can group by."""

from __future__ import annotations

import pytest
from sqlglot import exp

from semantic.compiler.entity_graph import MSG_NO_TARGET
from semantic.compiler.joins import Source, queryable_items
from semantic.compiler.manifest import Manifest
from semantic.compiler.resolve import parse_group_by
from tally.errors import QueryError


def test_walk_joins_each_hop_once_to_the_unique_model(manifest: Manifest) -> None:
    """events → users → accounts: one LEFT JOIN per hop, aliased by the path."""
    source = Source(manifest.semantic_models["events"], manifest, "events_tracked")
    model, alias = source.walk(("user", "account"), "user__account__region")
    source.walk(("user",), "user__role")  # the first hop again: no new join
    assert (model.name, alias) == ("accounts", "user__account__accounts")
    assert list(source.joins) == ["user__users", "user__account__accounts"]
    sql = source.from_clause(exp.select("1")).sql("duckdb")
    assert sql == (
        "SELECT 1 FROM main.events AS events "
        "LEFT JOIN main.users AS user__users ON events.user_id = user__users.id "
        "LEFT JOIN main.accounts AS user__account__accounts "
        "ON user__users.account_id = user__account__accounts.id"
    )


def test_walk_refuses_an_entity_no_model_can_be_joined_on(manifest: Manifest) -> None:
    """No model has parent_account as a unique entity: there is nothing to join on it."""
    source = Source(manifest.semantic_models["accounts"], manifest, "new_accounts")
    with pytest.raises(QueryError) as info:
        source.walk(("parent_account",), "parent_account__plan")
    assert info.value.code == "unreachable_dimension"
    assert info.value.message == MSG_NO_TARGET.format(model="accounts", entity="parent_account")


def test_walk_refuses_an_entity_the_model_does_not_have(manifest: Manifest) -> None:
    """invoices have no user entity; the hint lists the entities it does link."""
    source = Source(manifest.semantic_models["invoices"], manifest, "revenue")
    with pytest.raises(QueryError) as info:
        source.walk(("user",), "user__role")
    assert info.value.code == "unreachable_dimension"
    assert (
        info.value.hint
        == "'invoices' has no entity 'user'; it links account, invoice, subscription"
    )


def test_item_expr_truncates_metric_time_to_the_grain(manifest: Manifest) -> None:
    """metric_time reads the measure's agg_time_dimension, truncated to the grain."""
    source = Source(manifest.semantic_models["events"], manifest, "events_tracked")
    measure = manifest.measures["events_tracked"]
    expr = source.item_expr(parse_group_by("metric_time__month", "g"), measure)
    assert expr.sql("duckdb") == "DATE_TRUNC('MONTH', events.occurred_at)"
    assert source.joins == {}


def test_item_expr_refuses_a_grain_on_a_categorical_dimension(manifest: Manifest) -> None:
    """account__plan__month: a grain only applies to time dimensions."""
    source = Source(manifest.semantic_models["events"], manifest, "events_tracked")
    with pytest.raises(QueryError) as info:
        source.item_expr(
            parse_group_by("account__plan__month", "g"), manifest.measures["events_tracked"]
        )
    assert info.value.code == "bad_grain"
    assert info.value.message == "'account__plan__month' is not a time dimension"


def test_queryable_items_reach_dimensions_through_unique_entities(manifest: Manifest) -> None:
    """events_tracked groups by its own and joined dimensions, entities and metric_time."""
    items = queryable_items(manifest, "events_tracked")
    for name in ("metric_time__month", "account", "account__plan", "user__account__region"):
        assert name in items
    assert "invoice__status" not in items  # invoices are not unique per event


def test_queryable_items_never_revisit_an_entity(manifest: Manifest) -> None:
    """Bug (issue 16): paths such as account__account__plan or account_id__account_id__…
    were offered; a path names each entity once, and every item offered compiles."""
    for metric in ("events_tracked", "revenue", "active_accounts"):
        for item in queryable_items(manifest, metric):
            parts = item.split("__")
            entities = [p for p in parts if any(p in m.entities for m in
                        manifest.semantic_models.values())]  # fmt: skip
            assert len(entities) == len(set(entities)), item
    assert "account__account" not in queryable_items(manifest, "events_tracked")
    assert "account__account__plan" not in queryable_items(manifest, "events_tracked")


def test_queryable_items_of_an_unknown_metric_is_an_error(manifest: Manifest) -> None:
    """The same unknown_metric error as a query, with a suggestion."""
    with pytest.raises(QueryError) as info:
        queryable_items(manifest, "signup")
    assert info.value.code == "unknown_metric"
