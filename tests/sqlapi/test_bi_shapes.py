"""Issue #19: the SQL Superset's and Metabase's query builders emit for common charts maps
onto the semantic layer (semantic/sqlapi/bi_shapes.py), and answers over the wire with the
rows `tally query` gives for the same question.

The statements are the tools' own spellings, transcribed from their source and docs with
``tally.metrics`` as the table:

* Superset (``superset/db_engine_specs/postgres.py``): time grains
  ``DATE_TRUNC('month', {col})``; ``convert_dttm`` gives ``TO_DATE('…', 'YYYY-MM-DD')`` for
  DATE columns and ``TO_TIMESTAMP('… 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')`` for
  timestamps; metrics are labelled ``"SUM(revenue)"``; a virtual dataset is wrapped as
  ``FROM (<its SQL>) AS virtual_table``; a native filter's values are the column grouped,
  ordered and limited to 1000.
* Metabase (its PostgreSQL driver, as "View the native query" shows): fully qualified
  quoted columns; a month of a DATE column as ``CAST(DATE_TRUNC('month', col) AS date)``,
  repeated in GROUP BY and ORDER BY; ``timestamp '… 00:00:00.000'`` literals and
  ``CAST('x' AS "varchar")`` string literals in filters; nested questions as
  ``FROM (…) AS "source"``; field values for a dropdown as the column grouped, ordered,
  limited; table previews as bare columns with ``LIMIT 2000``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import sqlglot

from semantic.sqlapi.bi_shapes import map_bi_select
from semantic.sqlapi.table import SqlTable, sql_table_build
from semantic.sqlapi.translate import SqlApiError
from tests.conftest import run_tally
from tests.semantic.conftest import fixtures_manifest
from tests.sqlapi.conftest import Servers

TS = "'YYYY-MM-DD HH24:MI:SS.US'"
M = '"tally"."metrics"'

# name → (SQL as the tool writes it, the `tally query` flags of the same question).
SHAPES: dict[str, tuple[str, list[str]]] = {
    "superset_time_series_by_month": (
        "SELECT DATE_TRUNC('month', metric_time__day) AS metric_time__day, "
        'SUM(revenue) AS "SUM(revenue)" FROM tally.metrics '
        f"WHERE metric_time__day >= TO_TIMESTAMP('2025-01-01 00:00:00.000000', {TS}) "
        f"AND metric_time__day < TO_TIMESTAMP('2026-01-01 00:00:00.000000', {TS}) "
        "GROUP BY DATE_TRUNC('month', metric_time__day) LIMIT 10000",
        ["--metrics", "revenue", "--group-by", "metric_time__month",
         "--where", "{{ TimeDimension('metric_time', 'day') }} >= '2025-01-01'",
         "--where", "{{ TimeDimension('metric_time', 'day') }} < '2026-01-01'"],
    ),
    "superset_time_series_on_a_date_column": (
        "SELECT DATE_TRUNC('quarter', metric_time__day) AS metric_time__day, "
        'SUM(new_accounts) AS "SUM(new_accounts)" FROM tally.metrics '
        "WHERE metric_time__day >= TO_DATE('2025-01-01', 'YYYY-MM-DD') "
        "GROUP BY DATE_TRUNC('quarter', metric_time__day) "
        'ORDER BY "SUM(new_accounts)" DESC LIMIT 10000',
        ["--metrics", "new_accounts", "--group-by", "metric_time__quarter",
         "--where", "{{ TimeDimension('metric_time', 'day') }} >= '2025-01-01'",
         "--order-by", "-new_accounts"],
    ),
    "superset_bar_by_dimension": (
        'SELECT account__plan AS account__plan, SUM(revenue) AS "SUM(revenue)" '
        'FROM tally.metrics GROUP BY account__plan ORDER BY "SUM(revenue)" DESC LIMIT 10000',
        ["--metrics", "revenue", "--group-by", "account__plan", "--order-by", "-revenue"],
    ),
    "superset_virtual_dataset_chart": (
        "SELECT DATE_TRUNC('month', metric_time__day) AS metric_time__day, "
        'SUM(revenue) AS "SUM(revenue)" FROM (SELECT metric_time__day, account__plan, revenue '
        "FROM tally.metrics WHERE account__plan <> 'free') AS virtual_table "
        "GROUP BY DATE_TRUNC('month', metric_time__day) LIMIT 10000",
        ["--metrics", "revenue", "--group-by", "metric_time__month",
         "--where", "{{ Dimension('account__plan') }} <> 'free'"],
    ),
    "superset_virtual_dataset_preview": (
        "SELECT * FROM (SELECT account__plan, revenue FROM tally.metrics) AS virtual_table "
        "LIMIT 10",
        ["--metrics", "revenue", "--group-by", "account__plan", "--limit", "10"],
    ),
    "superset_filter_values": (
        "SELECT account__plan AS account__plan FROM tally.metrics GROUP BY account__plan "
        "ORDER BY account__plan ASC LIMIT 1000",
        [],
    ),
    "metabase_time_series_by_month": (
        f'SELECT CAST(DATE_TRUNC(\'month\', {M}."metric_time__day") AS date) AS "metric_time__day", '
        f'SUM({M}."revenue") AS "sum" FROM {M} '
        f'WHERE {M}."metric_time__day" >= timestamp \'2025-01-01 00:00:00.000\' '
        f'GROUP BY CAST(DATE_TRUNC(\'month\', {M}."metric_time__day") AS date) '
        f'ORDER BY CAST(DATE_TRUNC(\'month\', {M}."metric_time__day") AS date) ASC',
        ["--metrics", "revenue", "--group-by", "metric_time__month",
         "--where", "{{ TimeDimension('metric_time', 'day') }} >= '2025-01-01'",
         "--order-by", "metric_time__month"],
    ),
    "metabase_bar_by_dimension": (
        f'SELECT {M}."account__region" AS "account__region", SUM({M}."new_accounts") AS "sum" '
        f'FROM {M} WHERE {M}."account__plan" = CAST(\'pro\' AS "varchar") '
        f'GROUP BY {M}."account__region" ORDER BY "sum" DESC, {M}."account__region" ASC',
        ["--metrics", "new_accounts", "--group-by", "account__region",
         "--where", "{{ Dimension('account__plan') }} = 'pro'",
         "--order-by", "-new_accounts,account__region"],
    ),
    "metabase_nested_question": (
        'SELECT "source"."metric_time__day" AS "metric_time__day", SUM("source"."revenue") AS "sum" '
        f'FROM (SELECT CAST(DATE_TRUNC(\'year\', {M}."metric_time__day") AS date) AS "metric_time__day", '
        f'{M}."revenue" AS "revenue" FROM {M}) AS "source" '
        'GROUP BY "source"."metric_time__day" ORDER BY "source"."metric_time__day" ASC',
        ["--metrics", "revenue", "--group-by", "metric_time__year",
         "--order-by", "metric_time__year"],
    ),
    "metabase_field_values": (
        f'SELECT {M}."account__region" AS "account__region" FROM {M} '
        f'GROUP BY {M}."account__region" ORDER BY {M}."account__region" ASC LIMIT 1000',
        [],
    ),
    "metabase_table_preview": (
        f'SELECT {M}."account__plan" AS "account__plan", {M}."revenue" AS "revenue" '
        f"FROM {M} LIMIT 2000",
        ["--metrics", "revenue", "--group-by", "account__plan"],
    ),
    # Superset's adhoc HAVING filter (extras.having, each filter parenthesised by Superset's
    # get_sqla_query): the metric as SELECT spells it; the same rows as `tally query --having`.
    "superset_having": (
        'SELECT account__plan AS account__plan, SUM(revenue) AS "SUM(revenue)" FROM tally.metrics '
        'GROUP BY account__plan HAVING SUM(revenue) > 1000 ORDER BY "SUM(revenue)" DESC LIMIT 10000',
        ["--metrics", "revenue", "--group-by", "account__plan", "--having", "revenue > 1000",
         "--order-by", "-revenue"],
    ),
    "superset_adhoc_having_filters": (
        'SELECT account__plan AS account__plan, SUM(revenue) AS "SUM(revenue)" FROM tally.metrics '
        "GROUP BY account__plan HAVING ((SUM(revenue) > 100000)) AND ((account__plan <> 'enterprise')) "
        'ORDER BY "SUM(revenue)" DESC LIMIT 10000',
        ["--metrics", "revenue", "--group-by", "account__plan", "--having", "revenue > 100000",
         "--having", "account__plan <> 'enterprise'", "--order-by", "-revenue"],
    ),
    # Metabase's filter on a summarized metric: the summarized question as "source", filtered
    # by an outer WHERE on its aggregate column.
    "metabase_filter_on_a_summarized_metric": (
        'SELECT "source"."account__plan" AS "account__plan", "source"."sum" AS "sum" '
        f'FROM (SELECT {M}."account__plan" AS "account__plan", SUM({M}."revenue") AS "sum" '
        f'FROM {M} GROUP BY {M}."account__plan" ORDER BY {M}."account__plan" ASC) AS "source" '
        'WHERE "source"."sum" > 100000 LIMIT 1048575',
        ["--metrics", "revenue", "--group-by", "account__plan", "--having", "revenue > 100000",
         "--order-by", "account__plan"],
    ),
    "two_dimensions_without_a_metric": (
        "SELECT account__plan, account__region FROM tally.metrics GROUP BY 1, 2",
        ["--group-by", "account__plan,account__region"],
    ),
    "dropdown_select_distinct": (
        "SELECT DISTINCT account__region FROM tally.metrics ORDER BY 1 DESC",
        [],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def table() -> SqlTable:
    return sql_table_build(fixtures_manifest())


def _mapped(sql: str, table: SqlTable) -> Any:
    return map_bi_select(sqlglot.parse_one(sql, read="postgres"), table, dialect="duckdb")


def test_time_grains_and_literals_map_onto_the_query(table: SqlTable) -> None:
    """DATE_TRUNC/CAST spellings pick the grain column; TO_TIMESTAMP and timestamp literals
    become filters the compiler accepts; the virtual table's filter joins the outer one."""
    query = _mapped(SHAPES["superset_virtual_dataset_chart"][0], table).query
    assert query.group_by == ("metric_time__month",) and query.metrics == ("revenue",)
    assert query.where == ("{{ Dimension('account__plan') }} <> 'free'",)
    superset = _mapped(SHAPES["superset_time_series_by_month"][0], table).query
    assert superset.where == (
        "{{ TimeDimension('metric_time', 'day') }} >= CAST('2025-01-01 00:00:00' AS TIMESTAMP)",
        "{{ TimeDimension('metric_time', 'day') }} < CAST('2026-01-01 00:00:00' AS TIMESTAMP)",
    )
    metabase = _mapped(SHAPES["metabase_time_series_by_month"][0], table)
    assert metabase.query.group_by == ("metric_time__month",)
    assert [shown for shown, _n, _c in metabase.outputs] == ["metric_time__day", "sum"]
    # A grain finer than the column's keeps the column; week → month is a new column.
    fine = _mapped("SELECT DATE_TRUNC('day', metric_time__month), revenue FROM metrics", table)
    assert fine.query.group_by == ("metric_time__month",)
    assert _mapped("SELECT DISTINCT account__plan FROM metrics LIMIT 5 OFFSET 2", table).offset == 2


