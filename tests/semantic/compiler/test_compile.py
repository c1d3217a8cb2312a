"""compile_query: the SQL it builds runs, gives the numbers a hand-written query gives, and
every bad request is a QueryError with a precise message."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb
import pytest
import sqlglot
from dateutil.relativedelta import relativedelta
from sqlglot import exp

from semantic.compiler.api import compile_query, parse_group_by, queryable_items
from semantic.compiler.manifest import Manifest
from semantic.compiler.spec import DIALECTS, MetricQuery
from tally.errors import QueryError


def run(duck: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return duck.execute(sql).fetchall()


def q(*metrics: str, **kwargs: Any) -> MetricQuery:
    for key in ("group_by", "where", "order_by"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    return MetricQuery(metrics=metrics, **kwargs)


def test_simple_metric_by_month_equals_hand_written_sql(manifest: Manifest, duck: Any) -> None:
    """count_distinct over events by month matches a direct GROUP BY."""
    compiled = compile_query(
        q("events_tracked", group_by=["metric_time__month"], order_by=["metric_time__month"]),
        manifest,
    )
    expected = run(
        duck,
        "SELECT date_trunc('month', occurred_at) m, count(DISTINCT event_id) FROM events GROUP BY 1 ORDER BY 1",
    )
    assert run(duck, compiled.sql) == expected
    assert compiled.columns == ("metric_time__month", "events_tracked")


def test_dimension_through_one_join_matches_hand_written_sql(manifest: Manifest, duck: Any) -> None:
    """account__plan joins events to accounts on the account entity (left join)."""
    compiled = compile_query(
        q("events_tracked", group_by=["account__plan"], order_by=["account__plan"]), manifest
    )
    expected = run(
        duck,
        "SELECT a.plan, count(DISTINCT e.event_id) FROM events e LEFT JOIN accounts a ON e.account_id = a.id "
        "GROUP BY 1 ORDER BY 1",
    )
    assert run(duck, compiled.sql) == expected


def test_two_hop_dimension_goes_through_users_to_accounts(manifest: Manifest, duck: Any) -> None:
    """user__account__region walks events → users → accounts."""
    compiled = compile_query(
        q("events_tracked", group_by=["user__account__region"], order_by=["user__account__region"]),
        manifest,
    )
    expected = run(
        duck,
        "SELECT a.region, count(DISTINCT e.event_id) FROM events e LEFT JOIN users u ON e.user_id = u.id "
        "LEFT JOIN accounts a ON u.account_id = a.id GROUP BY 1 ORDER BY 1",
    )
    assert run(duck, compiled.sql) == expected


@pytest.mark.parametrize(("dialect", "nested"), [("duckdb", True), ("spark", False)])
def test_two_hops_nest_except_where_the_planner_would_not_broadcast(
    manifest: Manifest, dialect: str, nested: bool
) -> None:
    """DuckDB joins users to accounts before the facts (sql_passes.nest_dimension_joins);
    Spark sizes such a nested join as the product of its tables and would shuffle the facts
    instead of broadcasting the dimensions, so its joins stay a flat chain of tables."""
    query = q("events_tracked", group_by=["user__account__region"])
    sql = compile_query(MetricQuery(**{**query.__dict__, "dialect": dialect}), manifest).sql
    tree = sqlglot.parse_one(sql, read=dialect)
    joined = [join.this for join in tree.find_all(exp.Join)]
    assert any(isinstance(target, exp.Subquery) for target in joined) is nested, sql
    assert len(joined) == 2, sql  # users and accounts, nested or in a chain


def test_metrics_from_two_models_are_full_outer_joined(manifest: Manifest, duck: Any) -> None:
    """Metrics over events and accounts meet on the group-by keys; no row is lost."""
    compiled = compile_query(
        q(
            "events_tracked",
            "average_seats_per_account",
            group_by=["account__plan"],
            order_by=["account__plan"],
        ),
        manifest,
    )
    rows = run(duck, compiled.sql)
    seats = dict(run(duck, "SELECT plan, avg(seats) FROM accounts GROUP BY 1"))
    assert [r[0] for r in rows] == sorted(seats)
    for plan, _, avg_seats in rows:
        assert float(avg_seats) == pytest.approx(float(seats[plan]))


def test_ratio_and_derived_metrics_compute_on_top_of_their_inputs(
    manifest: Manifest, duck: Any
) -> None:
    """A derived metric equals its expression over its inputs' values."""
    derived = next(
        m
        for m in manifest.metrics.values()
        if m.type == "derived"
        and not any(
            (i.get("offset_window") or i.get("offset_to_grain"))
            for i in m.params.get("metrics") or []
        )
        and all(manifest.metrics[i["name"]].type == "simple" for i in m.params.get("metrics") or [])
    )
    inputs = [i["name"] for i in derived.params["metrics"]]
    compiled = compile_query(q(derived.name, *inputs, group_by=["metric_time__year"]), manifest)
    rows = run(duck, compiled.sql)
    assert rows
    aliases = [i.get("alias") or i["name"] for i in derived.params["metrics"]]
    compared = 0
    for row in rows:
        env = dict(zip(aliases, row[2:], strict=True))
        if any(v is None for v in env.values()):
            continue
        compared += 1
        expr = sqlglot.parse_one(derived.params["expr"]).sql()
        value = duck.execute(
            f"SELECT {expr} FROM (SELECT "
            + ", ".join(f"{v!r}::DOUBLE AS {k}" for k, v in env.items())
            + ")"
        ).fetchone()[0]
        assert float(row[1]) == pytest.approx(float(value))
    assert compared, "every row had a NULL input: nothing was compared"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_compiles_and_parses_back(manifest: Manifest, dialect: str) -> None:
    """The same query renders for all ten dialects and sqlglot reads each back."""
    compiled = compile_query(
        q(
            "events_tracked",
            "new_accounts",
            group_by=["metric_time__week", "account__region"],
            dialect=dialect,
            limit=5,
        ),
        manifest,
    )
    assert sqlglot.parse_one(compiled.sql, read=dialect) is not None


