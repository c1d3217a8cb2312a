"""The SQL shapes issue #21 found missing edges in: parenthesised query bodies, bare `*` with no
schema, unqualified columns in later CTEs, scalar subqueries without FROM or inside CASE,
`WITH … UPDATE`, procedures and scripts (per-statement issues), and the session schema."""

from __future__ import annotations

from lineage.sql_lineage import sql_edges, sql_lineage

EVENTS = {"raw.events": ["id", "account_id", "amount_cents", "ts"]}


def keys(
    sql: str, schema: dict | None = None, dialect: str = "duckdb"
) -> set[tuple[str, str, str]]:
    return {e.key for e in sql_edges(sql, dialect=dialect, schema=schema)}


def test_create_view_with_a_parenthesised_body_and_column_list() -> None:
    """`CREATE VIEW v (a, b) AS (SELECT …)` gave no edges at all, silently."""
    assert keys("CREATE VIEW v (a, b) AS (SELECT id, amount_cents FROM raw.events)", EVENTS) == {
        ("raw.events.id", "main.v.a", "direct"),
        ("raw.events.amount_cents", "main.v.b", "direct"),
    }


def test_insert_with_a_parenthesised_with_query() -> None:
    found = keys(
        "INSERT INTO mart.t (k) (WITH c AS (SELECT id FROM raw.events WHERE ts > 0) SELECT id FROM c)",
        EVENTS,
    )
    assert found == {
        ("raw.events.id", "mart.t.k", "direct"),
        ("raw.events.ts", "mart.t.k", "indirect"),
    }


def test_bare_star_without_schema_flows_from_every_source() -> None:
    """`t.*` worked but bare `*` gave nothing when the source's columns are unknown."""
    assert keys("SELECT * FROM x.t WHERE f > 1") == {
        ("x.t.*", "main.query.*", "direct"),
        ("x.t.f", "main.query.*", "indirect"),
    }
    joined = keys("SELECT * FROM x.t JOIN x.u ON t.k = u.k")
    assert {("x.t.*", "main.query.*", "direct"), ("x.u.*", "main.query.*", "direct")} <= joined


def test_count_star_reads_the_rows_its_group_and_filter_decide() -> None:
    assert keys("SELECT k, COUNT(*) AS n FROM x.t WHERE f > 1 GROUP BY k") == {
        ("x.t.k", "main.query.k", "direct"),
        ("x.t.f", "main.query.k", "indirect"),
        ("x.t.k", "main.query.n", "indirect"),
        ("x.t.f", "main.query.n", "indirect"),
    }


def test_unqualified_columns_in_a_later_cte_without_schema() -> None:
    """A later CTE's scope also lists the earlier CTEs as sources: only its FROM/JOIN ones
    can hold an unqualified column, and a CTE whose columns are known and lack it cannot."""
    found = keys(
        "WITH a AS (SELECT c1, c2 FROM x.t), b AS (SELECT c3, k FROM x.u) "
        "SELECT c1, c3 FROM a JOIN b ON a.c2 = b.k"
    )
    assert ("x.t.c1", "main.query.c1", "direct") in found
    assert ("x.u.c3", "main.query.c3", "direct") in found
    second = keys(
        "WITH a AS (SELECT c1 FROM x.t), b AS (SELECT a.c1 AS d, c9 FROM a JOIN x.u ON a.c1 = u.k) "
        "SELECT d, c9 FROM b"
    )
    assert ("x.u.c9", "main.query.c9", "direct") in second


def test_scalar_subquery_without_from_reads_the_outer_query() -> None:
    assert keys("SELECT (SELECT col1 + col2 AS result) AS r FROM x.t") == {
        ("x.t.col1", "main.query.r", "direct"),
        ("x.t.col2", "main.query.r", "direct"),
    }


def test_scalar_subqueries_inside_case() -> None:
    """A subquery in THEN gives its value (direct); one in WHEN decides the branch."""
    found = keys(
        "SELECT CASE WHEN (SELECT MAX(amount_cents) FROM raw.events) > 5 "
        "THEN (SELECT MIN(name) FROM raw.accounts) ELSE 0 END AS r FROM raw.accounts",
        {**EVENTS, "raw.accounts": ["id", "name"]},
    )
    assert found == {
        ("raw.accounts.name", "main.query.r", "direct"),
        ("raw.events.amount_cents", "main.query.r", "indirect"),
    }
    correlated = keys(
        "SELECT CASE WHEN a > 0 THEN (SELECT MAX(b) FROM x.u WHERE u.k = t.k) ELSE c END AS r "
        "FROM x.t AS t",
        {"x.t": ["a", "c", "k"], "x.u": ["b", "k"]},
    )
    assert ("x.u.b", "main.query.r", "direct") in correlated
    assert ("x.t.a", "main.query.r", "indirect") in correlated


