"""`tally compile` and `tally query` as a user runs them (real subprocesses, real warehouse)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_tally

pytestmark = pytest.mark.registry_db


# The module's tests only read what this set up (three `tally` processes): set up once.
@pytest.fixture(scope="module")
def env(demo_cli_env: dict[str, str]) -> dict[str, str]:
    return demo_cli_env


def test_query_prints_json_rows_with_release_and_versions(env: dict[str, str]) -> None:
    """The issue's own example query answers on the demo warehouse."""
    result = run_tally(
        "query",
        "--metrics", "revenue,active_accounts",
        "--group-by", "metric_time__month,account__plan",
        "--order-by", "-metric_time__month",
        "--limit", "5",
        "--format", "json",
        env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["columns"] == ["metric_time__month", "account__plan", "revenue", "active_accounts"]
    assert len(body["rows"]) == 5 and body["release"] == "r1"
    months = [row[0] for row in body["rows"]]
    assert months == sorted(months, reverse=True)


def test_compile_prints_sql_for_another_dialect(env: dict[str, str]) -> None:
    """--dialect renders for that warehouse; the header names the release."""
    result = run_tally(
        "compile", "--metrics", "events_tracked", "--group-by", "metric_time__week",
        "--dialect", "bigquery", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("-- tally release r1: events_tracked@1.0")
    assert "TIMESTAMP_TRUNC" in result.stdout


def test_unknown_metric_exits_1_with_code_and_hint(env: dict[str, str]) -> None:
    """A typo is `error[unknown_metric]` with a did-you-mean hint, exit 1, no traceback."""
    result = run_tally("query", "--metrics", "revenu", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "metrics[0]: error[unknown_metric]: unknown metric 'revenu'",
        "  hint: did you mean 'revenue'?",
    ]


def test_injection_in_where_is_refused(env: dict[str, str]) -> None:
    """A stacked statement in --where never reaches the warehouse."""
    result = run_tally(
        "query", "--metrics", "revenue", "--where", "1=1; DROP TABLE events", env=env
    )
    assert result.returncode == 1
    assert "error[bad_where]" in result.stderr
    again = run_tally("query", "--metrics", "events_tracked", "--format", "csv", env=env)
    assert again.returncode == 0 and again.stdout.startswith("events_tracked")


def test_having_filters_the_aggregated_rows_and_a_bad_one_names_its_flag(
    env: dict[str, str],
) -> None:
    """--having, repeatable like --where, keeps the rows of the unfiltered answer that pass;
    a name that is not an output is error[bad_having] at having[i], with the outputs."""
    flags = ("--metrics", "revenue,new_accounts", "--group-by", "account__plan", "--format", "json")
    plain = run_tally("query", *flags, env=env)
    assert plain.returncode == 0, plain.stderr
    rows = json.loads(plain.stdout)["rows"]
    cut = sorted(float(r[1]) for r in rows if r[1] is not None)[len(rows) // 2]
    having = ("--having", f"revenue >= {cut}", "--having", "account__plan <> 'pro'")
    result = run_tally("query", *flags, *having, env=env)
    assert result.returncode == 0, result.stderr
    expected = [r for r in rows if r[1] is not None and float(r[1]) >= cut and r[0] != "pro"]
    assert expected and len(expected) < len(rows)
    assert sorted(json.loads(result.stdout)["rows"]) == sorted(expected)
    bad = run_tally("query", *flags, "--having", "cost > 1", env=env)
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [
        "having[0]:0-4: error[bad_having]: 'cost' is not an output of the query: having "
        "filters its metrics and group-by items",
        "  hint: outputs: revenue, new_accounts, account__plan; to filter on another metric "
        "or item, request it too, or filter rows before aggregation with where",
    ]


@pytest.mark.parametrize(
    ("group_by", "code"),
    [
        ("metric_time__extract_weekday", "unknown_date_part"),
        ("metric_time__fiscal_week", "unknown_grain"),
        ("metric_time__hour", "grain_too_fine"),
    ],
)
def test_bad_time_items_exit_1_with_their_code(
    env: dict[str, str], group_by: str, code: str
) -> None:
    """Issue 17: a date part that does not exist, a custom grain not in the spine, an hour
    grain on day data: `error[<code>]` with a hint, exit 1, no traceback."""
    result = run_tally("query", "--metrics", "revenue", "--group-by", group_by, env=env)
    assert result.returncode == 1
    assert f"error[{code}]" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr


def test_date_part_and_fiscal_quarter_query(env: dict[str, str]) -> None:
    """metric_time__extract_year and the fixtures' fiscal_quarter from the CLI."""
    result = run_tally(
        "query", "--metrics", "revenue",
        "--group-by", "metric_time__extract_year,metric_time__fiscal_quarter",
        "--format", "json", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["columns"] == [
        "metric_time__extract_year",
        "metric_time__fiscal_quarter",
        "revenue",
    ]
    assert body["rows"] and all(isinstance(row[0], int) for row in body["rows"])
