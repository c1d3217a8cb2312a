"""Where filters: MetricFlow Jinja items read through DSI, the SQL checked by an allow-list.

Every refusal is a QueryError with code ``bad_where`` and a location ``where[0]:start-end``
(a 0-based, end-exclusive span of the filter). No user text ever reaches SQL as text.
"""

from __future__ import annotations

import doctest
import subprocess
import sys

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from semantic.compiler import where
from semantic.compiler.where import (
    ALLOWED_FUNCTIONS,
    MAX_FILTER_CHARS,
    MAX_NESTING,
    MSG_BAD_CHARACTER,
    MSG_BAD_ITEM,
    MSG_BAD_NAME,
    MSG_BARE_COLUMN,
    MSG_CAST_TYPE,
    MSG_CONFUSABLE_QUOTE,
    MSG_EMPTY,
    MSG_IN_LITERALS,
    MSG_JINJA_ARGUMENT_VALUE,
    MSG_JINJA_ARGUMENTS,
    MSG_JINJA_ATTRIBUTE,
    MSG_JINJA_COMMENT,
    MSG_JINJA_DESCENDING,
    MSG_JINJA_LIST_EXPECTED,
    MSG_JINJA_METHOD,
    MSG_JINJA_NOT_CALL,
    MSG_JINJA_STATEMENT,
    MSG_JINJA_SYNTAX,
    MSG_JINJA_UNCLOSED,
    MSG_NOT_ALLOWED,
    MSG_NOT_CONDITION,
    MSG_REF_ADJACENT,
    MSG_REF_IN_STRING,
    MSG_SET_OPERATION,
    MSG_SQL_COMMENT,
    MSG_SQL_SYNTAX,
    MSG_STACKED_STATEMENTS,
    MSG_STATEMENT,
    MSG_SUBQUERY,
    MSG_SYNTAX_NOT_ALLOWED,
    MSG_TOO_DEEP,
    MSG_TOO_LONG,
    MSG_UNIT,
    MSG_UNKNOWN_DATE_PART,
    MSG_UNKNOWN_GRAIN,
    MSG_UNKNOWN_JINJA_FUNCTION,
    ParsedWhere,
    QueryItemRef,
    parse_where,
    substitute,
)
from tally.errors import CompileError, QueryError
from tests.conftest import ROOT

DIALECTS = ("duckdb", "postgres", "mysql", "bigquery", "snowflake")
PLAN = "{{ Dimension('account__plan') }}"
ACCOUNT = "{{ Entity('account') }}"
USER = "{{ Entity('user') }}"
MONTH = "{{ TimeDimension('metric_time', 'month') }}"


def refuse(template: str, **kwargs: object) -> QueryError:
    """Parses a filter that must be refused and returns the error."""
    with pytest.raises(QueryError) as info:
        parse_where(template, **kwargs)  # type: ignore[arg-type]
    assert info.value.code == "bad_where"
    return info.value


def span_text(template: str, error: QueryError) -> str | None:
    """The part of the filter an error's location points at (None without a span)."""
    assert error.location is not None
    _, _, span = error.location.rpartition(":")
    if "-" not in span:
        return None
    start, end = (int(part) for part in span.split("-"))
    assert error.details == {"start": start, "end": end}
    return template[start:end]


def columns_for(parsed: ParsedWhere) -> dict[str, exp.Expression]:
    """A plain table column for every item, as the compiler would resolve them."""
    return {ref.placeholder: exp.column(ref.name, table="t") for ref in parsed.refs}


def render_everywhere(expression: exp.Expression) -> dict[str, str]:
    """Renders a condition for each dialect and parses the SQL back with that dialect."""
    rendered = {}
    for dialect in DIALECTS:
        sql = expression.sql(dialect=dialect)
        sqlglot.parse_one(sql, read=dialect)
        rendered[dialect] = sql
    return rendered


# ─── the forms users write ────────────────────────────────────────────────────────────────

