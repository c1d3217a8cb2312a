"""PostgreSQL frontend/backend protocol 3.0: the messages the SQL API reads and writes.

Only what a read-only server needs: startup (with SSLRequest/GSSENCRequest and
CancelRequest), cleartext password authentication, the simple and extended query flows,
and the text output of the types the SQL API declares. Django-free.

Reference: https://www.postgresql.org/docs/current/protocol-message-formats.html
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_MESSAGE = 64 * 1024 * 1024  # a query text longer than this is refused, not buffered

# Type OIDs (pg_type.oid) of the types the SQL API sends.
OIDS: dict[str, int] = {
    "bool": 16,
    "int8": 20,
    "int2": 21,
    "int4": 23,
    "text": 25,
    "oid": 26,
    "float4": 700,
    "float8": 701,
    "varchar": 1043,
    "date": 1082,
    "time": 1083,
    "timestamp": 1114,
    "timestamptz": 1184,
    "interval": 1186,
    "numeric": 1700,
    "bytea": 17,
    "name": 19,
    "char": 18,
    "json": 114,
    "uuid": 2950,
}
TYPE_SIZES: dict[int, int] = {16: 1, 20: 8, 21: 2, 23: 4, 26: 4, 700: 4, 701: 8, 1082: 4, 1114: 8}


class ProtocolError(Exception):
    """The client broke the protocol; the connection is closed after a FATAL 08P01."""


def message(kind: bytes, payload: bytes = b"") -> bytes:
    """One backend message: type byte, Int32 length (itself included), payload."""
    return kind + struct.pack("!I", len(payload) + 4) + payload


def cstr(text: str) -> bytes:
    """A NUL-terminated UTF-8 string."""
    return text.encode("utf-8") + b"\x00"


def auth_request(code: int) -> bytes:
    """AuthenticationOk (0) / AuthenticationCleartextPassword (3)."""
    return message(b"R", struct.pack("!I", code))


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstr(name) + cstr(value))


def backend_key_data(pid: int, secret: int) -> bytes:
    return message(b"K", struct.pack("!II", pid, secret))


def ready_for_query(status: str) -> bytes:
    """status: I idle, T in a transaction block, E in a failed transaction block."""
    return message(b"Z", status.encode("ascii"))


def command_complete(tag: str) -> bytes:
    return message(b"C", cstr(tag))


def error_response(
    sqlstate: str,
    text: str,
    *,
    severity: str = "ERROR",
    hint: str | None = None,
    detail: str | None = None,
) -> bytes:
    """ErrorResponse (or NoticeResponse with severity NOTICE/WARNING: see notice())."""
    fields = b"S" + cstr(severity) + b"V" + cstr(severity) + b"C" + cstr(sqlstate)
    fields += b"M" + cstr(text)
    if detail:
        fields += b"D" + cstr(detail)
    if hint:
        fields += b"H" + cstr(hint)
    return message(b"E", fields + b"\x00")


def notice(sqlstate: str, text: str, *, severity: str = "WARNING") -> bytes:
    fields = b"S" + cstr(severity) + b"V" + cstr(severity) + b"C" + cstr(sqlstate)
    return message(b"N", fields + b"M" + cstr(text) + b"\x00")


@dataclass(frozen=True)
class Field:
    """One RowDescription field."""

    name: str
    type_oid: int
    table_oid: int = 0
    column: int = 0


def row_description(fields: Sequence[Field]) -> bytes:
    payload = struct.pack("!H", len(fields))
    for f in fields:
        size = TYPE_SIZES.get(f.type_oid, -1)
        payload += cstr(f.name) + struct.pack(
            "!IHIhiH", f.table_oid, f.column, f.type_oid, size, -1, 0
        )
    return message(b"T", payload)


def data_row(values: Sequence[bytes | None]) -> bytes:
    parts = [struct.pack("!H", len(values))]
    for value in values:
        if value is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(struct.pack("!I", len(value)))
            parts.append(value)
    return message(b"D", b"".join(parts))


def parameter_description(oids: Sequence[int]) -> bytes:
    return message(
        b"t", struct.pack("!H", len(oids)) + b"".join(struct.pack("!I", o) for o in oids)
    )


PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
NO_DATA = message(b"n")
EMPTY_QUERY = message(b"I")


# --------------------------------------------------------------------------- reading


class Reader:
    """Parses the fields of one message payload."""

    def __init__(self, payload: bytes) -> None:
        self.data = payload
        self.pos = 0

    def int16(self) -> int:
        (value,) = struct.unpack_from("!h", self.data, self.pos)
        self.pos += 2
        return int(value)

    def int32(self) -> int:
        (value,) = struct.unpack_from("!i", self.data, self.pos)
        self.pos += 4
        return int(value)

    def cstr(self) -> str:
        end = self.data.index(b"\x00", self.pos)
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def raw(self, size: int) -> bytes:
        chunk = self.data[self.pos : self.pos + size]
        if len(chunk) != size:
            raise ProtocolError("message is shorter than its fields")
        self.pos += size
        return chunk


def startup_parameters(payload: bytes) -> dict[str, str]:
    """The key/value pairs after the protocol version of a StartupMessage."""
    reader = Reader(payload)
    params: dict[str, str] = {}
    while reader.pos < len(payload) and payload[reader.pos] != 0:
        key = reader.cstr()
        params[key] = reader.cstr()
    return params


# --------------------------------------------------------------------------- values


def _text_numeric(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, decimal.Decimal) and not value.is_finite():
        return "NaN" if value.is_nan() else ("Infinity" if value > 0 else "-Infinity")
    return str(value)


def _text_date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _text_timestamp(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return f"{value.isoformat()} 00:00:00"
    return str(value)


def _text_bool(value: Any) -> str:
    return "t" if value else "f"


def _text_any(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    return str(value)


_ENCODERS: dict[int, Callable[[Any], str]] = {
    OIDS["int8"]: _text_numeric,
    OIDS["int4"]: _text_numeric,
    OIDS["int2"]: _text_numeric,
    OIDS["float4"]: _text_numeric,
    OIDS["float8"]: _text_numeric,
    OIDS["numeric"]: _text_numeric,
    OIDS["date"]: _text_date,
    OIDS["timestamp"]: _text_timestamp,
    OIDS["timestamptz"]: lambda v: (
        _text_timestamp(v) + ("+00" if isinstance(v, dt.datetime) else "")
    ),
    OIDS["bool"]: _text_bool,
}


def text_encoder(type_oid: int) -> Callable[[Any], bytes | None]:
    """A function turning a Python value into the text format of ``type_oid`` (None → NULL).

    Example:
        >>> import datetime
        >>> text_encoder(1082)(datetime.datetime(2026, 1, 1, 0, 0))
        b'2026-01-01'
        >>> text_encoder(701)(float("nan")), text_encoder(25)(None)
        (b'NaN', None)
    """
    encode = _ENCODERS.get(type_oid, _text_any)

    def to_bytes(value: Any) -> bytes | None:
        if value is None:
            return None
        return encode(value).encode("utf-8")

    return to_bytes


def decode_parameter(raw: bytes | None, type_oid: int, fmt: int) -> Any:
    """A Bind parameter as a Python value: text format by its declared type; binary for the
    fixed-size numeric and boolean types psycopg sends that way.

    Raises:
        ProtocolError: a binary parameter of a type the SQL API does not decode.
    """
    if raw is None:
        return None
    if fmt == 0:
        text = raw.decode("utf-8")
        if type_oid in (OIDS["int2"], OIDS["int4"], OIDS["int8"], OIDS["oid"]):
            return int(text)
        if type_oid in (OIDS["float4"], OIDS["float8"]):
            return float(text)
        if type_oid == OIDS["numeric"]:
            return decimal.Decimal(text)
        if type_oid == OIDS["bool"]:
            return text.lower() in ("t", "true", "1", "on", "yes", "y")
        return text
    codes = {
        OIDS["int2"]: "!h",
        OIDS["int4"]: "!i",
        OIDS["int8"]: "!q",
        OIDS["oid"]: "!I",
        OIDS["float4"]: "!f",
        OIDS["float8"]: "!d",
    }
    if type_oid in codes:
        return struct.unpack(codes[type_oid], raw)[0]
    if type_oid == OIDS["bool"]:
        return raw != b"\x00"
    if type_oid in (OIDS["text"], OIDS["varchar"], OIDS["name"], 0):
        return raw.decode("utf-8")
    raise ProtocolError(f"binary parameters of type {type_oid} are not supported; send text")