def test_compiling_twice_gives_identical_sql(manifest: Manifest) -> None:
    """Output is deterministic (goldens never need scrubbing)."""
    query = q("events_tracked", "new_accounts", group_by=["metric_time__month", "account__plan"])
    assert compile_query(query, manifest).sql == compile_query(query, manifest).sql


def test_header_names_release_and_metric_versions(manifest: Manifest) -> None:
    """The first line says which release and versions produced the SQL."""
    sql = compile_query(q("events_tracked"), manifest).sql
    assert sql.splitlines()[0] == "-- tally release r1: events_tracked@1.0"


def test_every_table_is_schema_qualified(manifest: Manifest) -> None:
    """Tables come from the release's relations, always with their schema."""
    sql = compile_query(
        q("events_tracked", "new_accounts", group_by=["account__plan"]), manifest
    ).sql
    tables = sqlglot.parse_one(sql, read="duckdb").find_all(sqlglot.exp.Table)
    physical = [t for t in tables if t.name in {"events", "accounts"}]
    assert physical and all(t.db == "main" for t in physical)


@pytest.mark.parametrize(
    ("query", "code", "message", "hint"),
    [
        (q("revenu"), "unknown_metric", "unknown metric 'revenu'", "did you mean 'revenue'?"),
        (
            q("events_tracked", group_by=["account__plann"]),
            "unknown_dimension",
            "unknown group-by item 'account__plann' for metric 'events_tracked'",
            "did you mean 'plan'?",
        ),
        (
            q("events_tracked", dialect="oracle"),
            "unsupported_dialect",
            "unsupported dialect 'oracle'",
            None,
        ),
        (
            q("events_tracked", limit=-1),
            "bad_limit",
            "limit -1 is out of range",
            "use 0 to 10,000,000",
        ),
        (
            q("events_tracked", limit=10**12),
            "bad_limit",
            "limit 1000000000000 is out of range",
            "use 0 to 10,000,000",
        ),
        (
            q("events_tracked", start_time="2026-02-01", end_time="2026-01-01"),
            "bad_time_range",
            "start_time 2026-02-01 is after end_time 2026-01-01",
            "swap them",
        ),
        (
            q("events_tracked", start_time="yesterday"),
            "bad_time_range",
            "'yesterday' is not an ISO date or timestamp",
            "use 2026-01-31 or 2026-01-31T12:00:00",
        ),
        (
            q("weekly_active_users", group_by=["account__plan"]),
            "missing_metric_time",
            # Issue 16: the metric asked for, not its measure, with the path tried.
            "a cumulative metric over a window or to date (metric 'weekly_active_users') needs "
            "metric_time in group_by: its value is defined per day (path tried: "
            "weekly_active_users → measure active_users of semantic model 'events')",
            "group by metric_time (at any grain); only all-time cumulative metrics can be "
            "queried without it",
        ),
        (
            q("events_tracked", order_by=["-revenue"]),
            "bad_order_by",
            "cannot order by 'revenue': it is not an output of the query",
            None,
        ),
    ],
)
def test_bad_queries_are_query_errors_with_precise_text(
    manifest: Manifest, query: MetricQuery, code: str, message: str, hint: str | None
) -> None:
    """Each bad input is a QueryError with a stable code and message (snapshot)."""
    with pytest.raises(QueryError) as info:
        compile_query(query, manifest)
    assert (info.value.code, info.value.message) == (code, message)
    if hint is not None:
        assert info.value.hint == hint


