"""Dimension values of one item reached through joins give DuckDB's values on MariaDB and
PostgreSQL. The query without metrics FULL OUTER JOINs the base model to the item's model
(semantic.compiler.dimension_query); MariaDB has no FULL OUTER JOIN, so it was refused there
(``unsupported_join``) and is now read as a UNION of LEFT JOIN chains
(semantic.compiler.full_join_union). The demo gets rows that only a FULL JOIN lists: an
account no user belongs to (its region 'Polar' is listed), a user of no account and an event
of no user (each a NULL region).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from semantic.compiler.api import compile_query
from semantic.compiler.dimension_values import dimension_values_compile
from semantic.compiler.principal import Principal
from semantic.compiler.spec import MetricQuery
from semantic.warehouse.execute import execute
from tests.conftest import demo_on_engines, demo_warehouse_at
from tests.integration.test_engines import manifest_for

ORPHANS = (
    # An account without users, in a region and a tenant no other account has.
    "INSERT INTO accounts SELECT * REPLACE (id + 1000000 AS id, 'Polar' AS region, "
    "'polar' AS tenant_id) FROM accounts ORDER BY id LIMIT 1",
    # A user whose account does not exist, and an event whose user does not.
    "INSERT INTO users SELECT * REPLACE (id + 1000000 AS id, 999999 AS account_id) "
    "FROM users ORDER BY id LIMIT 1",
    "INSERT INTO events SELECT * REPLACE ('orphan-1' AS event_id, 999999 AS user_id) "
    "FROM events ORDER BY event_id LIMIT 1",
)
ITEMS = (
    "account__plan",
    "user__account__region",
    "user__account__plan",
    "subscription__account__plan",
    "user__country",
)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo plus ``ORPHANS`` in DuckDB, PostgreSQL and MariaDB."""
    source: Path = tmp_path_factory.mktemp("dimension_values") / "demo.duckdb"
    demo_warehouse_at(source, events=2_000, seed=42)
    con = duckdb.connect(str(source))
    for statement in ORPHANS:
        con.execute(statement)
    con.close()
    with demo_on_engines(source, "tally_dimv") as loaded:
        yield loaded


def _values(
    engines: dict[str, Any], engine: str, item: str, principal: Principal | None = None,
    where: tuple[str, ...] = (),
) -> list[Any]:  # fmt: skip
    config, schema = engines[engine]
    compiled = dimension_values_compile(
        manifest_for(schema), dimension=item, limit=None, dialect=config.dialect,
        principal=principal, where=where,
    )  # fmt: skip
    assert not compiled.parameters  # no PII salt to bind for these items
    return sorted((row[0] for row in execute(config, compiled.sql).rows), key=repr)


def test_duckdb_lists_what_only_a_full_join_reaches(engines: dict[str, Any]) -> None:
    """The expected values hold the orphans' marks, so the engines are compared on them."""
    values = _values(engines, "duckdb", "user__account__region")
    assert "Polar" in values and None in values


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
@pytest.mark.parametrize("item", ITEMS)
def test_dimension_values_through_joins_equal_duckdb_s(
    item: str, engine: str, engines: dict[str, Any]
) -> None:
    """Bug: on MariaDB the values of an item reached through a join (user__account__region,
    subscription__account__plan) were refused with unsupported_join."""
    assert _values(engines, engine, item) == _values(engines, "duckdb", item)


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_row_policies_hold_in_every_branch(engines: dict[str, Any], engine: str) -> None:
    """A tenant's values through the joins are DuckDB's for that tenant (the policy filters
    each read of each UNION branch), and fewer than everyone's."""
    config, _ = engines["duckdb"]
    most = "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    tenant = str(execute(config, most).rows[0][0])
    principal = Principal(f"user:{tenant}", {"tenant_id": tenant})
    item = "user__account__region"
    mine = _values(engines, engine, item, principal)
    assert mine == _values(engines, "duckdb", item, principal)
    assert "Polar" not in mine  # another tenant's account
    assert len(mine) < len(_values(engines, "duckdb", item))


@pytest.mark.parametrize("engine", ["mysql", "postgres"])
def test_values_filtered_on_the_item_s_own_model_equal_duckdb_s(
    engines: dict[str, Any], engine: str
) -> None:
    """A filter on the item's own model (accounts) applies in every UNION branch."""
    item, where = "user__account__region", ("{{ Dimension('user__account__plan') }} <> 'free'",)
    expected = _values(engines, "duckdb", item, where=where)
    assert expected and None not in expected  # NULL accounts fail the filter
    assert _values(engines, engine, item, where=where) == expected


def test_min_max_of_an_item_through_joins_on_mariadb_equals_duckdb_s(
    engines: dict[str, Any],
) -> None:
    """``min_max_only`` reads the least and greatest value from the UNION too."""
    rows = {}
    for engine in ("duckdb", "mysql"):
        config, schema = engines[engine]
        query = MetricQuery(
            metrics=(), group_by=("user__account__region",), min_max_only=True,
            dialect=config.dialect,
        )  # fmt: skip
        rows[engine] = list(execute(config, compile_query(query, manifest_for(schema)).sql).rows)
    assert rows["mysql"] == rows["duckdb"] and rows["duckdb"][0][0] is not None
