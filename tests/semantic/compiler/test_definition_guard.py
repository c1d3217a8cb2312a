"""The definition guard's allow-list: what real definitions use passes, the rest is refused
with a snapshot-pinned message and hint."""

from __future__ import annotations

import pytest

from registry.definitions.project import load_project
from semantic.compiler.definition_guard import (
    ALLOWED_FUNCTIONS,
    HINT_AGGREGATE,
    HINT_COLUMN_TABLE,
    HINT_DERIVED_COLUMN,
    HINT_FUNCTIONS,
    HINT_SUBQUERY,
    HINT_WINDOW,
    MAX_EXPR_CHARS,
    definition_expressions,
    definition_problems,
    parse_definition,
)
from tally.errors import QueryError
from tests.conftest import ROOT

ALL_FUNCTIONS = HINT_FUNCTIONS.format(names=", ".join(ALLOWED_FUNCTIONS))


def _used_today() -> list[tuple[str, str, str]]:
    """(object, path, expr) of every definition expression in fixtures/ and the conformance
    extras: all of them must keep passing."""
    found = []
    for root in (ROOT / "fixtures", ROOT / "tests" / "conformance" / "extra_metrics.yml"):
        project = load_project(root, validate=False)
        for (kind, name), obj in project.objects.items():
            for path, expr in definition_expressions(kind, obj.spec):
                found.append((f"{kind}:{name}", ".".join(map(str, path)), str(expr)))
    return found


def test_every_definition_in_the_fixtures_passes() -> None:
    used = _used_today()
    assert len(used) > 50
    for root in (ROOT / "fixtures", ROOT / "tests" / "conformance" / "extra_metrics.yml"):
        project = load_project(root, validate=False)
        for (kind, _name), obj in project.objects.items():
            assert list(definition_problems(kind, obj.spec)) == [], obj.name


@pytest.mark.parametrize(
    "expr",
    [
        "DATEDIFF('day', first_event_at, first_value_at)",
        "properties ->> '$.feature'",
        "CAST(received_at AS DATE) > CAST(occurred_at AS DATE)",
        "CASE WHEN seats < 10 THEN '1-9' WHEN seats < 50 THEN '10-49' ELSE '250+' END",
        "event_type IN ('purchase', 'plan_upgraded')",
        "churned_at IS NOT NULL",
        "accounts.seats * 2",
        "date_trunc('month', created_at) + INTERVAL '7' DAY",
        "EXTRACT(year FROM created_at)",
        "first_name || ' ' || last_name",
        "1",
    ],
)
def test_real_definition_shapes_pass(expr: str) -> None:
    parse_definition(expr, location="x", own="accounts")


@pytest.mark.parametrize(
    ("expr", "message", "hint"),
    [
        (
            "(SELECT max(email) FROM main.users)",
            "subqueries are not allowed in definition expressions: "
            "(SELECT MAX(email) FROM main.users)",
            HINT_SUBQUERY,
        ),
        (
            "id IN (SELECT account_id FROM main.invoices)",
            "subqueries are not allowed in definition expressions: "
            "id IN (SELECT account_id FROM main.invoices)",
            HINT_SUBQUERY,
        ),
        (
            "read_text('/proc/self/environ')",
            "function read_text is not allowed in definition expressions",
            ALL_FUNCTIONS,
        ),
        ("pg_read_file('/etc/passwd')", "function pg_read_file is not allowed in definition expressions", ALL_FUNCTIONS),
        ("lowr(email)", "function lowr is not allowed in definition expressions", "did you mean LOWER?"),
        ("now()",
            "function now is not allowed in definition expressions",
            "did you mean CURRENT_TIMESTAMP?",
        ),
        ("sum(amount)", "aggregate function SUM is not allowed in definition expressions", HINT_AGGREGATE),
        (
            "sum(amount) OVER (ORDER BY day)",
            "window functions (OVER) are not allowed in definition expressions",
            HINT_WINDOW,
        ),
        (
            "users.email",
            "column users.email reads another table than the model's own",
            HINT_COLUMN_TABLE.format(column="email"),
        ),
        (
            "main.accounts.seats",
            "column main.accounts.seats reads another table than the model's own",
            HINT_COLUMN_TABLE.format(column="seats"),
        ),
        (
            "amount; DROP TABLE accounts",
            "amount; DROP TABLE accounts is more than one SQL expression; ';' and statements "
            "are not allowed",
            "a definition expression is one SQL expression over the model's columns",
        ),
        ("amount /* note */", "SQL comments are not allowed in definition expressions",
         "describe the element in its description instead"),
        ("CAST(amount AS INT[])", "CAST to INT[] is not allowed in definition expressions", None),
        ("", "empty definition expression", None),
        ("x" * MAX_EXPR_CHARS, f"expression is {MAX_EXPR_CHARS:,} characters long; definitions "
         f"must be shorter than {MAX_EXPR_CHARS:,}", None),
    ],
)  # fmt: skip
def test_refusals_name_the_problem_and_the_way_out(
    expr: str, message: str, hint: str | None
) -> None:
    with pytest.raises(QueryError) as raised:
        parse_definition(expr, location="measures[0].expr", own="accounts")
    assert raised.value.code == "bad_definition"
    assert raised.value.location == "measures[0].expr"
    assert raised.value.message == message
    if hint is not None:
        assert raised.value.hint == hint
    else:
        assert raised.value.hint