def test_a_grain_finer_than_the_dimension_allows_is_refused() -> None:
    """A month-grain time dimension cannot be grouped by day (grain_too_fine, issue 17)."""
    from semantic.compiler.manifest import build_manifest

    model = {
        "name": "budgets",
        "model": "ref('budgets')",
        "primary_entity": "budget",
        "defaults": {"agg_time_dimension": "month_start"},
        "entities": [{"name": "budget", "type": "primary", "expr": "id"}],
        "dimensions": [
            {"name": "month_start", "type": "time", "type_params": {"time_granularity": "month"}}
        ],
        "measures": [{"name": "budget", "agg": "sum", "expr": "amount"}],
    }
    metric = {"name": "budget", "type": "simple", "type_params": {"measure": {"name": "budget"}}}
    small = build_manifest(
        [("semantic_model", "budgets", model, "1.0"), ("metric", "budget", metric, "1.0")]
    )
    with pytest.raises(QueryError) as info:
        compile_query(q("budget", group_by=["metric_time__day"]), small)
    assert (info.value.code, info.value.message, info.value.hint) == (
        "grain_too_fine",
        "grain 'day' is finer than 'metric_time__day' allows: its data is at month grain",
        "grains it allows: month, quarter, year",
    )
    compile_query(q("budget", group_by=["metric_time__quarter"]), small)


def test_dimension_not_reachable_from_metric_is_refused(manifest: Manifest) -> None:
    """invoices cannot be reached from accounts' measures: unreachable_dimension."""
    with pytest.raises(QueryError) as info:
        compile_query(q("new_accounts", group_by=["invoice__status"]), manifest)
    assert info.value.code in {"unreachable_dimension", "fan_out"}


def test_parse_group_by_handles_grains_paths_and_entities() -> None:
    """Names follow MetricFlow: entity path, element, optional grain."""
    assert parse_group_by("metric_time", "g").grain is None
    assert parse_group_by("metric_time__quarter", "g").grain == "quarter"
    item = parse_group_by("user__account__plan", "g")
    assert (item.kind, item.entity_path, item.element) == ("dimension", ("user", "account"), "plan")
    assert parse_group_by("account", "g").kind == "entity"


def test_dimensions_listing_includes_joined_and_multi_hop_items(manifest: Manifest) -> None:
    """GET …/dimensions lists what group_by accepts, including two-hop names."""
    items = queryable_items(manifest, "events_tracked")
    assert {"metric_time__month", "account__plan", "user__account__region", "account"} <= set(items)
    for item in ("account__plan", "user__account__region"):
        compile_query(q("events_tracked", group_by=[item]), manifest)


