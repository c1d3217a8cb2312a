"""dbt projects are ordered by the manifest's ``depends_on``, never by names guessed from the
SQL: a CTE named like the model it reads (``order_items as (select * from {{ ref(...) }})``,
jaffle-shop's style) must not hide the dependency (issue #21)."""

from __future__ import annotations

from lineage.sql_lineage import (
    SqlModel,
    column_influences,
    dbt_sources_schema,
    models_from_dbt_manifest,
    project_edges,
)
from tests.conftest import ROOT

SHOP = ROOT / "tests" / "lineage" / "data" / "dbt_shop" / "manifest.json"


def shop_edges() -> set[tuple[str, str, str]]:
    return {
        e.key
        for e in project_edges(models_from_dbt_manifest(SHOP), schema=dbt_sources_schema(SHOP))
    }


def test_manifest_models_carry_their_ref_dependencies_only() -> None:
    """source() dependencies and tests are not models; ref()s are."""
    models = {m.name: m for m in models_from_dbt_manifest(SHOP)}
    assert set(models) == {
        "orders", "order_items", "stg_orders", "stg_order_items", "stg_products", "stg_supplies",
    }  # fmt: skip
    assert models["orders"].depends_on == ("stg_orders", "order_items")
    assert models["stg_orders"].depends_on == ()


def test_orders_columns_trace_through_order_items_to_raw_tables() -> None:
    """The bug of issue #21: `orders` was processed before `order_items` (its CTE of the same
    name hid the dependency), so its summary columns got no lineage from `order_items`."""
    edges = shop_edges()
    orders = "shop.main.orders"
    items = "shop.main.order_items"
    for column, source in [
        ("order_cost", "supply_cost"),
        ("order_items_subtotal", "product_price"),
        ("count_order_items", "order_item_id"),
    ]:
        assert (f"{items}.{source}", f"{orders}.{column}", "direct") in edges, column
    assert (f"{items}.is_food_item", f"{orders}.count_food_items", "indirect") in edges
    # …and on to the raw tables, through two models.
    everything = project_edges(models_from_dbt_manifest(SHOP), schema=dbt_sources_schema(SHOP))
    cost = column_influences(everything, f"{orders}.order_cost")
    assert "shop.raw.raw_supplies.cost" in cost
    assert "shop.raw.raw_supplies.sku" in cost  # the join key that matches supplies to items
    assert column_influences(everything, f"{orders}.order_cost", direct_only=True) == {
        f"{items}.supply_cost",
        "shop.main.stg_supplies.supply_cost",
        "shop.raw.raw_supplies.cost",
    }
    assert "shop.raw.raw_products.price" in column_influences(
        everything, f"{orders}.order_items_subtotal", direct_only=True
    )


def test_orders_star_over_stg_orders_expands_against_the_earlier_model() -> None:
    edges = shop_edges()
    assert ("shop.main.stg_orders.order_total", "shop.main.orders.order_total", "direct") in edges
    assert ("shop.raw.raw_orders.customer", "shop.main.stg_orders.customer_id", "direct") in edges


def test_without_stated_dependencies_a_cte_shadowing_a_model_still_orders_it_first() -> None:
    """A folder of plain SQL has no manifest: an unqualified name inside a CTE's own body is
    the real table (the CTE is not visible there), so `order_items` still comes first."""
    models = [
        SqlModel("orders", "with order_items as (select * from order_items) "
                 "select order_id, sum(cost) as order_cost from order_items group by 1"),
        SqlModel("order_items", "select order_id, cost from raw.items"),
    ]  # fmt: skip
    edges = {e.key for e in project_edges(models, schema={"raw.items": ["order_id", "cost"]})}
    assert ("main.order_items.cost", "main.orders.order_cost", "direct") in edges


def test_a_cte_reference_is_not_a_dependency_on_the_model_of_that_name() -> None:
    """Inside the query, `orders` after its CTE is the CTE: the `orders` model (listed later)
    is not read, so no edge leaves it."""
    models = [
        SqlModel("report", "with orders as (select id, amount from raw.o) "
                 "select id, amount from orders"),
        SqlModel("orders", "select id, amount * 2 as amount from raw.o"),
    ]  # fmt: skip
    edges = {e.key for e in project_edges(models, schema={"raw.o": ["id", "amount"]})}
    assert ("raw.o.amount", "main.report.amount", "direct") in edges
    assert not any(s.startswith("main.orders.") for s, _, _ in edges)
