"""Binary result format and control statements of the SQL API (issue #19), without a
server: every binary encoder against PostgreSQL's own encoding of the same value (read
back through psycopg's binary loaders), format codes per column, the statements sqlglot
does not read (transaction modes, cursors)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import Format

from semantic.sqlapi import wire
from semantic.sqlapi.control import (
    DECLARE_KEYWORD,
    FETCH_ALL,
    close_of,
    control_kind,
    control_statement,
    declare_of,
    fetch_of,
    split_statements,
    transaction_of,
)
from semantic.sqlapi.session import SqlError, row_encoders
from semantic.sqlapi.translate import SqlApiError

VALUES: list[tuple[str, Any]] = [
    ("bool", True),
    ("int2", -7),
    ("int4", 2_000_000_000),
    ("int8", -9_000_000_000_000),
    ("float4", 1.5),
    ("float8", -2.25e-300),
    ("numeric", Decimal("0")),
    ("numeric", Decimal("12345.6")),
    ("numeric", Decimal("-0.000012")),
    ("numeric", Decimal("91861.00")),
    ("numeric", Decimal("1E+12")),
    ("numeric", Decimal("NaN")),
    ("text", "été 🦄"),
    ("varchar", "pro"),
    ("date", dt.date(1999, 12, 31)),
    ("date", dt.date(2025, 1, 1)),
    ("timestamp", dt.datetime(2025, 1, 1, 12, 30, 15, 123456)),
    ("timestamp", dt.datetime(1970, 1, 1)),
    ("timestamptz", dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)),
    ("interval", dt.timedelta(days=3, seconds=5, microseconds=7)),
    ("uuid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("bytea", b"\x00\xff"),
]


@pytest.mark.parametrize(("pg_type", "value"), VALUES)
def test_binary_encoding_reads_back_with_psycopg(pg_type: str, value: Any) -> None:
    """psycopg's binary loaders (the C implementation PostgreSQL clients share) read each
    encoded value back as the value sent."""
    oid = wire.OIDS[pg_type]
    raw = wire.binary_encoder(oid)(value)
    assert raw is not None
    loader = Transformer().get_loader(oid, Format.BINARY)
    got = loader.load(raw)
    if isinstance(value, Decimal) and value.is_nan():
        assert got.is_nan()
    elif pg_type == "float4":
        assert got == pytest.approx(value)
    elif pg_type == "bytea":
        assert bytes(got) == value
    else:
        assert got == value


def test_binary_numeric_agrees_with_postgresql_itself(postgres_admin_url: str) -> None:
    """PostgreSQL's own binary numeric (psycopg binary cursor) is byte for byte ours."""
    from tests.conftest import require_service

    require_service("postgres")
    with psycopg.connect(postgres_admin_url) as conn:
        # A seeded spread of sizes and scales besides the usual suspects: the encoder works
        # on integers and powers of ten, where an off-by-one group would show.
        rng = random.Random(19)
        spread = [
            f"{'-' if rng.random() < 0.5 else ''}{rng.randint(1, 10 ** rng.randint(1, 40))}"
            f"E{rng.randint(-30, 12)}"
            for _ in range(300)
        ]
        for text in ("0", "12345.6", "-0.000012", "91861.00", "1E+12", "100.10", *spread):
            cursor = conn.cursor(binary=True)
            cursor.execute(f"SELECT '{text}'::numeric")
            raw = cursor.pgresult.get_value(0, 0)  # type: ignore[union-attr]
            assert wire.numeric_binary(Decimal(text)) == raw, text
    assert PyFormat.BINARY  # psycopg's binary format is the one in use


def test_format_codes_per_column() -> None:
    fields = [wire.Field("a", wire.OIDS["int8"]), wire.Field("b", wire.OIDS["text"])]
    text, binary = row_encoders(fields, ()), row_encoders(fields, (1,))
    assert [e(5) for e in text] == [b"5", b"5"]
    assert [e(5) for e in binary] == [b"\x00" * 7 + b"\x05", b"5"]
    mixed = row_encoders(fields, (1, 0))
    assert [e(5) for e in mixed] == [b"\x00" * 7 + b"\x05", b"5"]
    with pytest.raises(SqlError) as caught:
        row_encoders(fields, (1, 0, 1))
    assert caught.value.sqlstate == "08P01"


def test_binary_parameters_decode() -> None:
    """asyncpg and pgjdbc send parameters in binary by their described types."""
    assert wire.decode_parameter(b"\x00\x00\x00\x01", wire.OIDS["date"], 1) == dt.date(2000, 1, 2)
    assert wire.decode_parameter(wire.numeric_binary("-1.50"), wire.OIDS["numeric"], 1) == (
        Decimal("-1.50")
    )
    assert wire.decode_parameter(b"2025-02-03", wire.OIDS["date"], 0) == dt.date(2025, 2, 3)


def test_control_statements() -> None:
    assert split_statements("BEGIN READ ONLY; SELECT ';'") == ["BEGIN READ ONLY", " SELECT ';'"]
    for text in (
        "BEGIN READ ONLY",
        "START TRANSACTION READ ONLY",
        "begin transaction isolation level repeatable read, read only",
        "BEGIN",
    ):
        assert transaction_of(control_statement(text)).action == "begin", text
    assert control_kind(control_statement("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"))
    declared = control_statement('DECLARE "C 1" NO SCROLL CURSOR WITH HOLD FOR SELECT $1')
    assert control_kind(declared) == DECLARE_KEYWORD
    declare = declare_of(declared)
    assert (declare.name, declare.hold, declare.query.sql("postgres")) == ("C 1", True, "SELECT $1")
    assert fetch_of(control_statement("FETCH FORWARD ALL FROM c")).count == FETCH_ALL
    assert fetch_of(control_statement("MOVE 5 IN c")).move is True
    assert close_of(control_statement("CLOSE ALL")) is None
    assert control_statement("SET search_path = tally") is None
    for refused in ("FETCH PRIOR FROM c", "DECLARE c SCROLL CURSOR FOR SELECT 1"):
        with pytest.raises(SqlApiError) as caught:
            control_statement(refused)
        assert caught.value.sqlstate == "0A000"