def test_decimal_results_keep_exact_sums(manifest: Manifest, duck: Any) -> None:
    """Sums of DECIMAL revenue stay exact (no float drift)."""
    compiled = compile_query(q("open_invoice_amount"), manifest)
    (value,) = run(duck, compiled.sql)[0]
    assert value is None or isinstance(value, Decimal | int | float)


# --------------------------------------------------------------------------- Metric() filters


def manifest_with(*metrics: dict[str, Any]) -> Manifest:
    """fixtures/ plus some metrics written for one test."""
    from semantic.compiler.definition_checks import load_project
    from semantic.compiler.manifest import build_manifest
    from tests.conftest import ROOT

    project = load_project(ROOT / "fixtures")
    rows = [(kind, name, obj.spec, "1.0") for (kind, name), obj in project.objects.items()]
    rows += [("metric", m["name"], m, "1.0") for m in metrics]
    return build_manifest(rows, release="r1")


def test_metric_filter_matches_hand_written_sql(manifest: Manifest, duck: Any) -> None:
    """{{ Metric('revenue', group_by=['account']) }} > 5000 keeps the events of accounts whose
    paid revenue (all time, no query time range) exceeds 5000; the filter is applied to rows
    before aggregating, through a LEFT JOIN on the events' own account."""
    compiled = compile_query(
        q(
            "events_tracked",
            group_by=["metric_time__quarter"],
            where=["{{ Metric('revenue', group_by=['account']) }} > 5000"],
            start_time="2026-01-01",
            end_time="2026-06-30",
            order_by=["metric_time__quarter"],
        ),
        manifest,
    )
    expected = run(
        duck,
        "WITH r AS (SELECT account_id, sum(amount) revenue FROM invoices WHERE status = 'paid' "
        "GROUP BY 1) SELECT date_trunc('quarter', e.occurred_at) q, count(DISTINCT e.event_id) "
        "FROM events e LEFT JOIN r ON e.account_id = r.account_id WHERE r.revenue > 5000 "
        "AND e.occurred_at >= '2026-01-01' AND e.occurred_at < '2026-07-01' GROUP BY 1 ORDER BY 1",
    )
    assert run(duck, compiled.sql) == expected
    assert "LEFT JOIN filter_revenue_by_account" in compiled.sql


def test_metric_filter_subquery_is_one_cte_shared_by_every_scan(manifest: Manifest) -> None:
    """The metric subquery is built once and joined by each aggregation the where applies to;
    its own CTEs are hoisted with its name as prefix (no nested WITH, which some warehouses
    refuse)."""
    sql = compile_query(
        q(
            "revenue",
            "signups",
            where=["{{ Metric('events_tracked', group_by=['account']) }} > 100"],
        ),
        manifest,
    ).sql
    tree = sqlglot.parse_one(sql, read="duckdb")
    names = [cte.alias for cte in tree.args["with_"].expressions]
    assert names.count("filter_events_tracked_by_account") == 1
    assert "filter_events_tracked_by_account__agg_0_events" in names
    assert len(list(tree.find_all(sqlglot.exp.With))) == 1
    assert sql.count("LEFT JOIN filter_events_tracked_by_account\n") == 2


def test_metric_filter_in_a_metric_definition_and_nested(duck: Any) -> None:
    """A metric's own filter may hold a Metric(), and a Metric() may name such a metric."""
    engaged = {
        "name": "engaged_revenue",
        "type": "simple",
        "type_params": {"measure": "invoice_amount"},
        "filter": ["{{ Metric('events_tracked', group_by=['account']) }} >= 100"],
    }
    small = manifest_with(engaged)
    (total,) = run(duck, compile_query(q("engaged_revenue"), small).sql)[0]
    (expected,) = run(
        duck,
        "SELECT sum(amount) FROM invoices WHERE account_id IN (SELECT account_id FROM events "
        "GROUP BY 1 HAVING count(DISTINCT event_id) >= 100)",
    )[0]
    assert total == expected
    nested = compile_query(
        q("signups", where=["{{ Metric('engaged_revenue', group_by=['account']) }} > 0"]), small
    ).sql
    (signups,) = run(duck, nested)[0]
    (expected_signups,) = run(
        duck,
        "SELECT count(*) FROM users WHERE account_id IN (SELECT account_id FROM invoices WHERE "
        "account_id IN (SELECT account_id FROM events GROUP BY 1 HAVING count(DISTINCT "
        "event_id) >= 100) GROUP BY 1 HAVING sum(amount) > 0)",
    )[0]
    assert signups == expected_signups


