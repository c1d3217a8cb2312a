"""Dicts and lists that remember the line each key and item came from.

The YAML reader (yaml_source) builds them; everything that only walks definitions (objects,
the compiler's manifest) checks for them without loading PyYAML, which costs a short process
such as ``tally compile`` ~30 ms it never needs.
"""

from __future__ import annotations

from typing import Any


class LineDict(dict[Any, Any]):
    """A dict remembering the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A list remembering the line of each item (1-based) and of itself."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line
