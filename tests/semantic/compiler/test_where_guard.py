"""semantic.compiler.where.guard and .allow_list: the SQL around the items, checked on its own."""

from __future__ import annotations

import pytest
from sqlglot import exp

from semantic.compiler.where.allow_list import ALLOWED_FUNCTIONS, FUNCTIONS
from semantic.compiler.where.guard import SqlGuard
from semantic.compiler.where.messages import (
    MSG_NOT_ALLOWED,
    MSG_STACKED_STATEMENTS,
    MSG_SUBQUERY,
)
from tally.errors import QueryError


def guard(sql: str) -> exp.Expr:
    """Runs the guard's steps on SQL that holds no items: tokens, parse, tree."""
    checker = SqlGuard(sql, "where[0]", ())
    tokens = checker.tokenize(sql)
    checker.check_tokens(sql, tokens)
    tree = checker.parse(sql, tokens)
    checker.check_tree(tree, set())
    return tree


def test_allowed_functions_are_the_names_of_the_allowed_nodes() -> None:
    """The list users see in hints is exactly the node types the guard lets through."""
    assert tuple(sorted(FUNCTIONS.values())) == ALLOWED_FUNCTIONS
    assert all(issubclass(node, exp.Expr) for node in FUNCTIONS)


def test_an_allowed_condition_passes_unchanged() -> None:
    """LOWER(...) = literal is within the allow-list."""
    assert guard("LOWER('A') = 'a'").sql() == "LOWER('A') = 'a'"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SLEEP(1) = 0", MSG_NOT_ALLOWED.format(name="SLEEP")),
        ("1 = 1; DROP TABLE t", MSG_STACKED_STATEMENTS),
        ("(SELECT 1) = 1", MSG_SUBQUERY),
    ],
)
def test_the_guard_refuses_what_is_not_a_condition(sql: str, message: str) -> None:
    """Unknown functions, stacked statements and subqueries never reach the generator."""
    with pytest.raises(QueryError) as info:
        guard(sql)
    assert (info.value.code, info.value.message) == ("bad_where", message)
