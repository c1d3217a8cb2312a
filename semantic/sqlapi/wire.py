"""PostgreSQL frontend/backend protocol 3.0: the messages the SQL API reads and writes.

Only what a read-only server needs: startup (with SSLRequest/GSSENCRequest and
CancelRequest), cleartext password authentication, the simple and extended query flows,
and the text and binary output of the types the SQL API declares (binary: what asyncpg
always asks for, and pgjdbc once a statement is server-prepared). Django-free.

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


def row_description(fields: Sequence[Field], formats: Sequence[int] = ()) -> bytes:
    """RowDescription; ``formats`` are the result format codes of a bound portal (one per
    field; empty: text, as for a Describe of a statement or a simple query)."""
    payload = struct.pack("!H", len(fields))
    for index, f in enumerate(fields):
        size = TYPE_SIZES.get(f.type_oid, -1)
        fmt = formats[index] if index < len(formats) else 0
        payload += cstr(f.name) + struct.pack(
            "!IHIhiH", f.table_oid, f.column, f.type_oid, size, -1, fmt
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


# --------------------------------------------------------------------------- binary values

# PostgreSQL's epoch for dates and timestamps in binary format.
PG_EPOCH = dt.date(2000, 1, 1)
PG_EPOCH_TS = dt.datetime(2000, 1, 1)
_NUMERIC_POS, _NUMERIC_NEG, _NUMERIC_NAN = 0x0000, 0x4000, 0xC000
_NUMERIC_PINF, _NUMERIC_NINF = 0xD000, 0xF000
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def _as_decimal(value: Any) -> decimal.Decimal:
    if isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, float):
        # repr: the shortest text that reads back as the same float (as the text format).
        return decimal.Decimal(repr(value))
    if isinstance(value, bool):
        return decimal.Decimal(int(value))
    return decimal.Decimal(str(value))


def numeric_binary(value: Any) -> bytes:
    """A number in PostgreSQL's binary ``numeric`` format: base-10000 digits, weight, sign,
    display scale.

    Example:
        >>> numeric_binary(decimal.Decimal("12345.6")).hex()
        '0003000100000001000109291770'
        >>> numeric_binary(decimal.Decimal("-0.00001")).hex()
        '0001fffe4000000503e8'
    """
    number = _as_decimal(value)
    if number.is_nan():
        return struct.pack("!hhHh", 0, 0, _NUMERIC_NAN, 0)
    if number.is_infinite():
        return struct.pack("!hhHh", 0, 0, _NUMERIC_PINF if number > 0 else _NUMERIC_NINF, 0)
    sign, _digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    # Integer arithmetic, as every numeric of every row is encoded: the number scaled to whole
    # base-10000 groups after the point (exactly: _EXACT never rounds), then its base-10000
    # digits from the least significant one.
    dscale = max(-exponent, 0)
    fraction_groups = -(-dscale // 4)
    scaled = abs(int(number.scaleb(4 * fraction_groups, _EXACT)))
    groups: list[int] = []
    while scaled:
        scaled, group = divmod(scaled, 10000)
        groups.append(group)
    weight = len(groups) - 1 - fraction_groups
    trailing = 0
    while trailing < len(groups) and groups[trailing] == 0:
        trailing += 1
    groups = groups[trailing:][::-1]
    if not groups:
        weight = 0
    head = struct.pack("!hhHh", len(groups), weight, _NUMERIC_NEG if sign else _NUMERIC_POS, dscale)
    return head + struct.pack(f"!{len(groups)}H", *groups)


def numeric_from_binary(raw: bytes) -> decimal.Decimal:
    """The inverse of :func:`numeric_binary` (a Bind parameter sent as binary numeric).

    Example:
        >>> numeric_from_binary(numeric_binary("-123.4500"))
        Decimal('-123.4500')
    """
    count, weight, sign, dscale = struct.unpack_from("!hhHh", raw)
    if sign == _NUMERIC_NAN:
        return decimal.Decimal("NaN")
    if sign in (_NUMERIC_PINF, _NUMERIC_NINF):
        return decimal.Decimal("Infinity" if sign == _NUMERIC_PINF else "-Infinity")
    groups = struct.unpack_from(f"!{count}H", raw, 8)
    total = decimal.Decimal(0)
    for index, group in enumerate(groups):
        total += decimal.Decimal(group).scaleb(4 * (weight - index))
    total = total.quantize(decimal.Decimal(1).scaleb(-dscale)) if dscale else total
    return -total if sign == _NUMERIC_NEG else total


def _binary_date(value: Any) -> bytes:
    day = value.date() if isinstance(value, dt.datetime) else value
    if not isinstance(day, dt.date):
        day = dt.date.fromisoformat(str(value)[:10])
    return struct.pack("!i", (day - PG_EPOCH).days)


def _micros(value: Any, *, utc: bool) -> int:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    else:
        moment = dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is not None:
        moment = (
            moment.astimezone(dt.UTC).replace(tzinfo=None) if utc else moment.replace(tzinfo=None)
        )
    delta = moment - PG_EPOCH_TS
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _binary_interval(value: Any) -> bytes:
    if isinstance(value, dt.timedelta):
        micros = value.seconds * 1_000_000 + value.microseconds
        return struct.pack("!qii", micros, value.days, 0)
    raise ValueError(f"cannot send {type(value).__name__} as interval")


def _binary_time(value: Any) -> bytes:
    moment = value if isinstance(value, dt.time) else dt.time.fromisoformat(str(value))
    micros = ((moment.hour * 60 + moment.minute) * 60 + moment.second) * 1_000_000
    return struct.pack("!q", micros + moment.microsecond)


def _binary_uuid(value: Any) -> bytes:
    import uuid

    return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes


_BINARY: dict[int, Callable[[Any], bytes]] = {
    OIDS["bool"]: lambda v: b"\x01" if v else b"\x00",
    OIDS["int2"]: lambda v: struct.pack("!h", int(v)),
    OIDS["int4"]: lambda v: struct.pack("!i", int(v)),
    OIDS["int8"]: lambda v: struct.pack("!q", int(v)),
    OIDS["oid"]: lambda v: struct.pack("!I", int(v)),
    OIDS["float4"]: lambda v: struct.pack("!f", float(v)),
    OIDS["float8"]: lambda v: struct.pack("!d", float(v)),
    OIDS["numeric"]: numeric_binary,
    OIDS["date"]: _binary_date,
    OIDS["time"]: _binary_time,
    OIDS["timestamp"]: lambda v: struct.pack("!q", _micros(v, utc=False)),
    OIDS["timestamptz"]: lambda v: struct.pack("!q", _micros(v, utc=True)),
    OIDS["interval"]: _binary_interval,
    OIDS["uuid"]: _binary_uuid,
    OIDS["bytea"]: lambda v: (
        bytes(v) if isinstance(v, bytes | bytearray | memoryview) else str(v).encode("utf-8")
    ),
}


def binary_encoder(type_oid: int) -> Callable[[Any], bytes | None]:
    """A function turning a Python value into the binary format of ``type_oid`` (None →
    NULL); text-like types (text, varchar, name, char, json) are their UTF-8 text, as in
    PostgreSQL.

    Example:
        >>> import datetime
        >>> binary_encoder(1082)(datetime.date(2000, 1, 2)), binary_encoder(20)(7)
        (b'\\x00\\x00\\x00\\x01', b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x07')
    """
    encode = _BINARY.get(type_oid)
    if encode is None:
        return text_encoder(type_oid)

    def to_bytes(value: Any) -> bytes | None:
        if value is None:
            return None
        return encode(value)

    return to_bytes


def encoder(type_oid: int, fmt: int) -> Callable[[Any], bytes | None]:
    """The text (0) or binary (1) encoder of a result column."""
    return binary_encoder(type_oid) if fmt == 1 else text_encoder(type_oid)


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
        if type_oid == OIDS["date"]:
            return dt.date.fromisoformat(text)
        if type_oid in (OIDS["timestamp"], OIDS["timestamptz"]):
            return dt.datetime.fromisoformat(text)
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
    if type_oid in (OIDS["text"], OIDS["varchar"], OIDS["name"], OIDS["json"], 0):
        return raw.decode("utf-8")
    if type_oid == OIDS["numeric"]:
        return numeric_from_binary(raw)
    if type_oid == OIDS["date"]:
        return PG_EPOCH + dt.timedelta(days=struct.unpack("!i", raw)[0])
    if type_oid in (OIDS["timestamp"], OIDS["timestamptz"]):
        return PG_EPOCH_TS + dt.timedelta(microseconds=struct.unpack("!q", raw)[0])
    raise ProtocolError(f"binary parameters of type {type_oid} are not supported; send text")
