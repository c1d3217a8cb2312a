"""The SQL guard: the text around the items is tokenized, parsed and checked node by node.

Refuses statements, comments, subqueries, set operations, bare columns and anything not in
semantic.compiler.where.allow_list, each refusal with the span of the offending text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from semantic.compiler.where.allow_list import (
    ALLOWED_FUNCTIONS,
    ARITHMETIC,
    CAST_TYPES,
    CLASS_RE,
    CONDITION_ROOTS,
    CONFUSABLE_QUOTES,
    DATA_TYPE,
    DATE_LITERAL_TYPES,
    DATE_PARTS,
    DIALECT,
    DUNDER,
    FUNCTION_ALIASES,
    FUNCTIONS,
    INTERVAL_UNITS,
    LITERALS,
    MAX_NESTING,
    NAME_RE,
    OPERATORS,
    SET_OPERATIONS,
    STATEMENTS,
    STRING_TOKENS,
    SYNTAX_NAMES,
    TRUNC_UNITS,
)
from semantic.compiler.where.base import ReaderBase
from semantic.compiler.where.messages import (
    DETAIL_INCOMPLETE,
    DETAIL_MISSING_PAREN,
    DETAIL_UNEXPECTED,
    DETAIL_UNTOKENIZABLE,
    EXAMPLE_DIMENSION,
    EXAMPLE_FILTER,
    HINT_ALLOWED_FUNCTIONS,
    HINT_BARE_COLUMN,
    HINT_CAST_TYPE,
    HINT_CHOICES,
    HINT_CONFUSABLE_QUOTE,
    HINT_DID_YOU_MEAN,
    HINT_EMPTY,
    HINT_IN_LITERALS,
    HINT_INTERVAL,
    HINT_NOT_CONDITION,
    HINT_REF_ADJACENT,
    HINT_REF_IN_STRING,
    HINT_SQL_COMMENT,
    HINT_SQL_SYNTAX,
    HINT_SUBQUERY,
    HINT_SYNTAX_NOT_ALLOWED,
    HINT_TOO_DEEP,
    MSG_BARE_COLUMN,
    MSG_CAST_TYPE,
    MSG_CONFUSABLE_QUOTE,
    MSG_EMPTY,
    MSG_IN_LITERALS,
    MSG_INTERVAL,
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
    MSG_UNIT,
)
from semantic.compiler.where.refs import clip, suggest
from tally.errors import CompileError, QueryError


class SqlGuard(ReaderBase):
    """Checks the SQL around the items: tokens, then the parsed tree against the allow-list."""

    def tokenize(self, sql: str) -> list[Token]:
        try:
            return DIALECT.tokenize(sql)
        except TokenError:
            detail = DETAIL_UNTOKENIZABLE
        except Exception as error:  # sqlglot's tokenizer raises more than TokenError
            detail = CLASS_RE.sub(r"\1", str(error)) or type(error).__name__
        raise self.fail(
            MSG_SQL_SYNTAX.format(detail=detail), HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER)
        )

    def check_tokens(self, sql: str, tokens: list[Token]) -> None:
        """Refuses what the token stream alone shows: comments, ';', keywords, nesting."""
        depth, previous_end = 0, -1
        refs = [s for s in self.segments if s.placeholder is not None]
        for index, token in enumerate(tokens):
            self.check_gap(sql, previous_end + 1, token.start)
            previous_end = token.end
            kind, span = token.token_type, (token.start, token.end + 1)
            following = tokens[index + 1].token_type if index + 1 < len(tokens) else None
            if kind == TokenType.SEMICOLON:
                raise self.fail_sql(
                    MSG_STACKED_STATEMENTS, HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER), span
                )
            if kind == TokenType.SELECT:
                raise self.fail_sql(MSG_SUBQUERY, HINT_SUBQUERY, span)
            if kind in SET_OPERATIONS:
                message = MSG_SET_OPERATION.format(keyword=token.text.upper())
                raise self.fail_sql(message, HINT_SUBQUERY, span)
            if kind in STATEMENTS and following != TokenType.L_PAREN:
                message = MSG_STATEMENT.format(keyword=token.text.upper())
                raise self.fail_sql(message, HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER), span)
            if kind == TokenType.L_PAREN:
                depth += 1
                if depth > MAX_NESTING:
                    raise self.fail_sql(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP, span)
            elif kind == TokenType.R_PAREN:
                depth -= 1
            if kind not in STRING_TOKENS:
                self.check_confusables(token)
            for segment in refs:
                if segment.sql_end <= token.start or segment.sql_start > token.end:
                    continue
                exact = (token.start, token.end + 1) == (segment.sql_start, segment.sql_end)
                if exact and kind == TokenType.VAR:
                    continue
                text = clip(self.template[segment.start : segment.end])
                if kind in STRING_TOKENS:
                    hint = HINT_REF_IN_STRING.format(example=EXAMPLE_FILTER)
                    raise self.fail(
                        MSG_REF_IN_STRING.format(text=text), hint, (segment.start, segment.end)
                    )
                raise self.fail_sql(MSG_REF_ADJACENT.format(text=text), HINT_REF_ADJACENT, span)
        self.check_gap(sql, previous_end + 1, len(sql))
        for token in tokens:
            if token.comments:  # a comment the gap scan missed: refuse rather than guess
                raise self.fail_sql(MSG_SQL_COMMENT, HINT_SQL_COMMENT, (token.start, token.end + 1))

    def check_gap(self, sql: str, start: int, end: int) -> None:
        # Between two tokens there is only whitespace or a comment, which sqlglot would keep
        # and print into the compiled SQL.
        gap = sql[start:end]
        found = [at for at in (gap.find("--"), gap.find("/*")) if at >= 0]
        if found:
            at = start + min(found)
            raise self.fail_sql(MSG_SQL_COMMENT, HINT_SQL_COMMENT, (at, start + len(gap.rstrip())))

    def check_confusables(self, token: Token) -> None:
        for offset, char in enumerate(token.text):
            if char in CONFUSABLE_QUOTES:
                at = token.start + offset
                message = MSG_CONFUSABLE_QUOTE.format(char=char, name=unicodedata.name(char, "?"))
                hint = HINT_CONFUSABLE_QUOTE.format(example=EXAMPLE_FILTER)
                raise self.fail_sql(message, hint, (at, at + 1))

    def parse(self, sql: str, tokens: list[Token]) -> exp.Expr:
        hint = HINT_SQL_SYNTAX.format(example=EXAMPLE_FILTER)
        try:
            trees = DIALECT.parser().parse_into(exp.Condition, tokens, sql)
        except ParseError as error:
            detail, span = self.describe_parse_error(sql, error)
            raise self.fail_sql(MSG_SQL_SYNTAX.format(detail=detail), hint, span) from None
        except RecursionError:
            raise self.fail(MSG_TOO_DEEP.format(limit=MAX_NESTING), HINT_TOO_DEEP) from None
        except Exception as error:  # sqlglot's parser raises more than ParseError
            detail = CLASS_RE.sub(r"\1", str(error)) or type(error).__name__
            raise self.fail(MSG_SQL_SYNTAX.format(detail=detail), hint) from None
        tree = trees[0] if trees else None
        if tree is None:
            raise self.fail(MSG_EMPTY, HINT_EMPTY.format(example=EXAMPLE_FILTER))
        return tree

    def describe_parse_error(
        self, sql: str, error: ParseError
    ) -> tuple[str, tuple[int, int] | None]:
        """sqlglot's first error, in words a user can act on, with its SQL span."""
        info = error.errors[0] if error.errors else {}
        description = str(info.get("description") or error)
        highlight = str(info.get("highlight") or "")
        line, col = info.get("line"), info.get("col")
        span: tuple[int, int] | None = None
        if isinstance(line, int) and isinstance(col, int) and line >= 1:
            # sqlglot's `col` is the 1-based column where the highlighted token ends.
            line_start = sum(len(text) + 1 for text in sql.split("\n")[: line - 1])
            end = min(len(sql), line_start + col)
            span = (max(0, end - len(highlight)), max(end, 1))
        shown = self.template_text(span, highlight) if span else repr(highlight)
        if description.startswith("Invalid expression / Unexpected token"):
            return DETAIL_UNEXPECTED.format(text=shown), span
        if description.startswith("Required keyword"):
            return DETAIL_INCOMPLETE.format(text=shown), span
        if description.startswith("Expecting )"):
            return DETAIL_MISSING_PAREN, span
        return CLASS_RE.sub(r"\1", description), span

    def node_span(self, node: exp.Expr) -> tuple[int, int] | None:
        """The SQL span of a node: its tokens' metadata, and a call's closing parenthesis."""
        starts, ends = [], []
        for child in node.walk():
            meta = child.meta
            if "start" in meta and "end" in meta:
                starts.append(meta["start"])
                ends.append(meta["end"] + 1)
        if not starts:
            return None
        end = max(ends)
        # sqlglot records where a function's name is, not where its arguments end.
        index = (
            self.token_index.get(node.meta.get("start", -1)) if isinstance(node, exp.Func) else None
        )
        if (
            index is not None
            and index + 1 < len(self.tokens)
            and self.tokens[index + 1].token_type == TokenType.L_PAREN
        ):
            depth = 0
            for token in self.tokens[index + 1 :]:
                depth += {TokenType.L_PAREN: 1, TokenType.R_PAREN: -1}.get(token.token_type, 0)
                if depth == 0:
                    end = max(end, token.end + 1)
                    break
        return min(starts), end

    def fail_node(self, node: exp.Expr, message: str, hint: str | None) -> QueryError:
        return self.fail_sql(message, hint, self.node_span(node))

    def check_tree(self, tree: exp.Expr, placeholders: set[str]) -> None:
        """Walks the tree (outer nodes first, left to right) against the allow-list."""
        stack: list[tuple[exp.Expr, int]] = [(tree, 1)]
        used: set[str] = set()
        while stack:
            node, depth = stack.pop()
            if depth > MAX_NESTING:
                message = MSG_TOO_DEEP.format(limit=MAX_NESTING)
                raise self.fail_node(node, message, HINT_TOO_DEEP)
            self.check_node(node)
            if type(node) is exp.Column:
                used.add(node.name)
            children = list(node.iter_expressions())
            for child in reversed(children):
                # A left-deep chain of one operator (a OR b OR c, 1 + 2 + 3) is generated
                # iteratively by sqlglot, so only a change of operator adds a level.
                chained = type(child) is type(node) and isinstance(node, exp.Binary)
                stack.append((child, depth if chained and child.arg_key == "this" else depth + 1))
        self.check_root(tree)
        if used != placeholders:
            raise CompileError(f"filter items without a column: {sorted(placeholders - used)}")

    def check_node(self, node: exp.Expr) -> None:
        kind = type(node)
        if isinstance(node, exp.SetOperation):
            message = MSG_SET_OPERATION.format(keyword=node.key.upper())
            raise self.fail_node(node, message, HINT_SUBQUERY)
        if isinstance(node, exp.Query | exp.Subquery | exp.Exists):
            raise self.fail_node(node, MSG_SUBQUERY, HINT_SUBQUERY)
        if type(node) is exp.Column:
            self.check_column(node)
        elif kind is exp.Identifier:
            if type(node.parent) is not exp.Column:
                raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)
        elif kind in OPERATORS or kind in LITERALS:
            self.check_operator(node)
        elif kind in FUNCTIONS:
            self.check_function(node)
        elif kind is exp.Interval:
            if type(node.this) is not exp.Literal:
                raise self.fail_node(node, MSG_INTERVAL, HINT_INTERVAL)
        elif type(node) is exp.Var:
            self.check_var(node)
        elif kind is exp.If and type(node.parent) is exp.Case:
            pass
        elif kind in (exp.DataType, exp.DataTypeParam):
            if type(node.parent) not in (exp.Cast, exp.DataType):
                raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)
        elif isinstance(node, exp.Func):
            raise self.function_not_allowed(node)
        else:
            raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)

    def not_allowed(self, node: exp.Expr) -> str:
        what = SYNTAX_NAMES.get(type(node))
        if what is None:
            what = f"`{self.template_text(self.node_span(node), node.sql())}`"
        return MSG_SYNTAX_NOT_ALLOWED.format(what=what)

    def function_not_allowed(self, node: exp.Func) -> QueryError:
        if isinstance(node, exp.Anonymous):
            name = self.template_text(own_span(node.meta), node.name)
        else:
            name = node.sql_name()
        suggestion = FUNCTION_ALIASES.get(name.upper()) or suggest(name.upper(), ALLOWED_FUNCTIONS)
        hint = (
            HINT_DID_YOU_MEAN.format(suggestion=suggestion)
            if suggestion
            else HINT_ALLOWED_FUNCTIONS.format(names=", ".join(ALLOWED_FUNCTIONS))
        )
        return self.fail_node(node, MSG_NOT_ALLOWED.format(name=name), hint)

    def check_column(self, column: exp.Column) -> None:
        identifier = column.this
        start = identifier.meta.get("start") if isinstance(identifier, exp.Identifier) else None
        if (
            isinstance(identifier, exp.Identifier)
            and not identifier.quoted
            and not column.args.get("table")
            and not column.args.get("db")
            and not column.args.get("catalog")
            and start is not None
            and self.placeholder_starts.get(start) == identifier.name
        ):
            return
        # Anything else is a name the user typed: a real column, or a spoofed placeholder.
        span = self.node_span(column)
        name = self.template_text(span, column.sql())
        parts = [part.name.lower() for part in column.parts]
        suggestion = EXAMPLE_DIMENSION
        if 1 <= len(parts) <= 2 and all(NAME_RE.match(part) for part in parts):
            dundered = DUNDER.join(parts) if len(parts) == 2 else f"<entity>__{parts[0]}"
            suggestion = "{{ Dimension('" + dundered + "') }}"
        hint = HINT_BARE_COLUMN.format(suggestion=suggestion)
        raise self.fail_sql(MSG_BARE_COLUMN.format(name=name), hint, span)

    def check_operator(self, node: exp.Expr) -> None:
        if type(node) is exp.In:
            if node.args.get("query") is not None:
                raise self.fail_node(node, MSG_SUBQUERY, HINT_SUBQUERY)
            values = node.expressions
            if (
                not values
                or node.args.get("unnest") is not None
                or node.args.get("field") is not None
                or not all(is_literal(value) for value in values)
            ):
                raise self.fail_node(node, MSG_IN_LITERALS, HINT_IN_LITERALS)
        elif type(node) is exp.Is and type(node.expression) not in (exp.Null, exp.Boolean):
            raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)

    def check_function(self, node: exp.Expr) -> None:
        if type(node) is exp.Cast:
            to = node.args.get("to")
            params = to.expressions if isinstance(to, exp.DataType) else []
            if (
                not isinstance(to, exp.DataType)
                or to.this not in CAST_TYPES
                or to.args.get("nested")
                or to.args.get("values")
                or not all(
                    type(p) is exp.DataTypeParam and type(p.this) is exp.Literal for p in params
                )
            ):
                shown = to.sql() if isinstance(to, exp.Expr) else "?"
                message = MSG_CAST_TYPE.format(type=shown)
                hint = HINT_CAST_TYPE.format(types=", ".join(sorted(set(CAST_TYPES.values()))))
                raise self.fail_node(node, message, hint)
        elif type(node) is exp.DateTrunc:
            unit = node.args.get("unit")
            value = (
                unit.name.upper() if type(unit) is exp.Literal or type(unit) is exp.Var else None
            )
            if value not in TRUNC_UNITS:
                shown = "?"
                if isinstance(unit, exp.Expr):
                    shown = self.template_text(self.node_span(unit), unit.sql())
                message = MSG_UNIT.format(unit=shown, function="DATE_TRUNC")
                choices = ", ".join(sorted(TRUNC_UNITS))
                raise self.fail_node(node, message, HINT_CHOICES.format(choices=choices))
        elif type(node) is exp.Extract and type(node.this) is exp.Literal:
            self.check_unit(node.this, "EXTRACT", DATE_PARTS)

    def check_var(self, node: exp.Var) -> None:
        parent = node.parent
        if type(parent) is exp.Extract and node.arg_key == "this":
            self.check_unit(node, "EXTRACT", DATE_PARTS)
        elif type(parent) is exp.Interval and node.arg_key == "unit":
            self.check_unit(node, "INTERVAL", INTERVAL_UNITS)
        else:
            raise self.fail_node(node, self.not_allowed(node), HINT_SYNTAX_NOT_ALLOWED)

    def check_unit(self, node: exp.Expr, function: str, units: frozenset[str]) -> None:
        if node.name.upper() not in units:
            message = MSG_UNIT.format(
                unit=self.template_text(self.node_span(node), node.name), function=function
            )
            raise self.fail_node(
                node, message, HINT_CHOICES.format(choices=", ".join(sorted(units)))
            )

    def check_root(self, tree: exp.Expr) -> None:
        root = tree
        while type(root) is exp.Paren:
            root = root.this
        kind = type(root)
        if kind in CONDITION_ROOTS:
            return
        if type(root) is exp.Cast and root.to.this == DATA_TYPE.BOOLEAN:
            return
        if kind is exp.Literal:
            what = "a string" if root.is_string else "a number"
        elif kind is exp.Null:
            what = "NULL"
        elif kind in ARITHMETIC:
            what = "an arithmetic expression"
        elif kind is exp.Interval:
            what = "an interval"
        elif kind in FUNCTIONS:
            what = f"a call to {FUNCTIONS[kind]}"
        else:
            what = "a value"
        hint = HINT_NOT_CONDITION.format(example=EXAMPLE_FILTER)
        raise self.fail_node(tree, MSG_NOT_CONDITION.format(what=what), hint)


def own_span(meta: Mapping[str, Any] | None) -> tuple[int, int] | None:
    if meta and "start" in meta and "end" in meta:
        return meta["start"], meta["end"] + 1
    return None


def is_literal(node: exp.Expr) -> bool:
    """A constant: 'x', 1, TRUE, NULL, -1, DATE '2026-01-01'."""
    kind = type(node)
    if kind in LITERALS:
        return True
    if kind is exp.Neg:
        return type(node.this) is exp.Literal and not node.this.is_string
    if type(node) is exp.Cast:
        return (
            type(node.this) is exp.Literal
            and node.this.is_string
            and isinstance(node.to, exp.DataType)
            and node.to.this in DATE_LITERAL_TYPES
        )
    return False