FORMS = [
    (PLAN + " = 'enterprise'", "dimension", "plan", ("account",), None, None, ()),
    ("{{ Dimension('user__account__plan') }} = 'pro'", "dimension", "plan", ("user", "account"), None, None, ()),
    ("{{ Dimension('account__plan', entity_path=['user']) }} = 'pro'", "dimension", "plan", ("user", "account"), None, None, ()),
    (MONTH + " >= '2026-01-01'", "time_dimension", "metric_time", (), "month", None, ()),
    ("{{ TimeDimension('events__occurred_at', grain='week') }} >= '2026-01-01'", "time_dimension", "occurred_at", ("events",), "week", None, ()),
    ("{{ TimeDimension('events__occurred_at', time_granularity_name='week') }} IS NULL", "time_dimension", "occurred_at", ("events",), "week", None, ()),
    ("{{ TimeDimension('metric_time__quarter') }} >= '2026-01-01'", "time_dimension", "metric_time", (), "quarter", None, ()),
    ("{{ TimeDimension('metric_time', 'month', date_part_name='year') }} = 2026", "time_dimension", "metric_time", (), "month", "year", ()),
    ("{{ Dimension('metric_time').grain('month') }} >= '2026-01-01'", "time_dimension", "metric_time", (), "month", None, ()),
    ("{{ Dimension('metric_time').date_part('year') }} = 2026", "time_dimension", "metric_time", (), None, "year", ()),
    ("{{ Dimension('events__occurred_at').grain('day').date_part('dow') }} IN (6, 7)", "time_dimension", "occurred_at", ("events",), "day", "dow", ()),
    ("{{ Dimension('metric_time__month') }} >= '2026-01-01'", "time_dimension", "metric_time", (), "month", None, ()),
    (ACCOUNT + " = 123", "entity", "account", (), None, None, ()),
    ("{{ Entity('user', entity_path=['account']) }} = 7", "entity", "user", ("account",), None, None, ()),
    ("{{ Entity('user__account') }} = 7", "entity", "account", ("user",), None, None, ()),
    ("{{ Metric('revenue', group_by=['account']) }} > 100", "metric", "revenue", (), None, None, ("account",)),
    ("{{ Metric('revenue', group_by=['account', 'metric_time']) }} > 100", "metric", "revenue", (), None, None, ("account", "metric_time")),
    ("{{ Dimension('account__is_active') }}", "dimension", "is_active", ("account",), None, None, ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("template", "kind", "name", "entity_path", "grain", "date_part", "group_by"), FORMS
)
def test_each_metricflow_form_parses_to_its_item(
    template: str,
    kind: str,
    name: str,
    entity_path: tuple[str, ...],
    grain: str | None,
    date_part: str | None,
    group_by: tuple[str, ...],
) -> None:
    """Dimension/TimeDimension/Entity/Metric calls give the kind, name and path DSI reads."""
    parsed = parse_where(template)
    (ref,) = parsed.refs
    assert (ref.kind, ref.name, ref.entity_path) == (kind, name, entity_path)
    assert (ref.grain, ref.date_part, ref.group_by) == (grain, date_part, group_by)
    assert ref.placeholder == "__tally_ref_0"
    assert ref.text == template[: template.index("}}") + 2]
    assert parsed.template == template


def test_both_multi_hop_spellings_give_the_same_item() -> None:
    """user__account__plan and entity_path=['user'] with account__plan mean one join path."""
    dundered = parse_where("{{ Dimension('user__account__plan') }} = 'x'").refs[0]
    with_path = parse_where("{{ Dimension('account__plan', entity_path=['user']) }} = 'x'").refs[0]
    assert (dundered.name, dundered.entity_path) == (with_path.name, with_path.entity_path)
    deeper = parse_where("{{ Dimension('account__plan', entity_path=['org', 'user']) }} = 'x'")
    assert deeper.refs[0].entity_path == ("org", "user", "account")


def test_placeholders_follow_first_appearance_and_repeat_for_equal_items() -> None:
    """Placeholders are numbered in order; the same item (however spelled) reuses its own."""
    parsed = parse_where(
        "{{ Dimension('account__plan') }} = 'a' OR {{Dimension('account__plan')}} = 'b' "
        "OR (" + ACCOUNT + " IN (1, 2) AND " + MONTH + " >= '2026-01-01') "
        "OR {{ Dimension('account__plan') }} IS NULL"
    )
    assert [ref.placeholder for ref in parsed.refs] == [
        "__tally_ref_0",
        "__tally_ref_1",
        "__tally_ref_2",
    ]
    assert [ref.kind for ref in parsed.refs] == ["dimension", "entity", "time_dimension"]
    assert parsed.expression.sql() == (
        "__tally_ref_0 = 'a' OR __tally_ref_0 = 'b' OR "
        "(__tally_ref_1 IN (1, 2) AND __tally_ref_2 >= '2026-01-01') OR __tally_ref_0 IS NULL"
    )
    assert parsed.refs[0].text == PLAN
    assert parse_where(PLAN + " = 'x'").expression == parse_where(PLAN + " = 'x'").expression


def test_every_column_of_the_tree_is_a_placeholder() -> None:
    """Items become bare placeholder columns; nothing else in the tree is a column."""
    parsed = parse_where(PLAN + " = 'x' AND LOWER(" + PLAN + ") <> 'y' AND " + ACCOUNT + " > 1")
    names = {column.sql() for column in parsed.expression.find_all(exp.Column)}
    assert names == {ref.placeholder for ref in parsed.refs}


def test_a_filter_s_division_is_real_division_with_a_null_for_a_zero_divisor() -> None:
    """Bug: a filter's ``/`` was left to each engine (MariaDB kept 4 decimals, ClickHouse a
    DECIMAL's scale, PostgreSQL failed on a zero divisor, DuckDB gave infinity), so one
    filter selected other rows per engine; it is a definition's division now."""
    parsed = parse_where(ACCOUNT + " / 2 > 3 AND " + ACCOUNT + " / (" + ACCOUNT + " - 7) > 1")
    assert parsed.expression.sql() == (
        "CAST(__tally_ref_0 AS DOUBLE) / 2 > 3 "
        "AND CAST(__tally_ref_0 AS DOUBLE) / NULLIF((__tally_ref_0 - 7), 0) > 1"
    )


def test_names_grains_and_date_parts_are_lowercased_like_metricflow() -> None:
    """MetricFlow lowercases item names; so does Tally, before DSI reads them."""
    (ref,) = parse_where("{{ Dimension('Account__Plan') }} = 'Pro'").refs
    assert (ref.name, ref.entity_path) == ("plan", ("account",))
    (ref,) = parse_where("{{ Dimension('METRIC_TIME').grain('MONTH') }} IS NULL").refs
    assert (ref.name, ref.grain) == ("metric_time", "month")


def test_custom_grains_are_accepted_when_the_caller_names_them() -> None:
    """A custom grain is unknown to a bare parse but fine once the manifest lists it."""
    template = "{{ TimeDimension('metric_time', 'fiscal_quarter') }} >= '2026-01-01'"
    refuse(template)
    parsed = parse_where(template, custom_granularity_names=["fiscal_quarter"])
    assert parsed.refs[0].grain == "fiscal_quarter"


def test_a_grain_suffix_on_dimension_is_kept() -> None:
    """DSI's create_dimension drops the __month suffix; Tally keeps it as the grain."""
    (ref,) = parse_where("{{ Dimension('events__occurred_at__month') }} IS NULL").refs
    assert (ref.kind, ref.name, ref.entity_path, ref.grain) == (
        "time_dimension",
        "occurred_at",
        ("events",),
        "month",
    )


# ─── substitution ─────────────────────────────────────────────────────────────────────────

SUBSTITUTED = {
    "duckdb": "accounts.plan ILIKE 'ent%' AND DATE_TRUNC('MONTH', events.occurred_at) >= CAST('2026-01-01' AS DATE) AND events.account_id IN (1, 2)",
    "postgres": "accounts.plan ILIKE 'ent%' AND DATE_TRUNC('MONTH', events.occurred_at) >= CAST('2026-01-01' AS DATE) AND events.account_id IN (1, 2)",
    "mysql": "LOWER(accounts.plan) LIKE LOWER('ent%') AND STR_TO_DATE(CONCAT(YEAR(events.occurred_at), ' ', MONTH(events.occurred_at), ' 1'), '%Y %c %e') >= CAST('2026-01-01' AS DATE) AND events.account_id IN (1, 2)",
    "bigquery": "LOWER(accounts.plan) LIKE LOWER('ent%') AND DATE_TRUNC(events.occurred_at, MONTH) >= CAST('2026-01-01' AS DATE) AND events.account_id IN (1, 2)",
    "snowflake": "accounts.plan ILIKE 'ent%' AND DATE_TRUNC('MONTH', events.occurred_at) >= CAST('2026-01-01' AS DATE) AND events.account_id IN (1, 2)",
}  # fmt: skip


@pytest.mark.parametrize("dialect", DIALECTS)
def test_substitution_renders_the_expected_sql_per_dialect(dialect: str) -> None:
    """Placeholders become the resolved expressions and sqlglot transpiles the rest."""
    parsed = parse_where(
        PLAN + " ILIKE 'ent%' AND " + MONTH + " >= DATE '2026-01-01' AND " + ACCOUNT + " IN (1, 2)"
    )
    columns = {
        "__tally_ref_0": exp.column("plan", table="accounts"),
        "__tally_ref_1": sqlglot.parse_one("DATE_TRUNC('month', events.occurred_at)"),
        "__tally_ref_2": exp.column("account_id", table="events"),
    }
    assert substitute(parsed, columns).sql(dialect=dialect) == SUBSTITUTED[dialect]


def test_substitution_parenthesises_compound_expressions() -> None:
    """A replacement such as a + b keeps its meaning next to a stronger operator."""
    parsed = parse_where(ACCOUNT + " * 2 > 10")
    result = substitute(parsed, {"__tally_ref_0": sqlglot.parse_one("a + b")})
    assert result.sql() == "(a + b) * 2 > 10"


def test_substitution_leaves_the_parsed_tree_untouched() -> None:
    """The parsed filter can be substituted again (it is cached per release by the compiler)."""
    parsed = parse_where(PLAN + " = 'x' OR " + PLAN + " = 'y'")
    before = parsed.expression.sql()
    first = substitute(parsed, {"__tally_ref_0": exp.column("plan", table="a")})
    second = substitute(parsed, {"__tally_ref_0": exp.column("tier", table="b")})
    assert parsed.expression.sql() == before
    assert first.sql() == "a.plan = 'x' OR a.plan = 'y'"
    assert second.sql() == "b.tier = 'x' OR b.tier = 'y'"


def test_substitution_without_an_expression_for_an_item_is_a_compile_error() -> None:
    """A placeholder the compiler did not resolve is a bug, never silently left in SQL."""
    parsed = parse_where(PLAN + " = 'x' AND " + ACCOUNT + " = 1")
    with pytest.raises(CompileError, match="Entity"):
        substitute(parsed, {"__tally_ref_0": exp.column("plan")})


# ─── what the allow-list accepts ──────────────────────────────────────────────────────────

ALLOWED = [
    PLAN + " = 'pro' AND " + ACCOUNT + " != 1 OR NOT " + ACCOUNT + " <> 2",
    ACCOUNT + " < 1 OR " + ACCOUNT + " <= 2 OR " + ACCOUNT + " > 3 OR " + ACCOUNT + " >= 4",
    PLAN + " IN ('pro', 'enterprise')",
    PLAN + " NOT IN ('free')",
    ACCOUNT + " IN (-1, 2.5, NULL, TRUE)",
    MONTH + " IN (DATE '2026-01-01', TIMESTAMP '2026-02-01 00:00:00')",
    ACCOUNT + " BETWEEN 1 AND 10",
    ACCOUNT + " NOT BETWEEN 1 AND 10",
    PLAN + " IS NULL OR " + PLAN + " IS NOT NULL",
    "{{ Dimension('account__is_active') }} IS TRUE",
    PLAN + " LIKE 'ent%' OR " + PLAN + " NOT LIKE 'x%' OR " + PLAN + " ILIKE 'E%'",
    ACCOUNT + " + 1 - 2 * 3 / 4 % 5 > -" + ACCOUNT,
    "CASE WHEN " + PLAN + " = 'pro' THEN 1 WHEN " + PLAN + " = 'x' THEN 2 ELSE 0 END = 1",
    "CAST(" + ACCOUNT + " AS BIGINT) = 1 AND CAST(" + PLAN + " AS VARCHAR(20)) = 'x'",
    "CAST(" + ACCOUNT + " AS DECIMAL(10, 2)) > 1.5",
    "COALESCE(" + PLAN + ", 'none') = 'none' AND NULLIF(" + PLAN + ", '') IS NULL",
    "LOWER(" + PLAN + ") = UPPER('x') AND TRIM(" + PLAN + ") = 'x' AND LENGTH(" + PLAN + ") > 2",
    "SUBSTRING(" + PLAN + ", 1, 3) = 'ent' AND CONCAT(" + PLAN + ", '!') = 'pro!'",
    "ABS(" + ACCOUNT + ") = ROUND(" + ACCOUNT + ", 2) OR FLOOR(1.5) < CEIL(1.5)",
    "LEAST(" + ACCOUNT + ", 10) = GREATEST(" + ACCOUNT + ", 1)",
    "DATE_TRUNC('month', " + MONTH + ") = DATE '2026-01-01'",
    "EXTRACT(year FROM " + MONTH + ") = 2026",
    MONTH + " >= CURRENT_DATE - INTERVAL '30' DAY",
    MONTH + " < CURRENT_TIMESTAMP",
    "(" + PLAN + " = 'pro')",
    "TRUE",
    "{{ Dimension('account__is_active') }}",
    "COALESCE({{ Dimension('account__is_active') }}, FALSE)",
    "CAST(" + ACCOUNT + " AS BOOLEAN)",
    PLAN + " = 'it''s; DROP TABLE x; --'",
]


@pytest.mark.parametrize("template", ALLOWED)
def test_allowed_constructs_parse_and_render_in_every_dialect(template: str) -> None:
    """Everything on the allow-list is accepted and its SQL parses back in five dialects."""
    parsed = parse_where(template)
    render_everywhere(substitute(parsed, columns_for(parsed)))


def test_name_rule_and_separator_are_dbt_semantic_interfaces_own() -> None:
    """allow_list spells DSI's element-name regex and DUNDER so that filters without query
    items do not import DSI; a DSI upgrade that changes either must show up here."""
    from dbt_semantic_interfaces.naming.keywords import DUNDER as DSI_DUNDER
    from dbt_semantic_interfaces.validations.unique_valid_name import UniqueAndValidNameRule

    from semantic.compiler.where.allow_list import DUNDER, NAME_RE

    assert NAME_RE.pattern == UniqueAndValidNameRule.NAME_REGEX.pattern
    assert NAME_RE.flags == UniqueAndValidNameRule.NAME_REGEX.flags
    assert DUNDER == DSI_DUNDER


def test_a_filter_without_query_items_loads_neither_jinja_nor_dsi() -> None:
    """Jinja and DSI (~0.1 s of imports) are loaded only by a filter with {{ … }} items:
    compiling a metric without such a filter stays light (issue #19's start-up figure)."""
    probe = (
        "import sys\n"
        "from semantic.compiler.where import parse_where\n"
        "parse_where(\"CURRENT_DATE > DATE '2026-01-01'\")\n"
        "before = [m for m in ('jinja2', 'dbt_semantic_interfaces') if m in sys.modules]\n"
        "parse_where(\"{{ Dimension('account__plan') }} = 'pro'\")\n"
        "after = [m for m in ('jinja2', 'dbt_semantic_interfaces') if m in sys.modules]\n"
        "print(before, after)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "[] ['jinja2', 'dbt_semantic_interfaces']"


def test_the_allow_list_of_functions_is_exactly_the_documented_one() -> None:
    """Adding a function to filters is a reviewed change of this list."""
    assert ALLOWED_FUNCTIONS == (
        "ABS",
        "CASE",
        "CAST",
        "CEIL",
        "COALESCE",
        "CONCAT",
        "CURRENT_DATE",
        "CURRENT_TIMESTAMP",
        "DATE_TRUNC",
        "EXTRACT",
        "FLOOR",
        "GREATEST",
        "LEAST",
        "LENGTH",
        "LOWER",
        "NULLIF",
        "ROUND",
        "SUBSTRING",
        "TRIM",
        "UPPER",
    )


# ─── injection and escape attempts ────────────────────────────────────────────────────────

NOT_CALL = MSG_JINJA_NOT_CALL.format
TOO_LONG = ACCOUNT + " IN (" + "1, " * 4000 + "1)"
ATTRIBUTE = MSG_JINJA_ATTRIBUTE.format

REFUSED = [
    # SQL injection through the SQL part
    ("quote_then_drop_table", PLAN + " = ''; DROP TABLE events; --'", MSG_STACKED_STATEMENTS, ";"),
    ("stacked_statements", "1=1; DROP TABLE x", MSG_STACKED_STATEMENTS, ";"),
    ("stacked_after_an_item", PLAN + " = 'pro'; DELETE FROM accounts", MSG_STACKED_STATEMENTS, ";"),
    ("statement_alone", "DROP TABLE events", MSG_STATEMENT.format(keyword="DROP"), "DROP"),
    ("in_subquery", ACCOUNT + " IN (SELECT id FROM accounts)", MSG_SUBQUERY, "SELECT"),
    ("scalar_subquery", ACCOUNT + " = (SELECT MAX(id) FROM accounts)", MSG_SUBQUERY, "SELECT"),
    ("exists", "EXISTS (SELECT 1 FROM accounts)", MSG_SUBQUERY, "SELECT"),
    ("union", PLAN + " = 'x' UNION SELECT password FROM users", MSG_SET_OPERATION.format(keyword="UNION"), "UNION"),
    ("line_comment", PLAN + " = 'pro' -- AND deleted = false", MSG_SQL_COMMENT, "-- AND deleted = false"),
    ("block_comment", PLAN + " /* hidden */ = 'pro'", MSG_SQL_COMMENT, "/* hidden */"),
    ("comment_left_open", PLAN + " = 'pro' /* rest", MSG_SQL_SYNTAX.format(detail="a quote or a comment is not closed"), None),
    ("unknown_function", "lowr(" + PLAN + ") = 'pro'", MSG_NOT_ALLOWED.format(name="lowr"), "lowr(" + PLAN + ")"),
    ("sleep_function", "pg_sleep(10) IS NULL", MSG_NOT_ALLOWED.format(name="pg_sleep"), "pg_sleep(10)"),
    ("known_but_not_allowed_function", "REGEXP_LIKE(" + PLAN + ", 'x')", MSG_NOT_ALLOWED.format(name="REGEXP_LIKE"), "REGEXP_LIKE(" + PLAN + ", 'x')"),
    ("try_cast_is_not_cast", "TRY_CAST(" + ACCOUNT + " AS INT) = 1", MSG_NOT_ALLOWED.format(name="TRY_CAST"), ACCOUNT),
    ("bare_column", "account_id = 1", MSG_BARE_COLUMN.format(name="account_id"), "account_id"),
    ("qualified_column", "events.revenue > 0", MSG_BARE_COLUMN.format(name="events.revenue"), "events.revenue"),
    ("quoted_column", '"account_id" = 1', MSG_BARE_COLUMN.format(name='"account_id"'), '"account_id"'),
    ("bare_column_next_to_an_item", "x = 1 AND " + PLAN + " = 'x'", MSG_BARE_COLUMN.format(name="x"), "x"),
    ("spoofed_placeholder", PLAN + " = 'x' OR __tally_ref_0 = 'y'", MSG_BARE_COLUMN.format(name="__tally_ref_0"), "__tally_ref_0"),
    ("column_of_an_item", ACCOUNT + ".id = 1", MSG_BARE_COLUMN.format(name=ACCOUNT + ".id"), ACCOUNT + ".id"),
    ("item_inside_a_string", "'" + PLAN + "' = 'x'", MSG_REF_IN_STRING.format(text=PLAN), PLAN),
    ("items_run_together", PLAN + ACCOUNT + " = 1", MSG_REF_ADJACENT.format(text=PLAN), PLAN + ACCOUNT),
    ("query_parameter", ACCOUNT + " = ?", MSG_SYNTAX_NOT_ALLOWED.format(what="query parameters such as ? or :name"), None),
    ("double_pipe", PLAN + " || 'x' = 'y'", MSG_SYNTAX_NOT_ALLOWED.format(what="the || operator (use CONCAT)"), None),
    ("in_with_an_item", ACCOUNT + " IN (" + USER + ")", MSG_IN_LITERALS, ACCOUNT + " IN (" + USER),
    ("empty_in", ACCOUNT + " IN ()", MSG_IN_LITERALS, ACCOUNT),
    ("cast_to_array", "CAST(" + ACCOUNT + " AS INT[]) IS NULL", MSG_CAST_TYPE.format(type="ARRAY<INT>"), ACCOUNT),
    ("not_a_condition", ACCOUNT + " + 1", MSG_NOT_CONDITION.format(what="an arithmetic expression"), ACCOUNT + " + 1"),
    ("string_is_not_a_condition", "'pro'", MSG_NOT_CONDITION.format(what="a string"), "'pro'"),
    ("unknown_date_part", "EXTRACT(fortnight FROM " + MONTH + ") = 1", MSG_UNIT.format(unit="FORTNIGHT", function="EXTRACT"), None),
    ("syntax_error", ACCOUNT + " = = 1", MSG_SQL_SYNTAX.format(detail="incomplete expression at ="), "="),
    ("stray_closing_braces", "Dimension('account__plan') }} = 'x'", MSG_SQL_SYNTAX.format(detail="unexpected }"), "}"),
    ("too_deep", "(" * (MAX_NESTING + 1) + ACCOUNT + " = 1" + ")" * (MAX_NESTING + 1), MSG_TOO_DEEP.format(limit=MAX_NESTING), "("),
    # Jinja: statements, comments, braces
    ("jinja_if", "{% if true %}1 = 1{% endif %}", MSG_JINJA_STATEMENT, "{% if true %}"),
    ("jinja_set", "{% set x = 1 %}" + PLAN + " = 'x'", MSG_JINJA_STATEMENT, "{% set x = 1 %}"),
    ("jinja_raw", "{% raw %}account_id = 1{% endraw %}", MSG_JINJA_STATEMENT, "{% raw %}"),
    ("jinja_comment", "{# note #}" + PLAN + " = 'x'", MSG_JINJA_COMMENT, "{# note #}"),
    ("unclosed_braces", "{{ Dimension('account__plan') = 'x'", MSG_JINJA_UNCLOSED, "{{ Dimension('account__plan') = 'x'"),
    ("unknown_jinja_function", "{{ Foo('x') }} = 1", MSG_UNKNOWN_JINJA_FUNCTION.format(name="Foo", text="{{ Foo('x') }}"), "{{ Foo('x') }}"),
    # Jinja sandbox escapes
    ("dunder_class", "{{ Dimension('account__plan').__class__ }} = 1", ATTRIBUTE(name="__class__", text="{{ Dimension('account__plan').__class__ }}"), "{{ Dimension('account__plan').__class__ }}"),
    ("subclasses_walk", "{{ Dimension('account__plan').__class__.__mro__[1].__subclasses__() }}", ATTRIBUTE(name="__class__", text="{{ Dimension('account__plan').__class__.__mro__[1].__subclasses__() }}"), None),
    ("method_globals", "{{ Dimension('account__plan').grain.__globals__ }}", ATTRIBUTE(name="__globals__", text="{{ Dimension('account__plan').grain.__globals__ }}"), None),
    ("string_class", "{{ ''.__class__ }}", ATTRIBUTE(name="__class__", text="{{ ''.__class__ }}"), "{{ ''.__class__ }}"),
    ("cycler_globals", "{{ cycler.__init__.__globals__.os.popen('id').read() }}", ATTRIBUTE(name="__init__", text="{{ cycler.__init__.__globals__.os.popen('id').read() }}"), None),
    ("attr_filter", "{{ Dimension('account__plan') | attr('__class__') }}", NOT_CALL(text="{{ Dimension('account__plan') | attr('__class__') }}"), None),
    ("config", "{{ config }}", NOT_CALL(text="{{ config }}"), "{{ config }}"),
    ("self", "{{ self }}", NOT_CALL(text="{{ self }}"), "{{ self }}"),
    ("self_context", "{{ self._TemplateReference__context }}", ATTRIBUTE(name="_TemplateReference__context", text="{{ self._TemplateReference__context }}"), None),
    ("lambda", "{{ (lambda: 1)() }}", MSG_JINJA_SYNTAX.format(text="{{ (lambda: 1)() }}", detail="expected token ')', got ':'"), "{{ (lambda: 1)() }}"),
    ("python_import", "{{ __import__('os').system('id') }}", MSG_UNKNOWN_JINJA_FUNCTION.format(name="__import__", text="{{ __import__('os').system('id') }}"), None),
    ("python_arithmetic", "{{ 7 * 7 }} = 49", NOT_CALL(text="{{ 7 * 7 }}"), "{{ 7 * 7 }}"),
    ("computed_name", "{{ Dimension('account' ~ '__plan') }} = 'x'", MSG_JINJA_ARGUMENT_VALUE.format(function="Dimension"), None),
    ("splatted_arguments", "{{ Dimension(*['account__plan']) }} = 'x'", MSG_JINJA_ARGUMENT_VALUE.format(function="Dimension"), None),
    ("unsupported_method", "{{ Dimension('account__plan').lower() }} = 'x'", MSG_JINJA_METHOD.format(name="lower", text="{{ Dimension('account__plan').lower() }}"), None),
    ("method_on_entity", "{{ Entity('account').grain('day') }} = 1", MSG_JINJA_METHOD.format(name="grain", text="{{ Entity('account').grain('day') }}"), None),
    ("descending", "{{ Dimension('account__plan').descending(True) }} = 'x'", MSG_JINJA_DESCENDING.format(text="{{ Dimension('account__plan').descending(True) }}"), None),
    # wrong arguments, checked by DSI's signatures and factories
    ("missing_argument", "{{ Dimension() }} = 1", MSG_JINJA_ARGUMENTS.format(function="Dimension", detail="missing a required argument: 'name'"), "{{ Dimension() }}"),
    ("unknown_keyword", "{{ Dimension('account__plan', foo='x') }} = 1", MSG_JINJA_ARGUMENTS.format(function="Dimension", detail="got an unexpected keyword argument 'foo'"), None),
    ("entity_path_as_string", "{{ Dimension('account__plan', entity_path='user') }} = 1", MSG_JINJA_LIST_EXPECTED.format(param="entity_path", function="Dimension"), None),
    ("dimension_without_entity", "{{ Dimension('plan') }} = 1", MSG_BAD_ITEM.format(text="{{ Dimension('plan') }}", detail="Name is in an incorrect format: 'plan'. It should be of the form: <primary entity name>__<dimension_name>"), "{{ Dimension('plan') }}"),
    ("metric_without_group_by", "{{ Metric('revenue') }} > 1", MSG_BAD_ITEM.format(text="{{ Metric('revenue') }}", detail="`group_by` parameter is required for Metric in where filter. This is needed to determine 1) the granularity to aggregate the metric to and 2) how to join the metric to the rest of the query."), None),
    ("unknown_grain", "{{ TimeDimension('metric_time', 'fortnight') }} > 1", MSG_UNKNOWN_GRAIN.format(grain="fortnight", text="{{ TimeDimension('metric_time', 'fortnight') }}"), None),
    ("unknown_date_part_in_item", "{{ Dimension('metric_time').date_part('weeks') }} = 1", MSG_UNKNOWN_DATE_PART.format(date_part="weeks", text="{{ Dimension('metric_time').date_part('weeks') }}"), None),
    ("invalid_name", "{{ Dimension('account__plan', entity_path=['user__x']) }} = 1", MSG_BAD_NAME.format(name="user__x", text="{{ Dimension('account__plan', entity_path=['user__x']) }}"), None),
    # unicode tricks and control characters
    ("fullwidth_quotes", PLAN + " = ＇pro＇", MSG_CONFUSABLE_QUOTE.format(char="＇", name="FULLWIDTH APOSTROPHE"), "＇"),
    ("curly_quotes", PLAN + " = ‘pro’", MSG_CONFUSABLE_QUOTE.format(char="‘", name="LEFT SINGLE QUOTATION MARK"), "‘"),
    ("zero_width_space_in_an_item", "{{ Dimension('account__pl\u200ban') }} = 'x'", MSG_BAD_CHARACTER.format(codepoint="U+200B", name="ZERO WIDTH SPACE"), "\u200b"),
    ("zero_width_space_in_a_column", "acc\u200bount_id = 1", MSG_BAD_CHARACTER.format(codepoint="U+200B", name="ZERO WIDTH SPACE"), "\u200b"),
    ("bidi_override_in_a_string", PLAN + " = 'pro\u202e'", MSG_BAD_CHARACTER.format(codepoint="U+202E", name="RIGHT-TO-LEFT OVERRIDE"), "\u202e"),
    ("nul_byte", PLAN + " = 'pro'\x00", MSG_BAD_CHARACTER.format(codepoint="U+0000", name="control character"), "\x00"),
    ("nul_byte_in_a_string", PLAN + " = 'pro\x00; DROP TABLE x'", MSG_BAD_CHARACTER.format(codepoint="U+0000", name="control character"), "\x00"),
    # sizes
    ("empty", "", MSG_EMPTY, None),
    ("whitespace_only", " \n\t ", MSG_EMPTY, None),
    ("too_long", TOO_LONG, MSG_TOO_LONG.format(length=len(TOO_LONG), limit=MAX_FILTER_CHARS), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("template", "message", "points_at"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_unsafe_or_malformed_filters_are_refused_precisely(
    template: str, message: str, points_at: str | None
) -> None:
    """Each injection or escape attempt is a bad_where error naming the offending text."""
    error = refuse(template)
    assert error.message == message
    assert error.hint
    assert error.location is not None and error.location.startswith("where[0]")
    if points_at is not None:
        assert span_text(template, error) == points_at


def test_locations_start_with_the_given_field_path() -> None:
    """A metric's second filter reports filter[1]:start-end."""
    template = PLAN + " = 'x' OR account_id = 1"
    error = refuse(template, location="filter[1]")
    start = template.index("account_id")
    assert error.location == f"filter[1]:{start}-{start + len('account_id')}"


def test_near_misses_get_a_did_you_mean_hint() -> None:
    """lowr( suggests LOWER, Dimenson( suggests Dimension(), NOW suggests CURRENT_TIMESTAMP."""
    assert refuse("lowr(" + PLAN + ") = 'x'").hint == "did you mean LOWER?"
    assert refuse("{{ Dimenson('account__plan') }} = 'x'").hint == "did you mean Dimension()?"
    assert refuse(MONTH + " < NOW()").hint == "did you mean CURRENT_TIMESTAMP?"
    assert refuse("{{ TimeDimension('metric_time', 'mnth') }} = 1").hint == "did you mean 'month'?"


def test_bare_columns_are_pointed_to_the_semantic_layer() -> None:
    """The hint rewrites events.revenue as {{ Dimension('events__revenue') }}."""
    error = refuse("events.revenue > 0")
    assert (
        error.hint
        == "refer to data through the semantic layer, e.g. {{ Dimension('events__revenue') }}"
    )
    error = refuse("account_id = 1")
    assert error.hint == (
        "refer to data through the semantic layer, e.g. {{ Dimension('<entity>__account_id') }}"
    )


def test_the_length_limit_is_just_under_ten_thousand_characters() -> None:
    """9,999 characters parse; 10,000 are refused with the limit in the message."""
    head = ACCOUNT + " IN ("
    values = "1, " * ((MAX_FILTER_CHARS - len(head)) // 3)
    template = (head + values)[: MAX_FILTER_CHARS - 3].rstrip(", ") + ")"
    template += " " * (MAX_FILTER_CHARS - 1 - len(template))
    assert len(template) == MAX_FILTER_CHARS - 1
    parse_where(template)
    error = refuse(template + " ")
    assert error.message == "filter is 10,000 characters long; filters must be shorter than 10,000"


NESTED = {
    "parentheses": lambda n: "(" * (n - 3) + ACCOUNT + " = 1" + ")" * (n - 3),
    "not": lambda n: "NOT " * (n - 2) + "{{ Dimension('account__is_active') }}",
    "functions": lambda n: "LOWER(" * (n - 3) + PLAN + ")" * (n - 3) + " = 'x'",
    "case": lambda n: "CASE WHEN TRUE THEN " * ((n - 3) // 2) + ACCOUNT + " END" * ((n - 3) // 2) + " = 1",
    "arithmetic": lambda n: "(1 + " * ((n - 3) // 2) + ACCOUNT + ")" * ((n - 3) // 2) + " = 1",
    "and_or": lambda n: (PLAN + " = 'a' AND (" + ACCOUNT + " = 1 OR (") * ((n - 3) // 4) + "TRUE" + "))" * ((n - 3) // 4),
}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_filters_at_the_nesting_limit_render_inside_a_query_in_every_dialect(shape: str) -> None:
    """The limit leaves sqlglot room to parse and generate the whole query (no RecursionError)."""
    parsed = parse_where(NESTED[shape](MAX_NESTING))
    condition = substitute(parsed, columns_for(parsed))
    inner = exp.select("x").from_("t").where(condition)
    query = exp.select("*").from_(inner.subquery("s")).where(condition.copy())
    for dialect in DIALECTS:
        sqlglot.parse_one(query.sql(dialect=dialect, pretty=True), read=dialect)


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_filters_past_the_nesting_limit_are_refused(shape: str) -> None:
    """One level more (or a lot more) is a bad_where error, never a RecursionError."""
    for depth in (MAX_NESTING + 3, 400):
        error = refuse(NESTED[shape](depth))
        assert error.message == MSG_TOO_DEEP.format(limit=MAX_NESTING)


def test_long_chains_of_one_operator_are_not_nesting() -> None:
    """a OR b OR … with hundreds of terms is flat for sqlglot, so it is allowed."""
    ors = " OR ".join(f"{ACCOUNT} = {i}" for i in range(300))
    sums = ACCOUNT + " = " + " + ".join(str(i) for i in range(1500))
    for template in (ors, sums):
        parsed = parse_where(template)
        render_everywhere(substitute(parsed, columns_for(parsed)))


# ─── properties ───────────────────────────────────────────────────────────────────────────

ITEMS = [
    PLAN,
    "{{ Dimension('user__account__plan') }}",
    "{{ Dimension('account__plan', entity_path=['user']) }}",
    MONTH,
    "{{ TimeDimension('events__occurred_at', grain='week') }}",
    "{{ Dimension('metric_time').grain('day') }}",
    "{{ Dimension('metric_time').date_part('year') }}",
    ACCOUNT,
    "{{ Entity('user', entity_path=['account']) }}",
    "{{ Metric('revenue', group_by=['account']) }}",
]
JINJA_DELIMITERS = ("{{", "{%", "{#")
SAFE_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs")), max_size=12).filter(
    lambda text: not any(d in text for d in JINJA_DELIMITERS)
)
LITERALS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.decimals("-1000", "1000", places=2, allow_nan=False, allow_infinity=False).map(str),
    SAFE_TEXT.map(lambda text: exp.Literal.string(text).sql()),
    st.sampled_from(["DATE '2026-01-01'", "TIMESTAMP '2026-01-01 12:00:00'", "NULL", "TRUE"]),
)


@st.composite
def values(draw: st.DrawFn, depth: int = 2) -> str:
    """A value expression: an item, a literal, or allowed operators and functions of values."""
    if depth == 0 or draw(st.booleans()):
        return draw(st.one_of(st.sampled_from(ITEMS), LITERALS))
    left, right = draw(values(depth - 1)), draw(values(depth - 1))
    shape = draw(st.sampled_from(["op", "neg", "func1", "func2", "cast", "case"]))
    if shape == "op":
        return f"({left} {draw(st.sampled_from(['+', '-', '*', '/', '%']))} {right})"
    if shape == "neg":
        return f"-({left})"
    if shape == "func1":
        return f"{draw(st.sampled_from(['LOWER', 'UPPER', 'TRIM', 'LENGTH', 'ABS', 'FLOOR', 'CEIL']))}({left})"
    if shape == "func2":
        return f"{draw(st.sampled_from(['COALESCE', 'NULLIF', 'LEAST', 'GREATEST', 'CONCAT', 'ROUND']))}({left}, {right})"
    if shape == "cast":
        return f"CAST({left} AS {draw(st.sampled_from(['INT', 'BIGINT', 'VARCHAR', 'DATE', 'DECIMAL(10, 2)']))})"
    return f"CASE WHEN {left} = {right} THEN {left} ELSE {right} END"


@st.composite
def conditions(draw: st.DrawFn, depth: int = 3) -> str:
    """A condition: comparisons and predicates of values, joined by AND/OR/NOT."""
    if depth == 0 or draw(st.booleans()):
        value = draw(values())
        shape = draw(st.sampled_from(["cmp", "in", "between", "null", "like"]))
        if shape == "cmp":
            return f"{value} {draw(st.sampled_from(['=', '!=', '<>', '<', '<=', '>', '>=']))} {draw(values())}"
        if shape == "in":
            listed = draw(st.lists(LITERALS, min_size=1, max_size=4))
            return f"{value} {draw(st.sampled_from(['IN', 'NOT IN']))} ({', '.join(listed)})"
        if shape == "between":
            return f"{value} BETWEEN {draw(LITERALS)} AND {draw(LITERALS)}"
        if shape == "null":
            return f"{value} {draw(st.sampled_from(['IS NULL', 'IS NOT NULL']))}"
        pattern = exp.Literal.string(draw(SAFE_TEXT)).sql()
        return f"{value} {draw(st.sampled_from(['LIKE', 'NOT LIKE', 'ILIKE']))} {pattern}"
    shape = draw(st.sampled_from(["and", "or", "not", "paren"]))
    left = draw(conditions(depth - 1))
    if shape == "not":
        return f"NOT ({left})"
    if shape == "paren":
        return f"({left})"
    return f"{left} {shape.upper()} {draw(conditions(depth - 1))}"


@settings(max_examples=200, deadline=None)
@given(conditions())
def test_random_safe_filters_parse_and_render_in_every_dialect(template: str) -> None:
    """Any filter built from items, literals and allowed operators parses and transpiles."""
    parsed = parse_where(template)
    render_everywhere(substitute(parsed, columns_for(parsed)))


def assert_literal_round_trips(value: str) -> None:
    """A filter comparing an item with `value` renders, per dialect, to exactly that literal."""
    literal = exp.Literal.string(value).sql()
    parsed = parse_where(PLAN + " = " + literal)
    condition = substitute(parsed, {"__tally_ref_0": exp.column("plan", table="a")})
    for dialect in DIALECTS:
        back = sqlglot.parse_one(condition.sql(dialect=dialect), read=dialect)
        assert isinstance(back, exp.EQ)
        assert isinstance(back.expression, exp.Literal) and back.expression.is_string
        assert back.expression.this == value
        assert back.this.sql() == "a.plan"


@settings(max_examples=200, deadline=None)
@given(SAFE_TEXT)
def test_string_literals_cannot_break_out_in_any_dialect(value: str) -> None:
    """Whatever a string holds, each dialect's SQL parses back to that one literal."""
    assert_literal_round_trips(value)


@pytest.mark.parametrize(
    "value",
    ["it's", "'; DROP TABLE events; --", "a\\", "\\'; DROP TABLE x; --", "x\ny", '"', "$$x$$"],
)
def test_tricky_string_literals_round_trip_in_every_dialect(value: str) -> None:
    """Quotes, backslashes and comment markers inside a string stay inside it."""
    assert_literal_round_trips(value)


FRAGMENTS = [
    "{{ ", " }}", "{{", "}}", "{%", "%}", "{#", "#}", "Dimension(", "TimeDimension(", "Entity(",
    "Metric(", "'account__plan'", "'metric_time'", "'month'", ")", "(", ", ", " = ", " AND ",
    " OR ", "NOT ", "'x'", "1", "-", "+", "*", "SELECT ", "UNION ", "DROP ", "--", "/*", "*/",
    ";", "lower(", "lowr(", ".grain('month')", ".date_part('year')", ".descending(True)",
    "entity_path=['user']", "group_by=['account']", "grain=", "IN (", "BETWEEN 1 AND 2",
    "IS NULL", "CAST(", " AS INT)", "INTERVAL '1' DAY", "CASE WHEN ", " THEN ", " END",
    "EXTRACT(year FROM ", "DATE_TRUNC('month', ", "__tally_ref_0", ".", "[", "]", "|", "~", "?",
    ":x", "@x", "$1", "＇", "`", "\n", "||", "EXISTS ", "\\", "\x00", "\u200b", "'", '"',
    "self", "config", "__class__", "lambda", "TRUNCATE(", "DATE '2026-01-01'", "x",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(max_size=200), st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("".join))
)
def test_random_text_only_ever_raises_query_error(template: str) -> None:
    """No input makes the parser raise anything but QueryError (never a 500)."""
    try:
        parse_where(template)
    except QueryError as error:
        assert error.code == "bad_where"
        assert error.message and error.hint


# ─── snapshots of user-facing texts ───────────────────────────────────────────────────────

TEMPLATES = {
    "MSG_NOT_TEXT": "a filter must be text, not {type}",
    "MSG_EMPTY": "empty filter",
    "HINT_EMPTY": "write a condition such as {example}, or leave the filter out",
    "MSG_TOO_LONG": "filter is {length:,} characters long; filters must be shorter than {limit:,}",
    "HINT_TOO_LONG": "split it into several filters (they are combined with AND)",
    "MSG_BAD_CHARACTER": "character {codepoint} ({name}) is not allowed in filters",
    "HINT_BAD_CHARACTER": "remove it; invisible and control characters usually come from copy and paste",
    "MSG_CONFUSABLE_QUOTE": "{char} ({name}) is not a SQL quote",
    "HINT_CONFUSABLE_QUOTE": "write strings in ASCII single quotes, e.g. {example}",
    "MSG_JINJA_STATEMENT": "Jinja statements ({% … %}) are not allowed in filters",
    "MSG_JINJA_COMMENT": "Jinja comments ({# … #}) are not allowed in filters",
    "HINT_JINJA_ITEMS": "use only {{ Dimension('…') }}, {{ TimeDimension('…') }}, {{ Entity('…') }} and {{ Metric('…', group_by=['…']) }} between double braces",
    "MSG_JINJA_UNCLOSED": "'{{' is not closed by '}}'",
    "HINT_JINJA_UNCLOSED": "close the item with '}}', e.g. {{ Dimension('account__plan') }}",
    "MSG_JINJA_SYNTAX": "invalid Jinja in {text}: {detail}",
    "MSG_JINJA_MISMATCH": "the {{ … }} items of the filter could not be read consistently",
    "MSG_JINJA_NOT_CALL": "{text} is not a query item",
    "MSG_UNKNOWN_JINJA_FUNCTION": "unknown function {name}() in {text}",
    "MSG_JINJA_ATTRIBUTE": "attribute {name} is not allowed in {text}",
    "MSG_JINJA_METHOD": "method .{name}() is not allowed in {text}",
    "HINT_JINJA_METHOD": "only Dimension(…).grain('month') and Dimension(…).date_part('year') can follow an item",
    "MSG_JINJA_DESCENDING": "descending is not allowed in filters: {text}",
    "HINT_JINJA_DESCENDING": "sort with order_by (e.g. --order-by -metric_time) instead",
    "MSG_JINJA_ARGUMENT_VALUE": "arguments of {function}() must be quoted names or lists of quoted names",
    "MSG_JINJA_ARGUMENTS": "wrong arguments to {function}(): {detail}",
    "MSG_JINJA_LIST_EXPECTED": "{param} of {function}() must be a list of names, e.g. {param}=['user']",
    "MSG_JINJA_NAME_EXPECTED": "{param} of {function}() must be a quoted name, not a list",
    "HINT_USAGE": "usage: {usage}",
    "MSG_BAD_NAME": "{name!r} is not a valid name in {text}",
    "HINT_BAD_NAME": "names are lowercase letters, digits and single underscores; '__' joins the entity path to the name, as in 'account__plan'",
    "MSG_UNKNOWN_GRAIN": "unknown time grain {grain!r} in {text}",
    "MSG_UNKNOWN_DATE_PART": "unknown date part {date_part!r} in {text}",
    "HINT_CHOICES": "choose one of: {choices}",
    "MSG_BAD_ITEM": "{text} is not a valid query item: {detail}",
    "HINT_BAD_ITEM": "e.g. {example}",
    "MSG_SQL_SYNTAX": "could not parse the filter as SQL: {detail}",
    "DETAIL_UNEXPECTED": "unexpected {text}",
    "DETAIL_INCOMPLETE": "incomplete expression at {text}",
    "DETAIL_MISSING_PAREN": "missing ')'",
    "DETAIL_UNTOKENIZABLE": "a quote or a comment is not closed",
    "HINT_SQL_SYNTAX": "a filter is one SQL condition, e.g. {example}",
    "MSG_STACKED_STATEMENTS": "a filter is a single condition; ';' and further statements are not allowed",
    "MSG_STATEMENT": "SQL statements ({keyword}) are not allowed in filters",
    "MSG_SQL_COMMENT": "SQL comments are not allowed in filters",
    "HINT_SQL_COMMENT": "remove the comment; describe the filter in the metric's description instead",
    "MSG_SUBQUERY": "subqueries are not allowed in filters",
    "HINT_SUBQUERY": "filter on a dimension, or on another metric with {{ Metric('…', group_by=['…']) }}",
    "MSG_SET_OPERATION": "set operations ({keyword}) are not allowed in filters",
    "MSG_BARE_COLUMN": "column {name} is not allowed in filters",
    "HINT_BARE_COLUMN": "refer to data through the semantic layer, e.g. {suggestion}",
    "MSG_REF_IN_STRING": "{text} is inside a quoted string",
    "HINT_REF_IN_STRING": "remove the quotes around it; compare it with a string instead, e.g. {example}",
    "MSG_REF_ADJACENT": "{text} runs into the text next to it",
    "HINT_REF_ADJACENT": "put a space or an operator between the item and its neighbours",
    "MSG_NOT_ALLOWED": "function {name} is not allowed in filters",
    "HINT_DID_YOU_MEAN": "did you mean {suggestion}?",
    "HINT_ALLOWED_FUNCTIONS": "allowed functions: {names}",
    "MSG_SYNTAX_NOT_ALLOWED": "filters cannot contain {what}",
    "HINT_SYNTAX_NOT_ALLOWED": "filters allow comparisons, AND/OR/NOT, IN, BETWEEN, IS NULL, LIKE, arithmetic, CASE, CAST and a few functions",
    "MSG_CAST_TYPE": "CAST to {type} is not allowed in filters",
    "HINT_CAST_TYPE": "cast to one of: {types}",
    "MSG_IN_LITERALS": "IN takes a list of literal values",
    "HINT_IN_LITERALS": "e.g. {{ Dimension('account__plan') }} IN ('pro', 'enterprise')",
    "MSG_INTERVAL": "INTERVAL takes a literal, e.g. INTERVAL '7' DAY",
    "HINT_INTERVAL": "e.g. {{ TimeDimension('metric_time', 'day') }} >= CURRENT_DATE - INTERVAL '7' DAY",
    "MSG_UNIT": "unknown date part {unit} in {function}",
    "MSG_NOT_CONDITION": "the filter is {what}, not a condition",
    "HINT_NOT_CONDITION": "compare it with something, e.g. {example}",
    "MSG_TOO_DEEP": "filter is nested too deeply (more than {limit} levels)",
    "HINT_TOO_DEEP": "flatten it: chain conditions with AND/OR, or list values with IN (…)",
}  # fmt: skip


def test_message_templates_match_their_snapshots() -> None:
    """Every MSG_/HINT_/DETAIL_ constant is snapshotted; changing a text is a reviewed diff."""
    constants = {
        name: getattr(where, name)
        for name in dir(where)
        if name.startswith(("MSG_", "HINT_", "DETAIL_"))
    }
    assert constants == TEMPLATES


RENDERED = [
    (
        "lowr(" + PLAN + ") = 'pro'",
        [
            "where[0]:0-38: error[bad_where]: function lowr is not allowed in filters",
            "  hint: did you mean LOWER?",
        ],
    ),
    (
        "account_id = 1",
        [
            "where[0]:0-10: error[bad_where]: column account_id is not allowed in filters",
            "  hint: refer to data through the semantic layer, e.g. {{ Dimension('<entity>__account_id') }}",
        ],
    ),
    (
        PLAN + " = ''; DROP TABLE events; --'",
        [
            "where[0]:37-38: error[bad_where]: a filter is a single condition; ';' and further statements are not allowed",
            "  hint: a filter is one SQL condition, e.g. {{ Dimension('account__plan') }} = 'enterprise'",
        ],
    ),
    (
        "{{ Dimension('x').__class__ }} = 1",
        [
            "where[0]:0-30: error[bad_where]: attribute __class__ is not allowed in {{ Dimension('x').__class__ }}",
            "  hint: only Dimension(…).grain('month') and Dimension(…).date_part('year') can follow an item",
        ],
    ),
    (
        "{{ Foo('x') }} = 1",
        [
            "where[0]:0-14: error[bad_where]: unknown function Foo() in {{ Foo('x') }}",
            "  hint: use only {{ Dimension('…') }}, {{ TimeDimension('…') }}, {{ Entity('…') }} and {{ Metric('…', group_by=['…']) }} between double braces",
        ],
    ),
    (
        ACCOUNT + " IN (SELECT id FROM accounts)",
        [
            "where[0]:28-34: error[bad_where]: subqueries are not allowed in filters",
            "  hint: filter on a dimension, or on another metric with {{ Metric('…', group_by=['…']) }}",
        ],
    ),
    (
        "",
        [
            "where[0]: error[bad_where]: empty filter",
            "  hint: write a condition such as {{ Dimension('account__plan') }} = 'enterprise', or leave the filter out",
        ],
    ),
    (
        "{{ Dimension('plan') }} = 'x'",
        [
            "where[0]:0-23: error[bad_where]: {{ Dimension('plan') }} is not a valid query item: Name is in an incorrect format: 'plan'. It should be of the form: <primary entity name>__<dimension_name>",
            "  hint: e.g. {{ Dimension('account__plan') }}",
        ],
    ),
    (
        "{{ TimeDimension('metric_time', 'fortnight') }} > '2026-01-01'",
        [
            "where[0]:0-47: error[bad_where]: unknown time grain 'fortnight' in {{ TimeDimension('metric_time', 'fortnight') }}",
            "  hint: choose one of: nanosecond, microsecond, millisecond, second, minute, hour, day, week, month, quarter, year",
        ],
    ),
    (
        "CAST(" + ACCOUNT + " AS JSON) IS NULL",
        [
            "where[0]:5-28: error[bad_where]: CAST to JSON is not allowed in filters",
            "  hint: cast to one of: BIGINT, BOOLEAN, CHAR, DATE, DATETIME, DECIMAL, DOUBLE, FLOAT, INT, SMALLINT, TEXT, TIME, TIMESTAMP, TIMESTAMPTZ, TINYINT, VARCHAR",
        ],
    ),
]


@pytest.mark.parametrize(("template", "lines"), RENDERED)
def test_rendered_errors_match_their_snapshots(template: str, lines: list[str]) -> None:
    """The CLI rendering of representative errors, word for word."""
    assert refuse(template).cli_lines() == lines


# ─── guards ───────────────────────────────────────────────────────────────────────────────


def test_module_imports_without_django() -> None:
    """semantic.compiler.where needs no settings and no ORM (STYLE rule 4, as tests/guards)."""
    script = (
        "import os, sys; os.environ.pop('DJANGO_SETTINGS_MODULE', None);"
        "import semantic.compiler.where;"
        "print(','.join(sorted(m for m in sys.modules if m == 'django.db' or m.startswith('django.db.'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_docstring_examples_pass() -> None:
    """The Example: sections of parse_where and substitute run as written."""
    result = doctest.testmod(where, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted >= 4


def test_refs_and_results_are_frozen_values() -> None:
    """QueryItemRef and ParsedWhere are immutable, so they can be cached and shared."""
    parsed = parse_where(PLAN + " = 'x'")
    with pytest.raises(AttributeError):
        parsed.refs[0].name = "tier"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        parsed.template = ""  # type: ignore[misc]
    assert isinstance(parsed.refs[0], QueryItemRef)


def test_a_filter_is_parsed_once_and_its_shared_tree_is_never_changed() -> None:
    """Each filter text is parsed once per process (compile speed, issue #16): the same
    ParsedWhere comes back, substitute() binds a copy, and the shared tree stays as parsed."""
    text = "{{ Dimension('account__plan') }} = 'pro' AND {{ Entity('account') }} > 1"
    parsed = parse_where(text, location="where[0]")
    before = parsed.expression.sql()
    bound = substitute(
        parsed, {ref.placeholder: exp.column(ref.name, table="a") for ref in parsed.refs}
    )
    assert bound.sql() == "a.plan = 'pro' AND a.account > 1"
    again = parse_where(text, location="where[0]")
    assert again is parsed and again.expression.sql() == before
    # Errors name the location they were asked for, whatever was cached for the text.
    with pytest.raises(QueryError) as raised:
        parse_where("{{ Dimension('plan') }} = ", location="filter[3]")
    assert raised.value.location.startswith("filter[3]")
