"""A whole parse: text checks, ``{{ … }}`` blocks, items, then SQL built and guarded."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from sqlglot import exp

from semantic.compiler.division import real_division
from semantic.compiler.where.allow_list import (
    ALLOWED_CONTROLS,
    BAD_CATEGORIES,
    DUNDER,
    MAX_FILTER_CHARS,
    NAME_RE,
)
from semantic.compiler.where.guard import SqlGuard
from semantic.compiler.where.messages import (
    EXAMPLE_FILTER,
    HINT_BAD_CHARACTER,
    HINT_EMPTY,
    HINT_JINJA_ITEMS,
    HINT_JINJA_UNCLOSED,
    HINT_TOO_LONG,
    MSG_BAD_CHARACTER,
    MSG_EMPTY,
    MSG_JINJA_COMMENT,
    MSG_JINJA_STATEMENT,
    MSG_JINJA_UNCLOSED,
    MSG_NOT_TEXT,
    MSG_TOO_LONG,
)
from semantic.compiler.where.refs import Block, ParsedWhere, QueryItemRef, Segment, ref_key


class Reader(SqlGuard):
    """One parse of a filter, start to end: text checks, Jinja items, then the SQL guard."""

    def read(self) -> ParsedWhere:
        self.check_text()
        blocks = self.split()
        refs: list[QueryItemRef] = []
        block_placeholders: list[str] = []
        if blocks:
            # Jinja and dbt-semantic-interfaces (~0.2 s of imports) load only for a filter with
            # query items: without a `{{`, `{%` or `{#` there is nothing for Jinja to read.
            from semantic.compiler.where.items import read_items

            refs, block_placeholders = read_items(
                blocks, self.template, self.location, self.custom_grains
            )
        sql = self.build_sql(blocks, block_placeholders)
        tokens = self.tokenize(sql)
        self.tokens = tokens
        self.token_index = {token.start: index for index, token in enumerate(tokens)}
        self.check_tokens(sql, tokens)
        tree = self.parse(sql, tokens)
        tree = self.name_columns(tree, refs)
        self.check_tree(tree, {ref.placeholder for ref in refs})
        # A user's `/` means what a definition's does (DuckDB's real division, NULL for a zero
        # divisor) on every engine: the same filter selects the same rows everywhere.
        tree = real_division(tree)
        return ParsedWhere(template=self.template, expression=tree, refs=tuple(refs))

    def check_text(self) -> None:
        template = self.template
        if not isinstance(template, str):
            message = MSG_NOT_TEXT.format(type=type(template).__name__)
            raise self.fail(message, HINT_EMPTY.format(example=EXAMPLE_FILTER))
        if not template.strip():
            raise self.fail(MSG_EMPTY, HINT_EMPTY.format(example=EXAMPLE_FILTER))
        if len(template) >= MAX_FILTER_CHARS:
            raise self.fail(
                MSG_TOO_LONG.format(length=len(template), limit=MAX_FILTER_CHARS), HINT_TOO_LONG
            )
        for index, char in enumerate(template):
            if char in ALLOWED_CONTROLS or unicodedata.category(char) not in BAD_CATEGORIES:
                continue
            codepoint = f"U+{ord(char):04X}"
            name = unicodedata.name(char, "control character")
            raise self.fail(
                MSG_BAD_CHARACTER.format(codepoint=codepoint, name=name),
                HINT_BAD_CHARACTER,
                (index, index + 1),
            )

    def split(self) -> list[Block]:
        """Finds the ``{{ … }}`` blocks the way Jinja's lexer does, keeping offsets.

        Jinja's lexer reports only line numbers, so the scan is ours; ``cross_check`` then
        makes sure Jinja sees the very same expressions in the whole template.
        """
        template, index = self.template, 0
        blocks: list[Block] = []
        while True:
            found = [(template.find(d, index), d) for d in ("{{", "{%", "{#")]
            found = [(at, d) for at, d in found if at >= 0]
            if not found:
                return blocks
            start, delimiter = min(found)
            if delimiter != "{{":
                closer = "%}" if delimiter == "{%" else "#}"
                end = template.find(closer, start + 2)
                end = len(template) if end < 0 else end + 2
                message = MSG_JINJA_STATEMENT if delimiter == "{%" else MSG_JINJA_COMMENT
                raise self.fail(message, HINT_JINJA_ITEMS, (start, end))
            position, quote = start + 2, ""
            while position < len(template):
                char = template[position]
                if quote:
                    if char == "\\":
                        position += 1
                    elif char == quote:
                        quote = ""
                elif char in "'\"":
                    quote = char
                elif template.startswith("}}", position):
                    break
                position += 1
            else:
                raise self.fail(MSG_JINJA_UNCLOSED, HINT_JINJA_UNCLOSED, (start, len(template)))
            blocks.append(Block(start, position + 2, template[start : position + 2]))
            index = position + 2

    def build_sql(self, blocks: list[Block], placeholders: list[str]) -> str:
        parts: list[str] = []
        sql_at = template_at = 0

        def add(text: str, start: int, end: int, placeholder: str | None) -> None:
            nonlocal sql_at
            if not text:
                return
            self.segments.append(Segment(sql_at, sql_at + len(text), start, end, placeholder))
            if placeholder is not None:
                self.placeholder_starts[sql_at] = placeholder
            parts.append(text)
            sql_at += len(text)

        for block, placeholder in zip(blocks, placeholders, strict=True):
            add(self.template[template_at : block.start], template_at, block.start, None)
            add(placeholder, block.start, block.end, placeholder)
            template_at = block.end
        add(self.template[template_at:], template_at, len(self.template), None)
        return "".join(parts)

    def name_columns(self, tree: exp.Expr, refs: list[QueryItemRef]) -> exp.Expr:
        """A bare column named as MetricFlow names a query item's column (``metric_time__day``,
        ``revenue_instance__ds__day``: a dundered name, unquoted and unqualified) is the item
        ``{{ Dimension('<name>') }}``, as in MetricFlow, whose filters run over columns with
        those names. It becomes a placeholder like any Jinja item, so the compiler resolves it
        against the manifest (an unknown name is refused there, with suggestions); every
        other bare column is still refused by the guard. Appends to ``refs``.
        """

        items = None

        def name(node: exp.Expr) -> exp.Expr:
            nonlocal items
            if not is_item_column(node):
                return node
            if items is None:
                # Jinja and dbt-semantic-interfaces load only for a filter that names one.
                from semantic.compiler.where.items import JinjaItems

                items = JinjaItems(self.template, self.location, self.custom_grains)
            identifier = node.this
            start = identifier.meta["start"]
            span = self.node_span(node)
            template_span = self.to_template(span) if span else (0, len(self.template))
            text = "{{ Dimension('" + identifier.name.lower() + "') }}"
            _, ref = items.read_item(Block(*template_span, text), len(refs))
            # Messages name the item as the user wrote it, not the Jinja it stands for.
            ref = replace(ref, text=identifier.name)
            same = next((r for r in refs if ref_key(r) == ref_key(ref)), None)
            if same is None:
                refs.append(ref)
                same = ref
            placeholder = exp.to_identifier(same.placeholder)
            placeholder.meta["start"] = start
            # The guard accepts a column only at a start it knows holds a placeholder.
            self.placeholder_starts[start] = same.placeholder
            return exp.Column(this=placeholder)

        return tree.transform(name, copy=False)


def is_item_column(node: exp.Expr) -> bool:
    """An unquoted, unqualified column whose name is a dundered query item name."""
    if type(node) is not exp.Column or any(node.args.get(k) for k in ("table", "db", "catalog")):
        return False
    identifier = node.this
    if not isinstance(identifier, exp.Identifier) or identifier.quoted:
        return False
    if "start" not in identifier.meta:
        return False
    parts = identifier.name.lower().split(DUNDER)
    return len(parts) > 1 and all(NAME_RE.match(part) for part in parts)
