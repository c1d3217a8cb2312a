"""`tally list …` and `tally query`'s MetricFlow flags (issue #19) as a user runs them: real
subprocesses on a demo warehouse. SQL never lands in the data on stdout; bad input exits 1
with the flag named."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from semantic.management.commands._query_args import split_items
from tally.errors import UserError
from tests.conftest import run_tally

BY_PLAN = ("--metrics", "revenue", "--group-by", "account__plan")


@pytest.fixture(scope="module")
def env(demo_cli_env: dict[str, str]) -> dict[str, str]:
    return demo_cli_env


def _ok(env: dict[str, str], *args: str) -> tuple[str, str]:
    result = run_tally(*args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr


def _fails(env: dict[str, str], *args: str) -> str:
    result = run_tally(*args, env=env)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stderr


def test_split_items_keeps_commas_inside_calls_and_quotes() -> None:
    """--group-by is split on top-level commas only (a bare str.split broke TimeDimension)."""
    assert split_items(
        "metric_time__month, TimeDimension('metric_time', date_part_name='dow'),"
        "Dimension('account__plan')",
        flag="group-by",
    ) == (
        "metric_time__month",
        "TimeDimension('metric_time', date_part_name='dow')",
        "Dimension('account__plan')",
    )
    assert split_items("'a,b', \"c,d\", 'it''s'", flag="order") == ("'a,b'", '"c,d"', "'it''s'")
    for bad in ("TimeDimension('metric_time'", "a)", "'open", "a,,b"):
        with pytest.raises(UserError) as caught:
            split_items(bad, flag="group-by")
        assert caught.value.code == "bad_argument" and caught.value.location == "group_by"


def test_list_metrics_dimensions_entities_and_saved_queries(env: dict[str, str]) -> None:
    """`tally list …` answers as `mf list …`: bullets in text, the same in JSON."""
    out, _ = _ok(env, "list", "metrics", "--search", "REVENUE")
    lines = out.splitlines()
    assert lines and all(
        line.startswith("• ") and "revenue" in line.split(":")[0] for line in lines
    )
    assert any(line.startswith("• revenue: ") and line.endswith(" more") for line in lines)
    out, _ = _ok(env, "list", "metrics", "--search", "revenue", "--show-all-dimensions")
    assert "more" not in out and "metric_time" in out

    out, _ = _ok(env, "list", "dimensions", "--metrics", "revenue,mrr")
    dims = [line.removeprefix("• ") for line in out.splitlines()]
    assert "account__plan" in dims and "metric_time" in dims
    assert not any(d.endswith("__month") for d in dims)  # granularity-free, as mf
    # Issue 16: no path that names an entity twice (account__account__plan was offered).
    assert not [d for d in dims if d.startswith("account__account")]

    out, _ = _ok(env, "list", "entities", "--metrics", "revenue", "--format", "json")
    assert json.loads(out)["entities"] == ["account", "invoice", "subscription"]

    out, _ = _ok(env, "list", "saved-queries")
    assert "• monthly_revenue_by_plan: Revenue, MRR and ARPA per month" in out

    assert "error[unknown_metric]" in _fails(env, "list", "dimensions", "--metrics", "revenu")


def test_order_is_an_alias_of_order_by_and_takes_a_descending_item(env: dict[str, str]) -> None:
    """mf's `--order -revenue` works (it used to fail) and equals --order-by."""
    by_order, _ = _ok(env, "query", *BY_PLAN, "--order", "-revenue", "--format", "json")
    by_order_by, _ = _ok(env, "query", *BY_PLAN, "--order-by", "-revenue", "--format", "json")
    assert by_order == by_order_by
    values = [row[1] for row in json.loads(by_order)["rows"]]
    assert values == sorted(values, key=float, reverse=True)


def test_group_by_object_syntax_equals_dunder_names(env: dict[str, str]) -> None:
    """TimeDimension('metric_time', 'month') with its comma is one item, as metric_time__month."""
    objects, _ = _ok(
        env, "compile", "--metrics", "revenue",
        "--group-by", "TimeDimension('metric_time', 'month'),Dimension('account__plan')",
    )  # fmt: skip
    names, _ = _ok(
        env, "compile", "--metrics", "revenue", "--group-by", "metric_time__month,account__plan"
    )
    assert objects == names
    err = _fails(
        env, "query", "--metrics", "revenue",
        "--group-by", "TimeDimension('metric_time', date_part_name='dow')",
    )  # fmt: skip
    assert "error[unsupported_group_by]" in err and "date part (dow)" in err
    err = _fails(env, "query", "--metrics", "revenue", "--group-by", "TimeDimension('metric_time'")
    assert "group_by: error[bad_argument]: --group-by: a missing ')'" in err


def test_explain_prints_the_sql_without_running(env: dict[str, str]) -> None:
    """`tally query --explain` prints the same SQL as `tally compile` and no rows (in mf,
    --explain shows the query instead of the data); the stage timings moved to --timings."""
    explained, _ = _ok(env, "query", *BY_PLAN, "--explain")
    compiled, _ = _ok(env, "compile", *BY_PLAN)
    assert explained == compiled and explained.startswith("-- tally release")
    assert "rows)" not in explained
    out, err = _ok(env, "compile", *BY_PLAN, "--timings")
    assert out == compiled and "-- resolve: " in err


def test_csv_file_quiet_and_show_sql_keep_sql_out_of_the_data(
    env: dict[str, str], tmp_path: Path
) -> None:
    """--csv FILE writes the rows there; --show-sql goes to stderr, so CSV on stdout stays
    parseable; --quiet drops the file message."""
    target = tmp_path / "out.csv"
    out, err = _ok(env, "query", *BY_PLAN, "--csv", str(target), "--show-sql")
    assert out == ""
    assert "-- tally release" in err and f"Wrote 4 rows to {target}" in err
    rows = list(csv.reader(target.open()))
    assert rows[0] == ["account__plan", "revenue"] and len(rows) == 5
    out, err = _ok(env, "query", *BY_PLAN, "--csv", str(target), "--quiet")
    assert out == "" and "Wrote" not in err
    out, err = _ok(env, "query", *BY_PLAN, "--format", "csv", "--show-sql")
    assert next(csv.reader(io.StringIO(out))) == ["account__plan", "revenue"]
    assert "SELECT" not in out and "SELECT" in err
    assert "error[bad_argument]" in _fails(
        env, "query", *BY_PLAN, "--csv", str(tmp_path / "no" / "x.csv")
    )
    assert not (tmp_path / "no").exists()


def test_decimals_formats_numbers_and_rejects_negatives(env: dict[str, str]) -> None:
    """--decimals 2 shows fixed point in the table; --quiet drops the row count."""
    out, _ = _ok(env, "query", *BY_PLAN, "--decimals", "2", "--quiet")
    body = out.splitlines()[2:]
    assert body and all(line.split()[-1].split(".")[1].__len__() == 2 for line in body)
    assert "rows)" not in out
    err = _fails(env, "query", *BY_PLAN, "--decimals", "-1")
    assert "decimals: error[bad_argument]: --decimals -1: must be 0 or more" in err
