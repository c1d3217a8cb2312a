"""Row-level security and PII masking in the compiled SQL (semantic/compiler/policies.py).

The reference for every tenant is computed by hand: a copy of the warehouse that holds only
the tenant's accounts and the rows of those accounts (users, events, subscriptions,
invoices by their account_id), queried with the *unsecured* SQL. The secured SQL on the full
warehouse must give exactly those rows, for every metric type, filter and group-by.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from semantic.compiler.api import CompiledQuery, compile_query
from semantic.compiler.definition_checks import load_project
from semantic.compiler.manifest import Manifest, build_manifest
from semantic.compiler.policy_rules import MSG_MASKED_FILTER, check_row_policies
from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MetricQuery
from semantic.warehouse.execute import normalize_rows_for_compare
from tally.errors import QueryError
from tests.conftest import ROOT
from tests.semantic.compiler.test_properties import queries

SALT = "test-salt-9f8e7d"
TENANT_POLICY = {
    "entity": "account",
    "filter": "{{ Dimension('account__tenant_id') }} = {{ principal.tenant_id }}",
}
REGION_POLICY = {
    "entity": "account",
    "filter": "{{ Dimension('account__region') }} IN {{ principal.regions }}",
}


def _rows_with(edit: Any) -> list[tuple[str, str, dict[str, Any], str]]:
    project = load_project(ROOT / "fixtures")
    rows = [
        (kind, name, copy.deepcopy(obj.spec), "1.0")
        for (kind, name), obj in project.objects.items()
    ]
    for kind, name, spec, _ in rows:
        edit(kind, name, spec)
    return rows


def _with_email(kind: str, name: str, spec: dict[str, Any]) -> None:
    # The fixtures expose email as a dimension; these tests also aggregate it (a measure) to
    # prove that a PII column is masked wherever it is read.
    if kind == "semantic_model" and name == "users":
        assert any(d["name"] == "email" for d in spec["dimensions"])
        spec["measures"].append(
            {"name": "distinct_emails", "agg": "count_distinct", "expr": "email"}
        )


@cache
def pii_manifest(schema: str = "main") -> Manifest:
    """fixtures/ (tenant policy on account; users.email a dimension) plus a measure over email;
    ``schema`` is where the warehouse keeps the tables (PostgreSQL: public)."""
    rows = _rows_with(_with_email)
    rows.append(
        (
            "metric",
            "distinct_user_emails",
            {
                "name": "distinct_user_emails",
                "type": "simple",
                "type_params": {"measure": {"name": "distinct_emails"}},
            },
            "1.0",
        )
    )
    return build_manifest(rows, release="r1", default_schema=schema, schema_map={"main": schema})


@cache
def region_manifest() -> Manifest:
    """fixtures/ with a second policy on account: the principal's regions (a list)."""

    def edit(kind: str, name: str, spec: dict[str, Any]) -> None:
        if kind == "semantic_model" and name == "accounts":
            spec["config"]["meta"]["tally"]["row_policies"].append(dict(REGION_POLICY))

    return build_manifest(_rows_with(edit), release="r1")


MANIFEST = pii_manifest()


def _run(con: duckdb.DuckDBPyConnection, compiled: CompiledQuery) -> list[tuple[Any, ...]]:
    if compiled.parameters:
        con.execute("SET VARIABLE tally_pii_salt = $1", [SALT])
    return sorted(normalize_rows_for_compare(con.execute(compiled.sql).fetchall()), key=repr)


def _filtered_copy(source: Path, target: Path, condition: str) -> Path:
    """A warehouse holding only the accounts matching ``condition`` and their rows."""
    con = duckdb.connect(str(target))
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'src'"
        ).fetchall()
    ]
    con.execute(f"CREATE TABLE accounts AS SELECT * FROM src.main.accounts WHERE {condition}")
    for table in tables:
        if table == "accounts":
            continue
        columns = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_catalog = 'src' AND table_name = ?",
                [table],
            ).fetchall()
        }
        where = " WHERE account_id IN (SELECT id FROM accounts)" if "account_id" in columns else ""
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.main.{table}{where}")
    con.close()
    return target