def test_a_derived_expr_names_only_its_inputs() -> None:
    spec = {
        "name": "net",
        "type": "derived",
        "type_params": {
            "expr": "gross - refunds + (SELECT 1)",
            "metrics": [{"name": "gross"}, {"name": "refunds_total", "alias": "refunds"}],
        },
    }
    ((path, error),) = definition_problems("metric", spec)
    assert path == ["type_params", "expr"]
    assert error.message.startswith("subqueries are not allowed")
    spec["type_params"]["expr"] = "gross - refunds_typo"
    ((_, error),) = definition_problems("metric", spec)
    assert error.message == "refunds_typo is not an input metric of this derived metric"
    assert error.hint == HINT_DERIVED_COLUMN.format(names="gross, refunds, refunds_total")


@pytest.mark.parametrize("expr", ["x -> '$..a'", "x -> '$[1:2]'", "x -> '$[?(@.a)]'"])
def test_a_json_path_the_guard_cannot_render_is_refused_not_crashed(expr: str) -> None:
    """Bug: these JSONPath shapes raised ValueError while building the refusal message, so
    one such expression crashed validation of a proposal instead of giving an issue."""
    with pytest.raises(QueryError) as raised:
        parse_definition(expr, location="measures[0].expr", own="accounts")
    assert raised.value.code == "bad_definition"


@pytest.mark.parametrize(
    ("expr", "rendered"),
    [
        ("CAST(created_at AS TIMESTAMP)", "CAST(created_at AS TIMESTAMP)"),
        ("CAST(created_at AS DATETIME)", "CAST(created_at AS TIMESTAMP)"),
        ("TIMESTAMP '2020-01-01'", "CAST('2020-01-01' AS TIMESTAMP)"),
    ],
)
def test_casts_to_timestamp_pass_as_in_filters(expr: str, rendered: str) -> None:
    """Bug: DuckDB reads TIMESTAMP and DATETIME as TIMESTAMPNTZ, which the filters' CAST list
    lacks, so the guard refused them while its hint listed TIMESTAMP as allowed."""
    tree = parse_definition(expr, location="dimensions[0].expr", own="accounts")
    assert tree.sql("postgres") == rendered


@pytest.mark.parametrize("char", ["\u200b", "\u202e", "\x00"])
def test_invisible_and_control_characters_are_refused_as_in_filters(char: str) -> None:
    """Bug: the filter guard refuses zero-width, bidi-override and control characters; the
    definition guard accepted them (two names could look equal)."""
    with pytest.raises(QueryError) as raised:
        parse_definition(f"amount{char}", location="measures[0].expr", own="accounts")
    assert raised.value.message.startswith("character U+")