def test_filters_on_aggregated_rows_become_having(table: SqlTable) -> None:
    """An outer WHERE on a grouping subquery's columns filters its groups: the having of the
    flattened query (the metric's column by name), and HAVING in a subquery joins it."""
    metabase = _mapped(SHAPES["metabase_filter_on_a_summarized_metric"][0], table).query
    assert (metabase.where, metabase.having) == ((), ("revenue > 100000",))
    assert metabase.order_by == ("account__plan",) and metabase.limit == 1048575
    inner = _mapped(
        "SELECT t.p, t.s FROM (SELECT account__plan AS p, SUM(revenue) AS s FROM metrics "
        "WHERE account__region = 'EU' GROUP BY 1 HAVING SUM(revenue) > 5) AS t WHERE t.s < 9",
        table,
    ).query
    assert inner.where == ("{{ Dimension('account__region') }} = 'EU'",)
    assert inner.having == ("revenue > 5", "revenue < 9")
    superset = _mapped(SHAPES["superset_having"][0], table).query
    assert superset.having == ("revenue > 1000",) and superset.where == ()


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [
        ("SELECT x.revenue FROM (SELECT revenue FROM metrics LIMIT 3) AS x WHERE x.revenue > 1", "0A000"),
        ("SELECT SUM(s) FROM (SELECT SUM(revenue) AS s FROM metrics GROUP BY account__plan) AS t", "0A000"),
        ("SELECT nope FROM (SELECT revenue FROM metrics) AS t", "42703"),
        ("SELECT revenue FROM metrics WHERE metric_time__day > TO_DATE('01/02', 'YYYY-MM-DD')", "22007"),
    ],
)  # fmt: skip
def test_shapes_that_are_not_one_question_are_refused(
    table: SqlTable, sql: str, sqlstate: str
) -> None:
    with pytest.raises(SqlApiError) as caught:
        _mapped(sql, table)
    assert caught.value.sqlstate == sqlstate


