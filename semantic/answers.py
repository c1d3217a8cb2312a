"""A query's answer as the result cache keeps it: its rows encoded once, read many times.

A dashboard refresh served from the cache should cost a cache read, not the decoding of
thousands of Decimals and dates and their encoding to JSON again. So a stored answer holds
its rows twice, both as bytes: pickled (the Python values, decoded only by a caller that
reads them: the UI, MCP, the SQL API) and as the JSON array the HTTP API sends
(``rows_json``, spliced into the response as it is).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def value_plain(value: Any) -> Any:
    """A warehouse value as the JSON API shows it: decimals as numbers, dates as ISO text.

    A float JSON cannot hold (infinity, NaN: a warehouse column or a measure expression can
    produce one) is written as PostgreSQL writes it, ``"Infinity"``, ``"-Infinity"`` or
    ``"NaN"`` (as protobuf's JSON mapping does), never dropped and never an encoding error.

    Example:
        >>> value_plain(decimal.Decimal("1.50")), value_plain(dt.date(2026, 1, 2))
        (1.5, '2026-01-02')
        >>> value_plain(float("-inf")), value_plain(decimal.Decimal("NaN"))
        ('-Infinity', 'NaN')
    """
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def json_bytes(value: Any) -> bytes:
    """JSON as the API's renderer writes it (compact, UTF-8, no NaN), so that a spliced
    body is byte for byte what DRF's JSONRenderer would have sent."""
    from rest_framework.utils.encoders import JSONEncoder

    text = json.dumps(
        value, cls=JSONEncoder, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    )
    # As DRF's renderer: these two are valid JSON but end a line in JavaScript.
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def rows_json(rows: Sequence[Sequence[Any]]) -> bytes:
    """The ``rows`` array of the API's answer."""
    return json_bytes([[value_plain(v) for v in row] for row in rows])


@dataclass(frozen=True)
class StoredAnswer:
    """One cached answer: columns, the row cap's verdict, and the rows in both encodings."""

    columns: tuple[str, ...]
    truncated: bool
    row_count: int
    rows_pickle: bytes
    # None when the SQL API stored it (its clients never read JSON; the HTTP API encodes
    # such an entry's rows itself when it is served one).
    rows_json: bytes | None

    @classmethod
    def of(
        cls,
        columns: tuple[str, ...],
        rows: tuple[tuple[Any, ...], ...],
        truncated: bool,
        *,
        with_json: bool = True,
    ) -> StoredAnswer:
        return cls(
            columns,
            truncated,
            len(rows),
            pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL),
            rows_json(rows) if with_json else None,
        )

    def rows(self) -> tuple[tuple[Any, ...], ...]:
        # Our own bytes, written by ``of`` into our own cache: never a client's.
        rows: tuple[tuple[Any, ...], ...] = pickle.loads(self.rows_pickle)
        return rows
