"""A whole parse: text checks, ``{{ … }}`` blocks, items, then SQL built and guarded."""

from __future__ import annotations

import unicodedata

from semantic.compiler.where.allow_list import (
    ALLOWED_CONTROLS,
    BAD_CATEGORIES,
    MAX_FILTER_CHARS,
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
from semantic.compiler.where.refs import Block, ParsedWhere, QueryItemRef, Segment


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
        self.check_tree(tree, {ref.placeholder for ref in refs})
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