def _normal(row: tuple[Any, ...] | list[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for value in row:
        if hasattr(value, "isoformat"):
            out.append(value.isoformat()[:10])
        elif isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
            out.append(value[:10])
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            out.append(Decimal(str(value)).normalize())
        elif isinstance(value, str) and value.replace(".", "", 1).lstrip("-").isdigit():
            out.append(Decimal(value).normalize())
        else:
            out.append(value)
    return tuple(out)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_bi_shape_answers_as_tally_query(servers: Servers, name: str) -> None:
    """Each tool's statement answers over the wire with `tally query`'s rows (a filter
    dropdown's: the column's distinct values)."""
    sql, flags = SHAPES[name]
    with psycopg.connect(servers.url()) as conn:
        got = [_normal(row) for row in conn.execute(sql).fetchall()]
    assert got, name
    if not flags:
        column = "account__plan" if "account__plan" in sql else "account__region"
        cli = run_tally("list", "dimension-values", "--dimension", column,
                        "--format", "json", "--limit", "1000", env=servers.env)  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        values = json.loads(cli.stdout)["values"]
        expected = [(v,) for v in (sorted(values, reverse=True) if "DESC" in sql else values)]
        assert got == expected
        return
    cli = run_tally("query", *flags, "--format", "json", env=servers.env)
    assert cli.returncode == 0, cli.stderr
    expected = [_normal(row) for row in json.loads(cli.stdout)["rows"]]
    assert sorted(got, key=repr) == sorted(expected, key=repr)
    order = flags[flags.index("--order-by") + 1] if "--order-by" in flags else ""
    if order and not order.startswith("-"):
        # Ordered by the group-by columns: the order is the same too (no ties).
        assert got == expected


@pytest.mark.parametrize(
    ("having", "sqlstate", "text"),
    [
        ("SUM(revenue) > 1 AND nope > 1", "42703", 'column "nope" does not exist'),
        ("SUM(revenue) > 1 AND account__region = 'EU'", "42803", '"account__region" must appear'),
        ("SUM(revenue) > pg_sleep(1)", "42601", "function pg_sleep is not allowed"),
        ("SUM(revenue) > (SELECT 1)", "0A000", "a subquery is not supported"),
    ],
)  # fmt: skip
def test_a_bad_having_is_an_error_response_naming_it(
    servers: Servers, having: str, sqlstate: str, text: str
) -> None:
    """A HAVING the SQL API or the compiler refuses is an ErrorResponse with its SQLSTATE and
    a message naming the column or construct, never an internal error; the session goes on."""
    sql = f"SELECT account__plan, SUM(revenue) FROM tally.metrics GROUP BY 1 HAVING {having}"
    with psycopg.connect(servers.url(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(sql)
        assert raised.value.sqlstate == sqlstate
        assert text.lower() in str(raised.value).lower()
        assert conn.execute("SELECT revenue FROM tally.metrics").fetchall()


def test_having_for_a_tenant_filters_only_the_tenants_rows(servers: Servers) -> None:
    """Over a tenant's token the HAVING filters the groups row policies left (the tenant's
    unfiltered rows, filtered in Python), not anyone else's; a HAVING on a masked column is
    refused naming the column, as a WHERE on it is."""
    import requests

    sql = SHAPES["superset_adhoc_having_filters"][0].replace("100000", "1000")
    plain = sql.split(" HAVING ")[0] + ' ORDER BY "SUM(revenue)" DESC'
    tenant = servers.url(user="bi", password=servers.tenant_token)
    with psycopg.connect(tenant) as conn:
        got = [_normal(row) for row in conn.execute(sql).fetchall()]
        unfiltered = [_normal(row) for row in conn.execute(plain).fetchall()]
    expected = [r for r in unfiltered if r[1] is not None and r[1] > 1000 and r[0] != "enterprise"]
    assert got == expected and got and len(got) < len(unfiltered)
    with psycopg.connect(servers.url()) as conn:  # the auditor: no row policy
        everyone = [_normal(row) for row in conn.execute(sql).fetchall()]
    assert everyone != got
    body = {"metrics": ["revenue"], "group_by": ["account__plan"], "order_by": ["-revenue"],
            "having": ["revenue > 1000", "account__plan <> 'enterprise'"]}  # fmt: skip
    headers = {"Authorization": f"Bearer {servers.tenant_token}"}
    answer = requests.post(f"{servers.http}/api/v1/query", json=body, headers=headers, timeout=60)
    assert [_normal(row) for row in answer.json()["rows"]] == got
    with psycopg.connect(tenant) as conn, pytest.raises(psycopg.Error) as raised:
        conn.execute(
            "SELECT user__email, signups FROM metrics GROUP BY 1 HAVING user__email LIKE '%@%'"
        )
    assert "users.email" in str(raised.value)
