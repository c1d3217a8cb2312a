"""Golden files of compiled SQL, one per case and dialect (tests/semantic/golden/<case>/).

Only ``pytest --update-golden`` writes them; a mismatch fails with a unified diff, to be read
in review. Each file starts with SQL comments naming the case, what it guards, the query and
the release, so it can be pasted into a warehouse as it is.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import sqlglot

from semantic.compiler.api import compile_query
from semantic.compiler.manifest import Manifest
from semantic.compiler.principal import Principal
from semantic.compiler.spec import DIALECTS, MetricQuery

GOLDEN = Path(__file__).resolve().parent

CASES: dict[str, tuple[str, MetricQuery]] = {
    "simple_by_month": (
        "A count_distinct metric by month: one scan, DATE_TRUNC per dialect.",
        MetricQuery(metrics=("events_tracked",), group_by=("metric_time__month",)),
    ),
    "two_models_one_join": (
        "Metrics over events and accounts by plan: a LEFT JOIN to accounts, FULL OUTER combine.",
        MetricQuery(
            metrics=("events_tracked", "new_accounts"),
            group_by=("metric_time__month", "account__plan"),
            order_by=("metric_time__month", "-events_tracked"),
            limit=100,
        ),
    ),
    "two_hops_and_time_range": (
        "A two-hop dimension (events → users → accounts) with an inclusive time range.",
        MetricQuery(
            metrics=("events_tracked",),
            group_by=("user__account__region", "metric_time__week"),
            start_time="2026-01-01",
            end_time="2026-03-31",
        ),
    ),
    "cumulative_all_time_by_dimension": (
        "All-time cumulative by a dimension: daily partial sums, a running window, spine runs.",
        MetricQuery(
            metrics=("accounts_created_to_date",),
            group_by=("metric_time__month", "account__plan"),
            start_time="2026-01-01",
            end_time="2026-06-30",
        ),
    ),
    "metric_in_where": (
        "A Metric() filter: revenue per account as one CTE, LEFT JOINed on the events' account.",
        MetricQuery(
            metrics=("events_tracked",),
            group_by=("metric_time__month",),
            where=("{{ Metric('revenue', group_by=['account']) }} > 5000",),
        ),
    ),
    "scd_plan_at_time": (
        "An SCD type II dimension (plan_history, natural entity account): each event and each "
        "new account under the plan the account had at that time, a LEFT JOIN on the key and "
        "the validity window (start <= t AND (t < end OR end IS NULL)), filtered on it too; "
        "account__plan still resolves to accounts alone (issue #16).",
        MetricQuery(
            metrics=("events_tracked", "new_accounts"),
            group_by=("metric_time__month", "account__plan_at_time", "account__plan"),
            where=("{{ Dimension('account__is_paid_at_time') }}",),
        ),
    ),
    "date_parts": (
        "Date parts (issue 17) in group-by, where and order-by, on metric_time and on a time "
        "dimension through a join: each engine's EXTRACT normalised to ISO dow and week.",
        MetricQuery(
            metrics=("events_tracked",),
            group_by=(
                "metric_time__extract_year",
                "TimeDimension('metric_time', date_part_name='dow')",
                "metric_time__extract_week",
                "user__account__created_at__extract_quarter",
            ),
            where=("{{ TimeDimension('metric_time', date_part_name='doy') }} <= 200",),
            order_by=("-metric_time__extract_dow",),
        ),
    ),
    "custom_grain": (
        "A custom grain (issue 17): the spine's fiscal_quarter column joined on each row's day, "
        "a filter on fiscal_year, and a month-to-date cumulative rolled up by fiscal quarter.",
        MetricQuery(
            metrics=("revenue", "revenue_month_to_date"),
            group_by=("metric_time__fiscal_quarter",),
            where=("{{ TimeDimension('metric_time', 'fiscal_year') }} >= '2025-02-01'",),
        ),
    ),
    "having_on_outputs": (
        "Having on two metrics' combined result (two aggregations) and a group-by item: the "
        "combined SELECT wrapped, its WHERE before ORDER BY and LIMIT, CTEs on the outer query.",
        MetricQuery(
            metrics=("revenue", "new_accounts"),
            group_by=("metric_time__month", "account__plan"),
            having=("revenue > 1000 AND {{ Dimension('account__plan') }} <> 'free'",),
            order_by=("-revenue",),
            limit=10,
        ),
    ),
    "ratio_and_percentile": (
        "A percentile measure (WITHIN GROUP) next to averages, no group-by.",
        MetricQuery(metrics=("p90_invoice_amount", "average_invoice_amount")),
    ),
}


# Compiled for a principal: row policies and PII masks in the SQL (semantic/compiler/policies.py),
# over fixtures/ plus users.email exposed (tests/semantic/compiler/test_row_policies.py).
PRINCIPAL_CASES: dict[str, tuple[str, MetricQuery, Principal]] = {
    "row_policy_and_mask": (
        "A tenant's row policy on every read (accounts by the condition, users and events by a "
        "semi-join on account_id) and users.email masked as a salted MD5, salt by name only.",
        MetricQuery(
            metrics=("events_tracked", "distinct_user_emails"),
            group_by=("metric_time__month", "account__region"),
            where=("{{ Dimension('account__plan') }} = 'pro'",),
        ),
        Principal("token:golden", {"tenant_id": "t1"}),
    ),
}


# Offsets joined to spine days (semantic/compiler/kinds/offset_days.py), over fixtures/ plus
# the offset metrics of tests/semantic/compiler/kinds/test_offset_days.py.
OFFSET_CASES: dict[str, tuple[str, MetricQuery]] = {
    "offset_lag_by_month_and_dow": (
        "A 7-day lag by month and ISO day of week (issue 17): invoice rows joined to spine days "
        "7 days later, summed by the later day's month and dow; the range applies to it.",
        MetricQuery(
            metrics=("revenue_7_days_ago",),
            group_by=("metric_time__month", "metric_time__extract_dow"),
            start_time="2026-01-01",
            end_time="2026-03-31",
        ),
    ),
    "offset_to_grain_by_week": (
        "offset_to_grain month by week: each week reads the first day of its Monday's month "
        "(spine days kept where DATE_TRUNC(week, day) = day), beside revenue by week.",
        MetricQuery(metrics=("revenue_since_month_start",), group_by=("metric_time__week",)),
    ),
    "offset_month_window_by_quarter": (
        "A 1-month window by quarter: each spine day's rows move a month forward (CAST(day + "
        "1 month AS DATE), clamped to the month's end), each day counted once, by the later "
        "day's quarter.",
        MetricQuery(metrics=("revenue_1_month_ago",), group_by=("metric_time__quarter",)),
    ),
    "offset_custom_window": (
        "offset_window: 1 fiscal_quarter: each spine day moves to its position in the next "
        "fiscal quarter (LEAD over the periods' first and last days), by fiscal quarter.",
        MetricQuery(
            metrics=("revenue_last_fiscal_quarter",), group_by=("metric_time__fiscal_quarter",)
        ),
    ),
}


# Divisions in definition expressions (issue 20), over fixtures/ plus the models of
# tests/semantic/compiler/test_definition_division.py.
DIVISION_CASES: dict[str, tuple[str, MetricQuery]] = {
    "division_integer_measure": (
        "Integer / integer in measure and dimension exprs (seats / 2, seats / (id % 4), "
        "seats / 4): the dividend cast to each engine's DOUBLE (no truncation on PostgreSQL, "
        "Trino, T-SQL; no 4 decimals on MariaDB), a column divisor wrapped in NULLIF(…, 0).",
        MetricQuery(
            metrics=("half_seats", "seats_per_bucket"),
            group_by=("metric_time__year", "account_ratio__seat_quarters"),
        ),
    ),
    "division_decimal_measure": (
        "DECIMAL / integer and DECIMAL / DECIMAL in measure exprs (amount / 3, amount / "
        "(amount + 1)): a DOUBLE quotient on every engine, as on DuckDB (ClickHouse would "
        "keep the DECIMAL's scale, Snowflake 6 decimals).",
        MetricQuery(metrics=("amount_thirds", "amount_share"), group_by=("metric_time__year",)),
    ),
}


# Query options a golden shows only when set: the files predate them.
_OPTIONS: dict[str, object] = {"apply_group_by": True, "min_max_only": False, "having": ()}


def _shown(query: MetricQuery) -> dict[str, object]:
    fields = asdict(query)
    return {k: v for k, v in fields.items() if k not in _OPTIONS or v != _OPTIONS[k]}


def _render(
    case: str, doc: str, query: MetricQuery, sql: str, principal: Principal | None = None
) -> str:
    header = [
        f"-- case: {case}",
        f"-- guards: {doc}",
        "-- query: " + json.dumps(_shown(query), sort_keys=True),
        "-- test: tests/semantic/golden/test_golden.py",
    ]
    if principal is not None:
        header.insert(3, "-- principal: " + json.dumps(asdict(principal), sort_keys=True))
    return "\n".join(header) + "\n" + sql.rstrip() + ";\n"


@pytest.mark.parametrize("level", [None, 0], ids=["optimized", "O0"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_compiled_sql_matches_golden(
    case: str, dialect: str, level: int | None, manifest: Manifest, request: pytest.FixtureRequest
) -> None:
    """Compiled SQL for each case and dialect equals its reviewed golden file; the SQL before
    any SQL pass (O0) is kept next to it as ``<dialect>.O0.sql``."""
    doc, base = CASES[case]
    query = MetricQuery(**{**asdict(base), "dialect": dialect})
    text = _render(case, doc, query, compile_query(query, manifest, level=level).sql)
    _check_golden(case, dialect, level, text, request)


@pytest.mark.parametrize("level", [None, 0], ids=["optimized", "O0"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(PRINCIPAL_CASES))
def test_secured_sql_matches_golden(
    case: str, dialect: str, level: int | None, request: pytest.FixtureRequest
) -> None:
    """SQL compiled for a principal (row policies, masks) equals its reviewed golden file."""
    from tests.semantic.compiler.test_row_policies import pii_manifest

    doc, base, principal = PRINCIPAL_CASES[case]
    query = MetricQuery(**{**asdict(base), "dialect": dialect})
    compiled = compile_query(query, pii_manifest(), level=level, principal=principal)
    _check_golden(case, dialect, level, _render(case, doc, query, compiled.sql, principal), request)


@pytest.mark.parametrize("level", [None, 0], ids=["optimized", "O0"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(OFFSET_CASES))
def test_offset_sql_matches_golden(
    case: str, dialect: str, level: int | None, request: pytest.FixtureRequest
) -> None:
    """SQL of offsets joined to spine days equals its reviewed golden file."""
    from tests.semantic.compiler.kinds.test_offset_days import offset_manifest

    doc, base = OFFSET_CASES[case]
    query = MetricQuery(**{**asdict(base), "dialect": dialect})
    compiled = compile_query(query, offset_manifest(), level=level)
    _check_golden(case, dialect, level, _render(case, doc, query, compiled.sql), request)


@pytest.mark.parametrize("level", [None, 0], ids=["optimized", "O0"])
@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("case", sorted(DIVISION_CASES))
def test_division_sql_matches_golden(
    case: str, dialect: str, level: int | None, request: pytest.FixtureRequest
) -> None:
    """SQL of divisions in definition expressions equals its reviewed golden file."""
    from tests.semantic.compiler.test_definition_division import division_manifest

    doc, base = DIVISION_CASES[case]
    query = MetricQuery(**{**asdict(base), "dialect": dialect})
    compiled = compile_query(query, division_manifest(), level=level)
    _check_golden(case, dialect, level, _render(case, doc, query, compiled.sql), request)


def _check_golden(
    case: str, dialect: str, level: int | None, text: str, request: pytest.FixtureRequest
) -> None:
    # Every golden must parse back in its own dialect (a golden that doesn't run is useless).
    assert sqlglot.parse(text, read=dialect)
    path = GOLDEN / case / (f"{dialect}.sql" if level is None else f"{dialect}.O0.sql")
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden {path}; run pytest --update-golden and review the files"
    expected = path.read_text(encoding="utf-8")
    if expected != text:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=str(path),
                tofile="compiled",
            )
        )
        pytest.fail(f"compiled SQL differs from the golden file:\n{diff}")