def test_a_metric_whose_filter_needs_itself_is_refused() -> None:
    """A Metric() filter cycle is a bad_where error naming the cycle, not a RecursionError."""
    from semantic.compiler.filters import MSG_FILTER_METRIC_CYCLE

    looping = {
        "name": "looping_revenue",
        "type": "simple",
        "type_params": {"measure": "invoice_amount"},
        "filter": ["{{ Metric('looping_revenue', group_by=['account']) }} > 0"],
    }
    with pytest.raises(QueryError) as info:
        compile_query(q("looping_revenue"), manifest_with(looping))
    assert info.value.code == "bad_where"
    assert info.value.message.endswith(
        MSG_FILTER_METRIC_CYCLE.format(path="looping_revenue → looping_revenue")
    )


def _metric_filter_error_cases() -> list[Any]:
    from semantic.compiler import filters as c
    from semantic.compiler import where as w

    return [
        pytest.param(
            "{{ Metric('revenu', group_by=['account']) }} > 1",
            "unknown_metric",
            c.MSG_UNKNOWN_METRIC.format(name="revenu"),
            "did you mean 'revenue'?",
            id="unknown-metric",
        ),
        pytest.param(
            "{{ Metric('revenue', group_by=['plan']) }} > 1",
            "unknown_dimension",
            c.MSG_FILTER_METRIC_NOT_ENTITY.format(
                group_by="plan", item="Metric('revenue', group_by=['plan'])"
            ),
            None,
            id="group-by-not-an-entity",
        ),
        pytest.param(
            "{{ Metric('revenue', group_by=['account', 'user']) }} > 1",
            "bad_where",
            c.MSG_FILTER_METRIC_GROUP_BY.format(
                item="Metric('revenue', group_by=['account', 'user'])", count=2
            ),
            c.HINT_FILTER_METRIC_GROUP_BY.format(name="revenue"),
            id="two-group-by-items",
        ),
        pytest.param(
            "{{ Metric('new_accounts', group_by=['parent_account']) }} > 1",
            "unreachable_dimension",
            c.MSG_FILTER_METRIC_UNJOINABLE.format(
                item="Metric('new_accounts', group_by=['parent_account'])",
                model="events",
                entity="parent_account",
            ),
            c.HINT_FILTER_METRIC_UNJOINABLE.format(model="events", entities="account, user"),
            id="entity-not-on-the-filtered-model",
        ),
        pytest.param(
            "{{ Metric('new_accounts', group_by=['user']) }} > 1",
            "unreachable_dimension",
            "Metric('new_accounts', group_by=['user']): "
            + c.MSG_UNREACHABLE.format(name="user", metric="new_accounts"),
            None,
            id="metric-cannot-be-grouped-by-the-entity",
        ),
        pytest.param(
            "{{ Metric('revenue', group_by='account') }} > 1",
            "bad_where",
            w.MSG_JINJA_LIST_EXPECTED.format(param="group_by", function="Metric"),
            None,
            id="group-by-not-a-list",
        ),
        pytest.param(
            "{{ Metric(revenue, group_by=['account']) }} > 1",
            "bad_where",
            w.MSG_JINJA_ARGUMENT_VALUE.format(function="Metric"),
            None,
            id="unquoted-metric-name",
        ),
        pytest.param(
            "{{ Metric('revenue', group_by=['account']) > 1",
            "bad_where",
            w.MSG_JINJA_UNCLOSED,
            None,
            id="unclosed-braces",
        ),
    ]


