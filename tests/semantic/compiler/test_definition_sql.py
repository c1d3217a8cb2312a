"""semantic.compiler.definition_sql: reviewed definition expressions → qualified sqlglot trees."""

from __future__ import annotations

from sqlglot import exp

from semantic.compiler.definition_sql import DEFINITION_DIALECT, definition_expr, parse_definition


def test_bare_columns_are_qualified_with_the_alias() -> None:
    """Every unqualified column reads from the scan's alias; columns qualified by the model's
    own name are kept (any other qualifier is refused by the definition guard)."""
    tree = definition_expr("CASE WHEN seats < 10 THEN accounts.x ELSE seats END", "accounts")
    assert tree.sql(DEFINITION_DIALECT) == (
        "CASE WHEN accounts.seats < 10 THEN accounts.x ELSE accounts.seats END"
    )


def test_each_caller_gets_a_private_copy_of_the_cached_parse() -> None:
    """Parsed once per (expression, alias); mutating one result never leaks into the next."""
    first = definition_expr("amount", "invoices")
    first.set("table", exp.to_identifier("changed"))
    assert definition_expr("amount", "invoices").sql() == "invoices.amount"
    assert parse_definition("amount", "invoices") is parse_definition("amount", "invoices")


def test_definitions_are_read_in_the_definition_dialect() -> None:
    """DuckDB syntax in a definition (here `::` casts) renders for another warehouse."""
    tree = definition_expr("amount::DOUBLE", "invoices")
    assert tree.sql("postgres") == "CAST(invoices.amount AS DOUBLE PRECISION)"