@pytest.fixture(scope="module")
def tenants(warehouse_path: Path) -> list[str]:
    """The two tenants with the most accounts."""
    con = duckdb.connect(str(warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT tenant_id FROM accounts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 2"
        ).fetchall()
    finally:
        con.close()
    return [row[0] for row in rows]


@pytest.fixture(scope="module")
def by_hand(
    warehouse_path: Path, tenants: list[str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, duckdb.DuckDBPyConnection]]:
    """tenant → a read-only connection to the warehouse filtered by hand to that tenant."""
    folder = tmp_path_factory.mktemp("tenants")
    cons = {}
    for tenant in [*tenants, "t-nobody"]:
        path = _filtered_copy(
            warehouse_path, folder / f"{tenant}.duckdb", f"tenant_id = '{tenant}'"
        )
        cons[tenant] = duckdb.connect(str(path), read_only=True)
    yield cons
    for con in cons.values():
        con.close()


RANGE = {"start_time": "2026-01-01", "end_time": "2026-06-30"}
# One query per way of reading a semantic model, each trying to reach other tenants' rows.
ADVERSARIAL: dict[str, MetricQuery] = {
    "simple_on_facts": MetricQuery(metrics=("revenue",), group_by=("metric_time__month",)),
    "group_by_other_entity": MetricQuery(metrics=("events_tracked",), group_by=("account",)),
    "dimension_through_join": MetricQuery(
        metrics=("events_tracked", "new_accounts"), group_by=("account__region", "account__plan")
    ),
    "two_hops": MetricQuery(metrics=("events_tracked",), group_by=("user__account__tenant_id",)),
    "group_by_tenant": MetricQuery(metrics=("signups",), group_by=("account__tenant_id",)),
    "parent_hop": MetricQuery(metrics=("new_accounts",), group_by=("parent_account",)),
    "where_other_tenant": MetricQuery(
        metrics=("revenue",), where=("{{ Dimension('account__tenant_id') }} <> 'x'",)
    ),
    "where_or_true": MetricQuery(
        metrics=("events_tracked",),
        where=("{{ Dimension('account__plan') }} = 'pro' OR 1 = 1",),
    ),
    "derived": MetricQuery(metrics=("net_new_accounts", "arpa"), group_by=("metric_time__month",)),
    "ratio": MetricQuery(
        metrics=("feature_adoption_rate", "paid_invoice_rate"), group_by=("metric_time__month",)
    ),
    "cumulative_window": MetricQuery(
        metrics=("weekly_active_users",), group_by=("metric_time__week",), **RANGE
    ),
    "cumulative_to_date": MetricQuery(
        metrics=("revenue_month_to_date",), group_by=("metric_time__day",), **RANGE
    ),
    "cumulative_all_time": MetricQuery(
        metrics=("cumulative_revenue", "accounts_created_to_date"),
        group_by=("metric_time__month", "account__plan"),
        **RANGE,
    ),
    "cumulative_all_time_total": MetricQuery(metrics=("cumulative_revenue",)),
    "conversion": MetricQuery(
        metrics=("trial_to_paid_rate_14d", "activation_rate_7d"),
        group_by=("metric_time__month",),
    ),
    "conversion_by_dimension": MetricQuery(
        metrics=("trial_to_paid_conversions_14d",), group_by=("account__region",)
    ),
    "offset": MetricQuery(
        metrics=("revenue_growth_mom",), group_by=("metric_time__month",), **RANGE
    ),
    "offset_to_grain": MetricQuery(
        metrics=("mrr_change_month_to_date", "logo_retention"),
        group_by=("metric_time__day",),
        **RANGE,
    ),
    "join_to_timespine": MetricQuery(
        metrics=("new_accounts", "churned_accounts"), group_by=("metric_time__day",), **RANGE
    ),
    "where_on_entity_keys": MetricQuery(
        metrics=("events_tracked", "signups"),
        group_by=("account",),
        where=("{{ Entity('account') }} > 0 OR {{ Entity('account') }} IS NULL",),
    ),
    "non_additive": MetricQuery(
        metrics=("current_mrr",), group_by=("metric_time__month", "account__plan")
    ),
    "derived_over_cumulative": MetricQuery(metrics=("mrr",), group_by=("metric_time__month",)),
    "metric_in_where": MetricQuery(
        metrics=("events_tracked",),
        group_by=("metric_time__month",),
        where=("{{ Metric('revenue', group_by=['account']) }} > 100",),
    ),
    "percentiles": MetricQuery(metrics=("median_invoice_amount", "p90_invoice_amount")),
    "pii_aggregate": MetricQuery(metrics=("distinct_user_emails",), group_by=("account__plan",)),
    "order_limit": MetricQuery(
        metrics=("revenue",), group_by=("account",), order_by=("-revenue", "account"), limit=5
    ),
    # Having filters the rows the tenant may see: other tenants' groups never pass into it.
    "having_on_outputs": MetricQuery(
        metrics=("revenue", "events_tracked"),
        group_by=("account",),
        having=("revenue > 0 OR events_tracked > 10",),
        order_by=("-revenue", "account"),
        limit=20,
    ),
}


def _as(tenant: str, **kwargs: Any) -> Principal:
    return Principal(f"user:{tenant}", {"tenant_id": tenant}, **kwargs)


@pytest.mark.parametrize("level", [None, 0], ids=["optimized", "O0"])
@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_each_tenant_gets_exactly_its_hand_filtered_rows(
    case: str,
    level: int | None,
    duck: duckdb.DuckDBPyConnection,
    by_hand: dict[str, duckdb.DuckDBPyConnection],
    tenants: list[str],
) -> None:
    """Every metric type, join, filter and group-by, compiled for a tenant, returns the rows
    the unsecured query returns on a warehouse holding only that tenant's accounts."""
    query = ADVERSARIAL[case]
    plain = compile_query(query, MANIFEST, level=level)
    seen = []
    for tenant in tenants:
        secured = compile_query(query, MANIFEST, level=level, principal=_as(tenant, view_pii=True))
        expected = _run(by_hand[tenant], plain)
        assert _run(duck, secured) == expected, f"{case} leaks for {tenant}"
        seen.append(expected)
    # Non-vacuous: each tenant sees rows, and not the same ones.
    assert any(seen[0]) and any(seen[1]), f"{case}: a tenant saw no rows, nothing was compared"
    assert seen[0] != seen[1], "the two tenants should see different data"


def test_a_principal_without_a_tenant_gets_no_rows(
    duck: duckdb.DuckDBPyConnection, by_hand: dict[str, duckdb.DuckDBPyConnection]
) -> None:
    """A missing attribute makes the policy FALSE: the rows of an empty warehouse, never all
    rows, for every adversarial query."""
    nobody = Principal("token:unbound", {}, view_pii=True)
    for case, query in ADVERSARIAL.items():
        compiled = compile_query(query, MANIFEST, principal=nobody)
        assert "FALSE" in compiled.sql
        assert _run(duck, compiled) == _run(by_hand["t-nobody"], compile_query(query, MANIFEST)), (
            case
        )
        for row in _run(duck, compiled):
            values = row[len(row) - len(query.metrics) :]
            assert all(v in (None, 0.0) for v in values), (case, row)


def test_an_unrestricted_principal_sees_every_row(duck: duckdb.DuckDBPyConnection) -> None:
    """unrestricted (admins, auditors) skips row policies; the SQL is the trusted SQL."""
    query = ADVERSARIAL["dimension_through_join"]
    admin = Principal("user:admin", {}, view_pii=True, unrestricted=True)
    assert compile_query(query, MANIFEST, principal=admin).sql == compile_query(query, MANIFEST).sql


def test_no_principal_compiles_exactly_as_before() -> None:
    """principal=None is the trusted path: no policy, no mask, no parameter."""
    compiled = compile_query(ADVERSARIAL["pii_aggregate"], MANIFEST)
    assert "tenant_id" not in compiled.sql and "MD5" not in compiled.sql
    assert compiled.parameters == ()


def test_every_read_of_a_model_carrying_the_entity_is_filtered() -> None:
    """Each reference to users/events/accounts/subscriptions/invoices in the SQL sits inside
    a derived table that applies the policy (none reaches the raw table unfiltered)."""
    for case, query in ADVERSARIAL.items():
        tree = sqlglot.parse_one(
            compile_query(query, MANIFEST, principal=_as("t1")).sql, read="duckdb"
        )
        for table in tree.find_all(sqlglot.exp.Table):
            if table.db != "main" or table.name in ("time_spine", "tally_time_spine"):
                continue
            select = table.find_ancestor(sqlglot.exp.Select)
            assert select is not None and select.args.get("where") is not None, (case, table)
            assert "t1" in select.args["where"].sql(), (case, table.sql())


def test_a_list_attribute_filters_with_in(
    duck: duckdb.DuckDBPyConnection, warehouse_path: Path, tenants: list[str], tmp_path: Path
) -> None:
    """{{ principal.regions }} in an IN is a list of literals; both policies apply (AND)."""
    manifest = region_manifest()
    tenant = tenants[0]
    first = duck.execute(
        "SELECT min(region) FROM accounts WHERE tenant_id = ? AND region <> 'LATAM'", [tenant]
    ).fetchone()
    assert first is not None
    regions = [first[0], "LATAM"]
    condition = f"tenant_id = '{tenant}' AND region IN ({', '.join(repr(r) for r in regions)})"
    con = duckdb.connect(str(_filtered_copy(warehouse_path, tmp_path / "r.duckdb", condition)))
    principal = Principal("u", {"tenant_id": tenant, "regions": regions})
    for case in ("dimension_through_join", "conversion", "derived"):
        query = ADVERSARIAL[case]
        secured = compile_query(query, manifest, principal=principal)
        assert _run(duck, secured) == _run(con, compile_query(query, manifest)), case
    con.close()
    empty = Principal("u", {"tenant_id": tenant, "regions": []})
    sql = compile_query(ADVERSARIAL["simple_on_facts"], manifest, principal=empty).sql
    assert "FALSE" in sql


def test_each_principal_gets_its_own_policy_read_from_the_per_release_cache() -> None:
    """Row-policy reads are kept per (model, principal) on the manifest (compile speed,
    issue #16): a tenant's compile never reuses another tenant's read, attributes equal in
    Python but bound as different literals (1, True, "1") stay apart, and a missing
    attribute is FALSE after another principal's read was cached."""
    query = ADVERSARIAL["simple_on_facts"]
    first = compile_query(query, MANIFEST, principal=_as("t1")).sql
    second = compile_query(query, MANIFEST, principal=_as("t2")).sql
    assert "'t1'" in first and "'t2'" not in first
    assert "'t2'" in second and "'t1'" not in second
    assert compile_query(query, MANIFEST, principal=_as("t1")).sql == first
    bound = {
        repr(value): compile_query(
            query, MANIFEST, principal=Principal("u", {"tenant_id": value}, view_pii=True)
        ).sql
        for value in (1, True, "1")
    }
    assert "= 1" in bound["1"] and "TRUE" in bound["True"] and "= '1'" in bound["'1'"]
    nobody = compile_query(query, MANIFEST, principal=Principal("u", {}, view_pii=True)).sql
    assert "FALSE" in nobody and "'t1'" not in nobody


def test_principal_values_are_literals_not_sql(duck: duckdb.DuckDBPyConnection) -> None:
    """An attribute holding SQL stays one quoted literal: no extra statement, no rows."""
    evil = Principal("u", {"tenant_id": "t1' OR '1'='1"}, view_pii=True)
    compiled = compile_query(ADVERSARIAL["simple_on_facts"], MANIFEST, principal=evil)
    assert len(sqlglot.parse(compiled.sql, read="duckdb")) == 1
    assert _run(duck, compiled) == []


def test_a_list_attribute_in_an_equality_is_refused() -> None:
    """A list where the policy compares with = is an error naming the attribute."""
    principal = Principal("u", {"tenant_id": ["t1", "t2"]})
    with pytest.raises(QueryError) as raised:
        compile_query(ADVERSARIAL["simple_on_facts"], MANIFEST, principal=principal)
    assert raised.value.code == "bad_principal"
    assert "tenant_id" in raised.value.message


# --------------------------------------------------------------------------- masking


EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


@pytest.mark.parametrize("level", [None, 0], ids=["optimized", "O0"])
def test_masks_survive_joins_and_sql_passes(
    duck: duckdb.DuckDBPyConnection, level: int | None
) -> None:
    """A masked dimension one and two joins away (events → users, with accounts), optimised
    or not: the same counts per pseudonym as per address."""
    query = MetricQuery(
        metrics=("events_tracked", "tracked_revenue"), group_by=("user__email", "account__plan")
    )
    principal = _as("t", unrestricted=True)
    masked = _run(duck, compile_query(query, MANIFEST, level=level, principal=principal))
    plain = _run(duck, compile_query(query, MANIFEST, level=level))

    # Columns: account__plan, user__email, then the metrics.
    def without_email(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return sorted(((r[0], *r[2:]) for r in rows), key=repr)

    assert without_email(masked) == without_email(plain)
    assert not {row[1] for row in masked} & {row[1] for row in plain}


def test_grouping_by_a_masked_dimension_yields_pseudonyms(duck: duckdb.DuckDBPyConnection) -> None:
    """users.email (classification: pii) groups as MD5(salt:email) for a principal without
    view_pii: one pseudonym per address, no address in the rows or the SQL."""
    query = MetricQuery(metrics=("signups",), group_by=("user__email",))
    masked = compile_query(query, MANIFEST, principal=_as("t1", unrestricted=True))
    assert masked.parameters == ("tally_pii_salt",)
    rows = _run(duck, masked)
    plain = _run(duck, compile_query(query, MANIFEST))
    assert len(rows) == len(plain)
    emails = {row[0] for row in plain}
    for pseudonym, _ in rows:
        assert re.fullmatch(r"[0-9a-f]{32}", pseudonym)
        assert pseudonym not in emails
    assert sorted(r[1] for r in rows) == sorted(r[1] for r in plain)
    expected = duck.execute(
        "SELECT md5(? || ':' || email) FROM users ORDER BY id LIMIT 1", [SALT]
    ).fetchone()
    assert expected is not None and expected[0] in {row[0] for row in rows}
    assert SALT not in masked.sql
    assert not any(email in masked.sql for email in emails)
    # Every read of the column is inside its mask.
    for column in sqlglot.parse_one(masked.sql, read="duckdb").find_all(sqlglot.exp.Column):
        if column.name == "email":
            assert column.find_ancestor(sqlglot.exp.Case) is not None, column.sql()


def test_count_distinct_of_a_masked_column_is_exact(duck: duckdb.DuckDBPyConnection) -> None:
    """Distinct pseudonyms = distinct values: the masked count_distinct equals the raw one."""
    query = ADVERSARIAL["pii_aggregate"]
    masked = compile_query(query, MANIFEST, principal=_as("t", unrestricted=True))
    assert "MD5" in masked.sql
    assert _run(duck, masked) == _run(duck, compile_query(query, MANIFEST))


def test_a_filter_on_a_masked_column_is_refused() -> None:
    """Comparing a masked column would match pseudonyms or reveal values: a QueryError."""
    query = MetricQuery(
        metrics=("signups",), where=("{{ Dimension('user__email') }} LIKE '%@acme.example'",)
    )
    with pytest.raises(QueryError) as raised:
        compile_query(query, MANIFEST, principal=_as("t1"))
    assert raised.value.code == "masked_column"
    assert raised.value.location == "where[0]"
    assert raised.value.message == MSG_MASKED_FILTER.format(
        location="where[0]", column="users.email", principal="user:t1"
    )
    # With view_pii the same filter compiles.
    compile_query(query, MANIFEST, principal=_as("t1", view_pii=True))


def test_a_having_on_a_masked_output_is_refused() -> None:
    """A having reads outputs as the principal sees them; one a PII mask feeds (a masked
    group-by item, a metric over a masked column) is refused like a where on it, naming the
    having item; the query's other outputs stay filterable, and view_pii lifts it."""
    query = MetricQuery(metrics=("signups", "distinct_user_emails"), group_by=("user__email",))
    for having in ("user__email LIKE '%@acme.example'", "distinct_user_emails > 0"):
        with pytest.raises(QueryError) as raised:
            compile_query(
                MetricQuery(**{**query.__dict__, "having": ("signups > 0", having)}),
                MANIFEST,
                principal=_as("t1"),
            )
        assert (raised.value.code, raised.value.location) == ("masked_column", "having[1]")
        assert raised.value.message == MSG_MASKED_FILTER.format(
            location="having[1]", column="users.email", principal="user:t1"
        )
        compile_query(
            MetricQuery(**{**query.__dict__, "having": (having,)}),
            MANIFEST,
            principal=_as("t1", view_pii=True),
        )
    masked = MetricQuery(**{**query.__dict__, "having": ("signups > 0",)})
    assert "MD5" in compile_query(masked, MANIFEST, principal=_as("t1")).sql


def test_view_pii_sees_values_and_null_mode_hides_them(duck: duckdb.DuckDBPyConnection) -> None:
    """view_pii shows raw emails; mask_default="null" shows NULL and needs no salt."""
    query = MetricQuery(metrics=("signups",), group_by=("user__email",))
    raw = _run(
        duck, compile_query(query, MANIFEST, principal=_as("t", view_pii=True, unrestricted=True))
    )
    assert all(EMAIL.fullmatch(str(row[0])) for row in raw)
    nulled = compile_query(
        query, MANIFEST, principal=_as("t", unrestricted=True), mask_default="null"
    )
    assert nulled.parameters == ()
    assert {row[0] for row in _run(duck, nulled)} == {None}


def test_the_salt_is_a_named_variable_in_every_dialect() -> None:
    """Each dialect hashes with a real function and reads the salt by name; the SQL parses
    back and holds no salt value."""
    query = MetricQuery(metrics=("signups",), group_by=("user__email",))
    for dialect in DIALECTS:
        compiled = compile_query(
            MetricQuery(**{**query.__dict__, "dialect": dialect}),
            MANIFEST,
            principal=_as("t1"),
        )
        assert sqlglot.parse(compiled.sql, read=dialect)
        assert "MD5" in compiled.sql.upper()
        assert SALT not in compiled.sql
        assert re.search(r"tally[._]pii_salt|\?", compiled.sql), dialect


# --------------------------------------------------------------------------- validation


def test_malformed_policies_are_reported_and_fail_closed() -> None:
    """A policy the compiler cannot apply is a validation error, and a compile for a
    restricted principal refuses it (never drops it)."""

    def edit(kind: str, name: str, spec: dict[str, Any]) -> None:
        if kind == "semantic_model" and name == "accounts":
            spec["config"]["meta"]["tally"]["row_policies"] = [
                {"entity": "account", "filter": "{{ Dimension('plan') }} = 'x'"},
                {"entity": "acount", "filter": "1 = 1"},
                "not a mapping",
            ]

    manifest = build_manifest(_rows_with(edit), release="r1")
    problems = check_row_policies(manifest)
    assert [(model, index) for model, index, _ in problems] == [
        ("accounts", 0),
        ("accounts", 1),
        ("accounts", 2),
    ]
    assert all(error.code == "bad_row_policy" for _, _, error in problems)
    with pytest.raises(QueryError) as raised:
        compile_query(ADVERSARIAL["simple_on_facts"], manifest, principal=_as("t1"))
    assert raised.value.code == "bad_row_policy"


def test_the_fixture_policies_are_valid() -> None:
    assert check_row_policies(MANIFEST) == []


# --------------------------------------------------------------------------- property


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=queries(), pick=st.integers(min_value=0, max_value=1))
def test_any_query_for_a_tenant_equals_the_hand_filtered_result(
    query: MetricQuery,
    pick: int,
    duck: duckdb.DuckDBPyConnection,
    by_hand: dict[str, duckdb.DuckDBPyConnection],
    tenants: list[str],
) -> None:
    """For random valid queries (filters, Metric() filters, any metric type), a tenant's
    secured result equals the unsecured result on its hand-filtered warehouse, and the
    secured SQL parses back as one statement in every dialect."""
    query = MetricQuery(**{**query.__dict__, "limit": None})
    tenant = tenants[pick]
    try:
        plain = compile_query(query, MANIFEST)
    except QueryError:
        reject()  # Hypothesis fails as Unsatisfiable if it never finds a valid query
    secured = compile_query(query, MANIFEST, principal=_as(tenant, view_pii=True))
    assert _run(duck, secured) == _run(by_hand[tenant], plain)
    for dialect in DIALECTS:
        other = MetricQuery(**{**query.__dict__, "dialect": dialect})
        sql = compile_query(other, MANIFEST, principal=_as(tenant)).sql
        assert len(sqlglot.parse(sql, read=dialect)) == 1


def test_secure_select_filters_and_masks_a_row_level_read(
    duck: duckdb.DuckDBPyConnection,
    by_hand: dict[str, duckdb.DuckDBPyConnection],
    tenants: list[str],
) -> None:
    """secure_select (the trace drill-down's entry point) secures any read of model tables:
    a raw row read gives the tenant's rows only, emails as pseudonyms."""
    from semantic.compiler.policies import secure_select

    read = sqlglot.parse_one(
        "SELECT u.id, u.email FROM main.users AS u JOIN main.events AS e ON e.user_id = u.id "
        "WHERE e.event_type = 'purchase'",
        read="duckdb",
    )
    tenant = tenants[0]
    secured = secure_select(read, MANIFEST, _as(tenant), dialect="duckdb")
    assert secured.parameters == ("tally_pii_salt",)
    assert "tenant_id" in secured.tree.sql() and "tenant_id" not in read.sql()  # a copy
    duck.execute("SET VARIABLE tally_pii_salt = $1", [SALT])
    rows = duck.execute(secured.tree.sql("duckdb")).fetchall()
    expected = (
        by_hand[tenant]
        .execute(
            "SELECT u.id, md5(? || ':' || u.email) FROM users AS u JOIN events AS e "
            "ON e.user_id = u.id WHERE e.event_type = 'purchase'",
            [SALT],
        )
        .fetchall()
    )
    assert rows and sorted(rows) == sorted(expected)
    assert secure_select(read, MANIFEST, None, dialect="duckdb").tree is read


def test_secure_select_refuses_a_star_over_pii_columns() -> None:
    """A * read would pass masked columns through raw: refused unless the principal may view
    PII."""
    from semantic.compiler.policies import secure_select

    for sql in ("SELECT * FROM main.users AS u", "SELECT u.* FROM main.users AS u"):
        read = sqlglot.parse_one(sql, read="duckdb")
        with pytest.raises(QueryError) as raised:
            secure_select(read, MANIFEST, _as("t1"), dialect="duckdb")
        assert raised.value.code == "masked_column"
        secure_select(read, MANIFEST, _as("t1", view_pii=True), dialect="duckdb")


def test_error_texts() -> None:
    """Snapshots of the user-facing texts of row policies and masks."""
    from semantic.compiler.policies import secure_select

    with pytest.raises(QueryError) as raised:
        compile_query(
            ADVERSARIAL["simple_on_facts"], MANIFEST, principal=Principal("u", {"tenant_id": ["a"]})
        )
    assert raised.value.message == (
        "principal attribute 'tenant_id' is a list; compare it with IN, e.g. "
        "{{ Dimension('account__region') }} IN {{ principal.tenant_id }}"
    )
    with pytest.raises(QueryError) as raised:
        compile_query(
            ADVERSARIAL["simple_on_facts"], MANIFEST, principal=Principal("u", {"tenant_id": {}})
        )
    assert raised.value.message == "principal attribute 'tenant_id' has a value of type dict"
    with pytest.raises(QueryError) as raised:
        secure_select(
            sqlglot.parse_one("SELECT * FROM main.users AS u"),
            MANIFEST,
            _as("t1"),
            dialect="duckdb",
        )
    assert raised.value.message == (
        "a * read of 'users' would show its PII columns unmasked to user:t1"
    )
    assert raised.value.hint == "name the columns to read; PII columns are then masked"


@pytest.mark.parametrize(
    "metric,slice_values",
    [
        ("revenue", {}),  # invoices: filtered through its account key
        ("events_tracked", {"account__plan": "pro"}),  # events, sliced through a join
        ("signups", {}),  # users: the model with the PII column
        ("paid_invoice_rate", {}),  # ratio: numerator and denominator reads
    ],
)
def test_the_trace_drilldown_reads_only_the_tenants_rows(
    metric: str,
    slice_values: dict[str, str],
    duck: duckdb.DuckDBPyConnection,
    by_hand: dict[str, duckdb.DuckDBPyConnection],
    tenants: list[str],
) -> None:
    """The drill-down of a value, read as a tenant, returns exactly the rows the unsecured
    drill-down returns on the warehouse filtered by hand to that tenant; a model with PII is
    read by named columns (no ``users.*``), its emails as pseudonyms."""
    import datetime as dt

    from semantic.compiler.drilldown import drilldown_selects

    def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
        return sorted(normalize_rows_for_compare(con.execute(sql).fetchall()), key=repr)

    duck.execute("SET VARIABLE tally_pii_salt = $1", [SALT])
    read = dict(metric=metric, grain="year", period_start=dt.date(2025, 1, 1),
                slice_values=slice_values)  # fmt: skip
    seen = 0
    for tenant in tenants:
        secured = drilldown_selects(MANIFEST, **read, principal=_as(tenant))
        plain = drilldown_selects(MANIFEST, **read, principal=_as(tenant, view_pii=True))
        assert len(secured) == len(plain) >= 1
        for part, reference in zip(secured, plain, strict=True):
            sql = part.sql("duckdb")
            assert "tenant_id" in sql
            got = rows(duck, sql)
            seen += len(got)
            # The reference: the same read, unsecured, on the tenant's own copy of the
            # warehouse, its PII columns hashed by hand as the mask does.
            if part.select.find(sqlglot.exp.Star) is None:
                names = [e.alias_or_name for e in part.select.expressions]
                model = MANIFEST.semantic_models[part.semantic_model]
                pii = [i for i, n in enumerate(names) if n in model.pii_columns]
                assert pii and part.secured("duckdb").parameters == ("tally_pii_salt",)
                plain_rows = by_hand[tenant].execute(part.select.sql("duckdb")).fetchall()
                masked = [
                    tuple(
                        hashlib.md5(f"{SALT}:{v}".encode()).hexdigest()
                        if i in pii and v is not None
                        else v
                        for i, v in enumerate(row)
                    )
                    for row in plain_rows
                ]
                expected = sorted(normalize_rows_for_compare(masked), key=repr)
                assert all("@" not in str(row[i]) for row in got for i in pii)
            else:
                expected = rows(by_hand[tenant], reference.select.sql("duckdb"))
            assert got == expected, f"{metric} drill-down leaks for {tenant}"
    assert seen, "the tenants should have rows in the period"