@pytest.mark.parametrize(("where", "code", "message", "hint"), _metric_filter_error_cases())
def test_bad_metric_filters_are_query_errors_with_precise_text(
    manifest: Manifest, where: str, code: str, message: str, hint: str | None
) -> None:
    """Each bad Metric() filter is a QueryError with a stable code, message and location."""
    with pytest.raises(QueryError) as info:
        compile_query(q("events_tracked", where=[where]), manifest)
    assert (info.value.code, info.value.message) == (code, message)
    assert info.value.location.startswith("where[0]")
    if hint is not None:
        assert info.value.hint == hint


# --------------------------------------------------------------------------- constant properties


def _same_user_conversion(**properties: str) -> dict[str, Any]:
    return {
        "name": "trial_to_paid_same",
        "type": "conversion",
        "type_params": {
            "conversion_type_params": {
                "entity": "account",
                "calculation": "conversions",
                "window": "14 days",
                "base_measure": {
                    "name": "trial_accounts",
                    "filter": "{{ Dimension('event__event_type') }} = 'trial_started'",
                },
                "conversion_measure": "purchasing_accounts",
                "constant_properties": [properties],
            }
        },
    }


def test_constant_property_joins_base_and_conversion_events_on_it(duck: Any) -> None:
    """constant_properties: a purchase converts a trial only when both events share the
    property (here the user), as MetricFlow adds it to the join of the two event sets."""
    small = manifest_with(_same_user_conversion(base_property="user", conversion_property="user"))
    compiled = compile_query(q("trial_to_paid_same", "trial_to_paid_conversions_14d"), small)
    assert "base_events.property_0 = conversions.property_0" in compiled.sql
    ((same_user, any_user),) = run(duck, compiled.sql)
    (expected,) = run(
        duck,
        "SELECT count(DISTINCT p.account_id) FROM events p WHERE p.event_type = 'purchase' "
        "AND EXISTS (SELECT 1 FROM events t WHERE t.event_type = 'trial_started' "
        "AND t.account_id = p.account_id AND t.user_id = p.user_id "
        "AND CAST(t.occurred_at AS DATE) <= CAST(p.occurred_at AS DATE) "
        "AND CAST(t.occurred_at AS DATE) > CAST(p.occurred_at AS DATE) - INTERVAL 14 DAY)",
    )[0]
    assert same_user == expected
    assert same_user < any_user


def test_unknown_constant_property_is_refused_with_suggestion(manifest: Manifest) -> None:
    """A constant property that is no dimension or entity of a model is unknown_dimension."""
    from semantic.compiler.kinds.conversion import MSG_UNKNOWN_PROPERTY

    small = manifest_with(_same_user_conversion(base_property="usr", conversion_property="user"))
    with pytest.raises(QueryError) as info:
        compile_query(q("trial_to_paid_same"), small)
    assert (info.value.code, info.value.message) == (
        "unknown_dimension",
        MSG_UNKNOWN_PROPERTY.format(name="usr", metric="trial_to_paid_same", model="events"),
    )
    assert info.value.hint == "did you mean 'user'?"


@pytest.mark.parametrize("grain", ["day", "week", "month", "quarter", "year"])
def test_start_time_without_end_time_compiles_at_every_grain(
    manifest: Manifest, duck: Any, grain: str
) -> None:
    """Bug: a start_time without end_time widened the open end (9999-12-31) to the next
    period, past year 9999, and crashed with ValueError/OverflowError (a 500 in the API)."""
    compiled = compile_query(
        q("events_tracked", group_by=[f"metric_time__{grain}"], start_time="2026-06-01"), manifest
    )
    rows = run(duck, compiled.sql)
    assert rows and all(row[0] is not None for row in rows)