def test_with_update_reads_the_cte_not_a_table_of_that_name() -> None:
    """`WITH c AS (…) UPDATE t … FROM c` treated c as a real table main.c."""
    found = keys(
        "WITH c AS (SELECT id, amount_cents FROM raw.events WHERE ts > 0) "
        "UPDATE x.t SET a = c.amount_cents FROM c WHERE x.t.id = c.id",
        EVENTS,
        dialect="postgres",
    )
    assert ("raw.events.amount_cents", "x.t.a", "direct") in found
    assert ("raw.events.ts", "x.t.a", "indirect") in found
    assert not any(s.startswith("main.c.") for s, _, _ in found)


def test_tsql_procedure_body_statements_each_give_lineage() -> None:
    sql = """CREATE PROCEDURE dbo.p @x INT AS
BEGIN
  SET NOCOUNT ON;
  SELECT id, amount INTO #tmp FROM dbo.src WHERE amount > @x;
  INSERT INTO dbo.dst (id, total) SELECT id, SUM(amount) FROM #tmp GROUP BY id;
END"""
    found = sql_lineage(sql, dialect="tsql", file="p.sql")
    edges = {e.key for e in found.edges}
    assert ("dbo.src.amount", "main.tmp.amount", "direct") in edges
    assert ("main.tmp.amount", "dbo.dst.total", "direct") in edges
    assert found.issues == []


def test_bigquery_script_recovers_statements_inside_blocks_and_if_branches() -> None:
    sql = """DECLARE d DATE DEFAULT CURRENT_DATE();
BEGIN
  CREATE TEMP TABLE t AS SELECT a FROM ds.s;
  IF (SELECT COUNT(*) FROM t) > 0 THEN
    INSERT INTO ds.o (a) SELECT a FROM t;
  END IF;
END;"""
    found = sql_lineage(sql, dialect="bigquery", file="s.sql")
    assert {e.key for e in found.edges} == {
        ("ds.s.a", "main.t.a", "direct"),
        ("main.t.a", "ds.o.a", "direct"),
    }


def test_one_unparseable_statement_is_reported_with_file_and_line_and_the_rest_still_counts() -> (
    None
):
    """Teradata's TITLE phrase lost the whole script; now only its statement, reported."""
    sql = "SELECT a (TITLE 'A col') FROM t;\n\nINSERT INTO o SELECT b FROM s;"
    found = sql_lineage(sql, dialect="teradata", file="load.sql")
    assert {e.key for e in found.edges} == {("main.s.b", "main.o.b", "direct")}
    [issue] = found.issues
    assert (issue.file, issue.line) == ("load.sql", 1)
    assert str(issue).startswith("load.sql:1: statement not parsed (")


def test_an_opaque_command_that_may_hold_lineage_is_reported() -> None:
    found = sql_lineage(
        "CREATE TABLE a AS SELECT x FROM s;\nEXECUTE IMMEDIATE 'INSERT INTO b SELECT y FROM s';",
        dialect="bigquery",
        file="j.sql",
    )
    assert {e.key for e in found.edges} == {("main.s.x", "main.a.x", "direct")}
    assert [(i.line, "not understood" in i.reason) for i in found.issues] == [(2, True)]


def test_tables_created_earlier_are_the_schema_for_later_statements() -> None:
    """CREATE TABLE with a column list (no AS) still tells a later INSERT its columns by
    position, and a later `*` expands against a table created by the script."""
    found = keys(
        "CREATE TABLE x.s (k INT, v INT);\n"
        "INSERT INTO x.s SELECT id, amount_cents FROM raw.events;\n"
        "CREATE VIEW x.w AS SELECT * FROM x.s;",
        EVENTS,
    )
    assert ("raw.events.amount_cents", "x.s.v", "direct") in found
    assert ("x.s.v", "x.w.v", "direct") in found
    assert ("x.s.k", "x.w.k", "direct") in found


def test_lateral_alias_is_read_through_its_projection() -> None:
    """Snowflake-style `payload_fn(x) AS _l, _l:a AS a` (an alias read by a later projection)
    traces to the alias's columns, not to a column `_l` of the source."""
    sql = (
        "WITH source AS (SELECT * FROM raw.license), renamed AS (SELECT id AS license_id, "
        "parse_json(payload) AS _l, _l:issued_at::varchar AS issued_at FROM source) "
        "SELECT * FROM renamed"
    )
    found = keys(sql, dialect="snowflake")
    assert ("raw.license.payload", "main.query.issued_at", "direct") in found
    assert not any(s == "raw.license._l" for s, _, _ in found)
    # A column of that name in a source known to hold it wins over the alias.
    known = keys("SELECT a + 1 AS b, b AS c FROM x.t", {"x.t": ["a", "b"]}, dialect="snowflake")
    assert ("x.t.b", "main.query.c", "direct") in known


def test_bare_star_over_a_cte_of_known_columns_names_them() -> None:
    """`SELECT * FROM renamed` where renamed lists its columns gives those columns, even when
    the table under it is unknown (no single `*` output)."""
    found = keys("WITH r AS (SELECT id AS k, v FROM x.t) SELECT * FROM r")
    assert found == {("x.t.id", "main.query.k", "direct"), ("x.t.v", "main.query.v", "direct")}


