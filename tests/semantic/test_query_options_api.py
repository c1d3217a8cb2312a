"""MetricFlow's options of a query without metrics (issue #16) through the interfaces that
take a query: ``min_max_only``/``apply_group_by`` in the JSON body of /api/v1/query and
/api/v1/compile, ``--min-max-only``/``--no-apply-group-by`` on ``tally compile``/``query``."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import duckdb
import pytest
from django.core.management import call_command
from django.test import Client

from semantic.management.commands._query_args import add_query_arguments, query_from_options
from tests.semantic.test_api import api, post  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def test_query_min_max_only_returns_one_row_of_least_and_greatest(
    api: Client,  # noqa: F811
    warehouse_path: Path,
) -> None:
    response = post(api, "/api/v1/query", {"group_by": ["account__plan"], "min_max_only": True})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["columns"] == ["account__plan__min", "account__plan__max"]
    con = duckdb.connect(str(warehouse_path), read_only=True)
    expected = con.execute("SELECT MIN(plan), MAX(plan) FROM accounts").fetchone()
    con.close()
    assert body["rows"] == [list(expected)]


def test_compile_apply_group_by_false_drops_the_group_by(api: Client) -> None:  # noqa: F811
    body = {"group_by": ["user__country", "account__plan"]}
    plain = post(api, "/api/v1/compile", body)
    rows = post(api, "/api/v1/compile", {**body, "apply_group_by": False})
    assert plain.status_code == rows.status_code == 200
    assert "GROUP BY" in plain.json()["sql"] and "GROUP BY" not in rows.json()["sql"]


def test_an_option_misused_is_a_400_naming_the_field(api: Client) -> None:  # noqa: F811
    response = post(
        api, "/api/v1/query", {"metrics": ["revenue"], "group_by": ["account__plan"],
                               "min_max_only": True},
    )  # fmt: skip
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["location"]) == ("bad_query_option", "metrics")


def test_cli_flags_set_the_options() -> None:
    parser = argparse.ArgumentParser()
    add_query_arguments(parser)  # type: ignore[arg-type]
    default = query_from_options(vars(parser.parse_args(["--group-by", "a__b"])), dialect="duckdb")
    both = query_from_options(
        vars(parser.parse_args(["--group-by", "a__b", "--min-max-only", "--no-apply-group-by"])),
        dialect="duckdb",
    )
    assert (default.min_max_only, default.apply_group_by) == (False, True)
    assert (both.min_max_only, both.apply_group_by) == (True, False)


def test_tally_compile_min_max_only_prints_the_min_max_sql(api: Any) -> None:  # noqa: F811
    out = io.StringIO()
    call_command("compile", "--group-by", "account__plan", "--min-max-only", stdout=out)
    assert "MIN(item_values.account__plan) AS account__plan__min" in out.getvalue()