def test_conversion_events_from_another_model_need_not_reach_the_group_by(duck: Any) -> None:
    """Bug: the group-by items and the query where were also resolved on the conversion
    measure's model, so a conversion from events to signups (users) could not be filtered or
    grouped by an events-only dimension. They belong to the base events (MetricFlow). The
    expected rows are MetricFlow 0.213.0's answer on the same data."""
    from semantic.compiler.api import queryable_items

    cross = {
        "name": "cross_model_conversion",
        "type": "conversion",
        "type_params": {
            "conversion_type_params": {
                "entity": "user",
                "calculation": "conversions",
                "window": "30 days",
                "base_measure": "active_users",
                "conversion_measure": "signups",
            }
        },
    }
    small = manifest_with(cross)
    assert "event__event_type" in queryable_items(small, "cross_model_conversion")
    compiled = compile_query(
        q(
            "cross_model_conversion",
            group_by=["metric_time__quarter"],
            where=["{{ Dimension('event__event_type') }} = 'login'"],
        ),
        small,
    )
    rows = sorted((str(t)[:10], n) for t, n in run(duck, compiled.sql) if n is not None)
    assert rows == [("2024-10-01", 1), ("2026-01-01", 2), ("2026-04-01", 2), ("2026-07-01", 1)]


def test_a_derived_metric_that_is_just_its_input_name_runs(manifest: Manifest, duck: Any) -> None:
    """`expr: mrr_started_to_date` (the whole expression one input's name) gives the input's
    values; the root of the expression used to stay an unknown column."""
    from dataclasses import replace

    from semantic.compiler.manifest import Metric

    spec = {
        "name": "started_to_date_again",
        "type": "derived",
        "type_params": {
            "expr": "mrr_started_to_date",
            "metrics": [{"name": "mrr_started_to_date"}],
        },
    }
    metrics = {**manifest.metrics, spec["name"]: Metric(spec["name"], "derived", spec, "1.0")}
    patched = replace(manifest, metrics=metrics)
    by_month = {"group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
    derived = run(duck, compile_query(q("started_to_date_again", **by_month), patched).sql)
    direct = run(duck, compile_query(q("mrr_started_to_date", **by_month), patched).sql)
    assert derived == direct and derived


def test_a_derived_division_by_zero_is_null_on_every_engine(manifest: Manifest, duck: Any) -> None:
    """jaffle-sl-template's `revenue_growth_mom` divides by last month's revenue, which is 0 in
    the first month: MetricFlow shows `inf` on DuckDB, PostgreSQL would fail the query. Tally
    gives NULL there (as a ratio metric does), and the months with a prior value are exact."""
    from dataclasses import replace

    from semantic.compiler.manifest import Metric

    spec = {
        "name": "revenue_growth_from_prior",
        "type": "derived",
        "type_params": {
            "expr": "(current - prior) * 100 / prior",
            "metrics": [
                {"name": "revenue", "alias": "current"},
                {"name": "revenue", "alias": "prior", "offset_window": "1 month"},
            ],
        },
    }
    metrics = {**manifest.metrics, spec["name"]: Metric(spec["name"], "derived", spec, "1.0")}
    patched = replace(manifest, metrics=metrics)
    by_month = {"group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
    compiled = compile_query(q(spec["name"], **by_month), patched)
    assert "NULLIF(" in compiled.sql
    growth = dict(run(duck, compiled.sql))
    revenue = dict(run(duck, compile_query(q("revenue", **by_month), patched).sql))
    months = sorted(growth)
    first = months[0]
    assert not revenue.get(first - relativedelta(months=1)), "the fixture's first month"
    assert growth[first] is None
    checked = 0
    for month in months[1:]:
        prior = revenue.get(month - relativedelta(months=1)) or 0
        if prior and month in revenue:
            want = float((revenue[month] - prior) * 100) / float(prior)
            assert growth[month] == pytest.approx(want)
            checked += 1
        elif not prior:
            assert growth[month] is None
    assert checked > 3
    # A denominator that is 0 wherever it has a value: DuckDB alone would give inf and NaN.
    spec["type_params"]["expr"] = "current / (current - current)"
    compiled = compile_query(q(spec["name"], **by_month), patched)
    assert {value for _, value in run(duck, compiled.sql)} == {None}
