"""The state one parse shares: the template, its location, and the SQL ↔ template offset map.

Errors point into the template the user wrote (``where[0]:14-22``), while sqlglot reports
offsets in the SQL text with placeholders in place of the items; ``to_template`` maps back.
"""

from __future__ import annotations

from sqlglot.tokens import Token

from semantic.compiler.where.messages import ERROR_CODE
from semantic.compiler.where.refs import Segment, clip
from tally.errors import QueryError


class ReaderBase:
    """One parse: the template, where it came from, and the SQL ↔ template offset map.

    The Jinja-item and SQL-guard halves of a parse (``JinjaItems``, ``SqlGuard``) share this
    state and its error helpers; ``Reader`` puts them together.
    """

    def __init__(self, template: str, location: str, custom_grains: tuple[str, ...]) -> None:
        self.template = template
        self.location = location
        self.custom_grains = custom_grains
        # The item being read asked for date_part_name='week' (see JinjaItems.describe).
        self.week_part = False
        self.segments: list[Segment] = []
        self.placeholder_starts: dict[int, str] = {}
        self.tokens: list[Token] = []
        self.token_index: dict[int, int] = {}

    def fail(
        self, message: str, hint: str | None = None, span: tuple[int, int] | None = None
    ) -> QueryError:
        if span is None:
            return QueryError(message, code=ERROR_CODE, hint=hint, location=self.location)
        return QueryError(
            message,
            code=ERROR_CODE,
            hint=hint,
            location=f"{self.location}:{span[0]}-{span[1]}",
            details={"start": span[0], "end": span[1]},
        )

    def fail_sql(
        self, message: str, hint: str | None, sql_span: tuple[int, int] | None
    ) -> QueryError:
        return self.fail(message, hint, self.to_template(sql_span) if sql_span else None)

    def to_template(self, sql_span: tuple[int, int]) -> tuple[int, int]:
        """Maps an end-exclusive SQL span back onto the filter the user wrote."""

        def at(position: int, is_end: bool) -> int:
            for segment in self.segments:
                if segment.sql_start <= position < segment.sql_end:
                    if segment.placeholder is not None:
                        return segment.end if is_end else segment.start
                    offset = segment.start + position - segment.sql_start
                    return offset + 1 if is_end else offset
            return len(self.template)

        start, end = sql_span
        first = at(start, False)
        return first, max(first, at(max(start, end - 1), True))

    def template_text(self, sql_span: tuple[int, int] | None, fallback: str) -> str:
        if sql_span is None:
            return clip(fallback)
        start, end = self.to_template(sql_span)
        return clip(self.template[start:end]) or clip(fallback)