def test_flatten_beside_an_unknown_table_places_unqualified_columns() -> None:
    """`FROM issues, LATERAL FLATTEN(input => fix_versions)`: `value` is FLATTEN's, the other
    names the table's; `fv.*` over the CTE then names its columns (found in
    mattermost-analytics' dim_fix_versions, where all were missed)."""
    sql = (
        "WITH b AS (SELECT issue_id, value:name::string AS fix_version, "
        "REGEXP_SUBSTR(fix_version, 'v') AS semver FROM mm.issues, "
        "LATERAL FLATTEN(input => fix_versions)) "
        "SELECT fv.*, rd.rc1 FROM b AS fv LEFT JOIN mm.rd AS rd ON rd.v = fv.semver"
    )
    direct = {k for k in keys(sql, dialect="snowflake") if k[2] == "direct"}
    assert direct == {
        ("mm.issues.issue_id", "main.query.issue_id", "direct"),
        ("mm.issues.fix_versions", "main.query.fix_version", "direct"),
        ("mm.issues.fix_versions", "main.query.semver", "direct"),
        ("mm.rd.rc1", "main.query.rc1", "direct"),
    }


def test_pivot_cells_come_from_the_aggregated_column() -> None:
    """A PIVOT cell is an aggregate of the value column (DIRECT) over the rows its FOR column
    picks (INDIRECT); other columns pass through (sqlglot's own lineage tests)."""
    found = keys(
        "SELECT cat_a_s AS other_as, empid FROM x.sample_data "
        "PIVOT (SUM(value) AS s, MAX(price) FOR category IN ('a' AS cat_a, 'b'))"
    )
    assert found >= {
        ("x.sample_data.value", "main.query.other_as", "direct"),
        ("x.sample_data.category", "main.query.other_as", "indirect"),
        ("x.sample_data.empid", "main.query.empid", "direct"),
    }
    assert ("x.sample_data.price", "main.query.other_as", "direct") not in found


def test_unpivot_value_and_name_columns_come_from_the_folded_columns() -> None:
    sql = (
        "WITH src AS (SELECT id, jan, feb FROM x.sales) "
        "SELECT id, metric_name, score FROM src UNPIVOT (score FOR metric_name IN (jan, feb))"
    )
    found = keys(sql, {"x.sales": ["id", "jan", "feb"]}, dialect="snowflake")
    assert found == {
        ("x.sales.jan", "main.query.score", "direct"),
        ("x.sales.feb", "main.query.score", "direct"),
        ("x.sales.jan", "main.query.metric_name", "direct"),
        ("x.sales.feb", "main.query.metric_name", "direct"),
        ("x.sales.id", "main.query.id", "direct"),
    }


def test_a_model_built_from_unexpanded_stars_passes_columns_through_its_star() -> None:
    """`dataset` = a UNION of `SELECT *` over unknown tables: a later model's `x` reads
    dataset.x, and every column that influenced it reaches both tables through dataset.*."""
    from lineage.sql_lineage import SqlModel, column_influences, project_lineage

    found = project_lineage([
        SqlModel("dataset", "SELECT * FROM db.table_a UNION SELECT * FROM db.table_b"),
        SqlModel("report", "SELECT x FROM dataset"),
    ])  # fmt: skip
    assert ("main.dataset.x", "main.report.x", "direct") in {e.key for e in found.edges}
    assert {"db.table_a.*", "db.table_b.*"} <= column_influences(found.edges, "main.report.x")


def test_chained_unpivots_and_alias_column_lists_rename_by_position() -> None:
    """Each operator reads the one before; `AS t(a, b, …)` renames the output by position
    when the input's columns are known (sqlglot's own lineage tests)."""
    schema = {"x.m": ["empid", "dept", "jan", "feb", "n", "s"]}
    found = keys(
        "SELECT a, b, c, d, e, f FROM x.m UNPIVOT(sales FOR mon IN (jan, feb)) "
        "UNPIVOT(hc FOR reg IN (n, s)) AS t(a, b, c, d, e, f)",
        schema,
        dialect="snowflake",
    )
    by_target: dict[str, set[str]] = {}
    for source, target, subtype in found:
        if subtype == "direct":
            by_target.setdefault(target.rsplit(".", 1)[1], set()).add(source)
    assert by_target == {
        "a": {"x.m.empid"}, "b": {"x.m.dept"}, "c": {"x.m.jan", "x.m.feb"},
        "d": {"x.m.jan", "x.m.feb"}, "e": {"x.m.n", "x.m.s"}, "f": {"x.m.n", "x.m.s"},
    }  # fmt: skip
    pivoted = keys(
        "SELECT x FROM (SELECT value, category FROM x.sample_data) AS sd "
        "PIVOT (SUM(value) FOR category IN ('a', 'b')) AS p(x, y)"
    )
    assert ("x.sample_data.value", "main.query.x", "direct") in pivoted
