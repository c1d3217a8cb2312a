"""Dimension values (semantic/compiler/dimension_values.py): distinct values of one item,
from its own model or from the rows of given metrics, under a principal's policies and masks,
checked against plain SQL on the demo warehouse."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

from semantic.compiler.api import CompiledQuery, compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.dimension_values import (
    MAX_LIMIT,
    MSG_NEEDS_METRIC,
    dimension_values_compile,
)
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MetricQuery
from tally.errors import QueryError
from tests.conftest import ROOT
from tests.semantic.compiler.test_row_policies import MANIFEST, SALT

ADMIN = Principal("user:admin", unrestricted=True, view_pii=True)


def _values(con: duckdb.DuckDBPyConnection, compiled: CompiledQuery) -> list[Any]:
    if compiled.parameters:
        con.execute("SET VARIABLE tally_pii_salt = $1", [SALT])
    return [row[0] for row in con.execute(compiled.sql).fetchall()]


def _column(duck: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[Any]:
    return [r[0] for r in duck.execute(sql, list(params)).fetchall()]


def _tenants(duck: duckdb.DuckDBPyConnection) -> list[str]:
    return _column(duck, "SELECT DISTINCT tenant_id FROM accounts ORDER BY 1")


def test_values_of_a_dimension_from_its_own_model(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """With no metric, the values are those of the model whose primary entity starts the path."""
    compiled = dimension_values_compile(manifest, dimension="account__plan")
    expected = _column(duck, "SELECT DISTINCT plan FROM accounts ORDER BY 1")
    assert _values(duck, compiled) == expected
    assert compiled.columns == ("account__plan",)


def test_values_through_a_join_and_with_a_metric(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """A two-hop item from users, and the same item restricted to the rows a metric reads."""
    own = dimension_values_compile(manifest, dimension="user__account__region")
    expected = _column(
        duck,
        "SELECT DISTINCT a.region FROM users u LEFT JOIN accounts a ON u.account_id = a.id "
        "ORDER BY 1",
    )
    assert _values(duck, own) == expected
    with_metric = dimension_values_compile(
        manifest, dimension="account__region", metrics=["revenue"]
    )
    assert set(_values(duck, with_metric)) <= set(
        _values(duck, dimension_values_compile(manifest, dimension="account__region"))
    )
    assert "revenue@" in with_metric.sql.splitlines()[0]


def test_search_is_a_case_insensitive_substring_and_limit_reads_one_more(
    manifest: Manifest, duck: duckdb.DuckDBPyConnection
) -> None:
    """``search`` keeps values containing the text (``%``/``_`` are plain characters); the SQL
    reads ``limit + 1`` rows so that the caller can say the list was cut."""
    plans = _column(duck, "SELECT DISTINCT plan FROM accounts ORDER BY 1")
    needle = plans[0][1:3].upper()
    found = _values(
        duck, dimension_values_compile(manifest, dimension="account__plan", search=needle)
    )
    assert found == [p for p in plans if needle.lower() in p.lower()]
    assert (
        _values(duck, dimension_values_compile(manifest, dimension="account__plan", search="%"))
        == []
    )
    assert (
        len(_values(duck, dimension_values_compile(manifest, dimension="account__plan", limit=1)))
        == 2
    )


def test_a_restricted_principal_sees_only_its_tenants_values(
    duck: duckdb.DuckDBPyConnection,
) -> None:
    """Row policies apply with and without metrics: a tenant sees its own account ids only."""
    tenants = _tenants(duck)
    assert len(tenants) >= 2
    for tenant in tenants[:2]:
        principal = Principal("token:t", {"tenant_id": tenant})
        expected = _column(
            duck, "SELECT DISTINCT tenant_id FROM accounts WHERE tenant_id = ? ORDER BY 1", tenant
        )
        for metrics in ((), ("revenue",)):
            compiled = dimension_values_compile(
                MANIFEST, dimension="account__tenant_id", metrics=metrics, principal=principal
            )
            assert set(_values(duck, compiled)) <= {tenant, None}
        assert (
            _values(
                duck,
                dimension_values_compile(
                    MANIFEST, dimension="account__tenant_id", principal=principal
                ),
            )
            == expected
        )
    nobody = Principal("token:none", {})
    assert (
        _values(
            duck, dimension_values_compile(MANIFEST, dimension="account__plan", principal=nobody)
        )
        == []
    )


def test_pii_values_are_pseudonyms_for_a_principal_without_view_pii(
    duck: duckdb.DuckDBPyConnection,
) -> None:
    """A masked column's values are its salted pseudonyms, never the raw text, and the search
    runs on what the principal sees."""
    tenant = _tenants(duck)[0]
    principal = Principal("token:t", {"tenant_id": tenant})
    compiled = dimension_values_compile(MANIFEST, dimension="user__email", principal=principal)
    assert compiled.parameters
    shown = _values(duck, compiled)
    emails = set(_column(duck, "SELECT email FROM users"))
    assert shown and not set(shown) & emails
    raw_part = next(iter(emails)).split("@")[1]
    searched = dimension_values_compile(
        MANIFEST, dimension="user__email", principal=principal, search=raw_part
    )
    assert _values(duck, searched) == []
    unmasked = dimension_values_compile(
        MANIFEST, dimension="user__email", principal=ADMIN, limit=MAX_LIMIT
    )
    assert set(_values(duck, unmasked)) == emails


def test_where_filters_apply(manifest: Manifest, duck: duckdb.DuckDBPyConnection) -> None:
    compiled = dimension_values_compile(
        manifest,
        dimension="account__plan",
        where=["{{ Dimension('account__region') }} = 'EU'"],
    )
    expected = _column(duck, "SELECT DISTINCT plan FROM accounts WHERE region = 'EU' ORDER BY 1")
    assert _values(duck, compiled) == expected


@pytest.mark.parametrize(
    ("item", "metrics", "where"),
    [
        ("invoice__account__plan", (), ()),
        ("user__account__region", (), ()),
        ("account__plan", (), ("{{ Dimension('user__role') }} = 'admin'",)),
        ("account", (), ()),
        ("account__plan", ("revenue",), ()),
        ("account__plan", ("events_tracked", "revenue"), ()),
    ],
)
def test_values_are_the_column_of_the_query_they_filter(
    item: str,
    metrics: tuple[str, ...],
    where: tuple[str, ...],
    manifest: Manifest,
    duck: duckdb.DuckDBPyConnection,
) -> None:
    """The values of an item are the distinct rows of the query grouped by it: without
    metrics the query without metrics (its base model by MetricFlow's rule, FULL OUTER
    JOINs), with metrics the metric query (`mf list dimension-values --metrics`). Bug: without
    metrics they were read from the model of the item's first entity, LEFT JOINed onwards, so
    ``invoice__account__plan`` lacked the plan no invoiced account has (the SQL API's
    ``SELECT DISTINCT`` said 3 plans, ``group_by`` alone 4) and a filter on a model that one
    could not reach (``user__role`` for ``account__plan``) was refused (the query without
    metrics answers it from users)."""
    values = dimension_values_compile(
        manifest, dimension=item, metrics=metrics, where=where, limit=None
    )
    query = compile_query(MetricQuery(metrics=metrics, group_by=(item,), where=where), manifest)
    expected = {row[0] for row in duck.execute(query.sql).fetchall()}
    got = _values(duck, values)
    assert len(got) == len(set(got))
    assert set(got) == expected
    if item == "invoice__account__plan" and not metrics:
        # Every account's plan, as the FULL OUTER JOIN from invoices to accounts keeps it.
        assert set(_column(duck, "SELECT DISTINCT plan FROM accounts")) <= set(got)


# A second model with primary entity account holding `plan` (the plan of a current account,
# 'churned' otherwise): it offers fewer items than accounts, so MetricFlow's rule reads
# account__plan from it; the model of the entity first by name is accounts.
CURRENT_ACCOUNTS = {
    "name": "current_accounts",
    "node_relation": {"alias": "accounts", "schema_name": "main"},
    "entities": [{"name": "account", "type": "primary", "expr": "id"}],
    "dimensions": [
        {
            "name": "plan",
            "type": "categorical",
            "expr": "CASE WHEN churned_at IS NULL THEN plan ELSE 'churned' END",
        }
    ],
}


def test_values_without_metrics_come_from_the_base_model_metricflow_picks(
    duck: duckdb.DuckDBPyConnection,
) -> None:
    """Bug: with two models of entity account holding ``plan``, the values of account__plan
    (SQL API ``SELECT DISTINCT account__plan``, ``tally list dimension-values``) were read
    from the first by name (accounts: no 'churned') while ``group_by: [account__plan]``
    read the base MetricFlow picks (current_accounts, fewest items): two lists for one
    item. Both now read current_accounts."""
    project = load_project(ROOT / "fixtures")
    rows = [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()]
    rows.append(("semantic_model", "current_accounts", CURRENT_ACCOUNTS, "1.0"))
    manifest = build_manifest(rows, release="r1")
    assert _column(duck, "SELECT count(*) FROM accounts WHERE churned_at IS NOT NULL")[0] > 0
    values = _values(duck, dimension_values_compile(manifest, dimension="account__plan"))
    query = compile_query(MetricQuery(metrics=(), group_by=("account__plan",)), manifest)
    assert "current_accounts" in query.sql
    assert values == sorted(row[0] for row in duck.execute(query.sql).fetchall())
    assert "churned" in values


@pytest.mark.parametrize("dialect", DIALECTS)
def test_compiles_for_every_dialect(manifest: Manifest, dialect: str) -> None:
    for metrics in ((), ("revenue",)):
        compiled = dimension_values_compile(
            manifest, dimension="account__plan", metrics=metrics, search="o", dialect=dialect
        )
        assert "account__plan" in compiled.sql


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        (
            {"dimension": "metric_time__month"},
            "unreachable_dimension",
            MSG_NEEDS_METRIC.format(name="metric_time__month"),
        ),
        ({"dimension": "acount__plan"}, "unknown_dimension", None),
        ({"dimension": "account__plann"}, "unknown_dimension", None),
        ({"dimension": "account__plan", "limit": MAX_LIMIT + 1}, "bad_limit", None),
        ({"dimension": "account__plan", "search": "x" * 201}, "bad_search", None),
        ({"dimension": "account__plan", "metrics": ["revenu"]}, "unknown_metric", None),
    ],
)
def test_bad_requests_are_query_errors(
    manifest: Manifest, kwargs: dict[str, Any], code: str, message: str | None
) -> None:
    with pytest.raises(QueryError) as caught:
        dimension_values_compile(manifest, **kwargs)
    assert caught.value.code == code
    if message:
        assert caught.value.message == message
