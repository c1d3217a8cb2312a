"""Transaction statements over the SQL API answer as PostgreSQL does (issue #19): psycopg 3
sends ROLLBACK after an error in a transaction and ROLLBACK TO SAVEPOINT for a failed nested
``conn.transaction()``; asyncpg and pgjdbc follow the status byte of ReadyForQuery. The
same statement sequences run against the real PostgreSQL service and `tally serve-sql`,
over the simple and the extended protocol, must give the same tags, SQLSTATEs, warnings
and transaction status after each statement."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg
import pytest
from psycopg import pq

from semantic.sqlapi.transactions import TxStatement, transaction_statement, transaction_step
from semantic.sqlapi.translate import SqlApiError
from tests.conftest import in_own_thread, require_service
from tests.sqlapi.conftest import Servers

POSTGRES = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
STATUS = {
    pq.TransactionStatus.IDLE: "I",
    pq.TransactionStatus.INTRANS: "T",
    pq.TransactionStatus.INERROR: "E",
}
BAD = "SELECT nosuch FROM nowhere"  # 42P01 on both servers
SEQUENCES = [
    ["BEGIN", BAD, "SELECT 1", "ROLLBACK", "SELECT 1"],
    ["BEGIN", BAD, "COMMIT", "SELECT 1"],
    ["COMMIT", "ROLLBACK", "END", "ABORT", "commit work", "rollback transaction"],
    ["BEGIN", "BEGIN", "START TRANSACTION", "COMMIT"],
    ["BEGIN READ ONLY", BAD, "ABORT"],
    ["START TRANSACTION READ ONLY", BAD, "END"],
    ["begin work", "end transaction", "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY", "COMMIT;"],
    ["BEGIN", BAD, "ROLLBACK AND CHAIN", "ROLLBACK"],
    ["BEGIN", BAD, "COMMIT AND CHAIN", "ROLLBACK"],
    ["BEGIN", "COMMIT AND CHAIN", "ROLLBACK AND NO CHAIN", "ROLLBACK AND CHAIN"],
    ["BEGIN", "SAVEPOINT s1", BAD, "ROLLBACK TO SAVEPOINT s1", "SELECT 1", "RELEASE s1", "END"],
    ["BEGIN", "SAVEPOINT a", "SAVEPOINT b", "SAVEPOINT a", "RELEASE a", "ROLLBACK TO b", "END"],
    ["BEGIN", "SAVEPOINT s1", BAD, "RELEASE SAVEPOINT s1", "ROLLBACK TO nosp", "ROLLBACK"],
    ["BEGIN", BAD, "SAVEPOINT x", "BEGIN", "ROLLBACK"],
    ["ROLLBACK TO SAVEPOINT nosp", "SAVEPOINT x", "RELEASE x"],
    ["BEGIN", "RELEASE nosp", "SELECT 1", "ROLLBACK"],
    ["BEGIN; SELECT nosuch FROM nowhere", "ROLLBACK"],
    ["SELECT 1; SELECT nosuch FROM nowhere; SELECT 2", "SELECT 1"],
    ["BEGIN; COMMIT; SELECT 1", "SELECT nosuch FROM nowhere; COMMIT"],
    ["COMMIT PREPARED 'x'", "ROLLBACK PREPARED 'x'", "BEGIN", "COMMIT PREPARED 'x'", "END"],
]


def _run(dsn: str, sequence: list[str], *, extended: bool) -> list[str]:
    """Per statement: the tags or SQLSTATE, the warnings sent, and the status after it."""
    conn = pq.PGconn.connect(dsn.encode())
    assert conn.status == pq.ConnStatus.OK, conn.error_message
    notices: list[str] = []
    conn.notice_handler = lambda res: notices.append(
        (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    )
    seen = []
    try:
        for sql in sequence:
            notices.clear()
            # The extended protocol takes one statement per Parse.
            if extended and ";" not in sql:
                conn.send_query_params(sql.encode(), None)
            else:
                conn.send_query(sql.encode())
            parts = []
            while (res := conn.get_result()) is not None:
                if res.status == pq.ExecStatus.FATAL_ERROR:
                    parts.append(
                        "!" + (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
                    )
                else:
                    parts.append((res.command_status or b"").decode())
            status = STATUS.get(conn.transaction_status, "?")
            seen.append(f"{sql} -> {'|'.join(parts)} {notices} [{status}]")
    finally:
        conn.finish()
    return seen


@pytest.mark.parametrize("extended", [False, True], ids=["simple", "extended"])
def test_transaction_statements_answer_as_postgresql_does(servers: Servers, extended: bool) -> None:
    """Tags (COMMIT of a failed block is ROLLBACK), warnings (25P01 no transaction, 25001
    already in one), errors (25P02, 25P01, 3B001, 42704) and the I/T/E status byte."""
    require_service("postgres")
    tally = servers.url()
    for sequence in SEQUENCES:
        expected = _run(POSTGRES, sequence, extended=extended)
        assert _run(tally, sequence, extended=extended) == expected


def test_psycopg_rolls_back_after_an_error_and_goes_on(servers: Servers) -> None:
    """psycopg 3 (not autocommit): an error inside the transaction, the client's rollback,
    then a new query succeeds; a failed nested transaction rolls back to its savepoint and
    the outer one goes on; committing a failed transaction is a rollback."""
    sql = "SELECT DISTINCT account__plan FROM metrics ORDER BY 1"
    with psycopg.connect(servers.url()) as conn:
        plans = conn.execute(sql).fetchall()
        assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT no_such_dimension FROM metrics")
        assert conn.info.transaction_status == pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute(sql)
        conn.rollback()
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute(sql).fetchall() == plans

        with conn.transaction():
            with pytest.raises(psycopg.errors.UndefinedColumn), conn.transaction():
                conn.execute("SELECT no_such_dimension FROM metrics")
            assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
            assert conn.execute(sql).fetchall() == plans

        conn.commit()
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("SELECT no_such_dimension FROM metrics")
        conn.commit()  # COMMIT of a failed transaction: the server rolls back
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE
        assert conn.execute(sql).fetchall() == plans


def test_asyncpg_nested_transactions_after_errors(servers: Servers) -> None:
    """asyncpg's transaction() (BEGIN, SAVEPOINT, ROLLBACK TO, RELEASE, COMMIT/ROLLBACK)."""

    async def go() -> list[object]:
        conn = await asyncpg.connect(servers.url())
        found: list[object] = []
        try:
            found.append(await conn.fetch("SELECT DISTINCT account__plan FROM metrics"))
            with pytest.raises(asyncpg.UndefinedColumnError):
                async with conn.transaction(readonly=True):
                    with pytest.raises(asyncpg.UndefinedColumnError):
                        async with conn.transaction():
                            await conn.fetch("SELECT no_such_dimension FROM metrics")
                    found.append(await conn.fetch("SELECT DISTINCT account__plan FROM metrics"))
                    await conn.fetch("SELECT no_such_dimension FROM metrics")
            found.append(conn.is_in_transaction())
            found.append(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()
        return found

    before, inside, in_transaction, one = in_own_thread(asyncio.run, go())
    assert (in_transaction, one) == (False, 1)
    assert inside == before and len(before) > 1


@pytest.mark.parametrize(
    ("status", "text", "expected"),
    [
        ("I", "BEGIN", ("T", (), "BEGIN", None)),
        ("T", "START TRANSACTION", ("T", (), "START TRANSACTION", ("25001", "there is already a transaction in progress"))),
        ("E", "END", ("I", (), "ROLLBACK", None)),
        ("E", "COMMIT AND CHAIN", ("T", (), "ROLLBACK", None)),
        ("I", "ABORT", ("I", (), "ROLLBACK", ("25P01", "there is no transaction in progress"))),
        ("T", "SAVEPOINT A", ("T", ("a",), "SAVEPOINT", None)),
    ],
)  # fmt: skip
def test_transaction_step(status: str, text: str, expected: tuple[object, ...]) -> None:
    stmt = transaction_statement(text)
    assert stmt is not None
    step = transaction_step(status, (), stmt)
    assert (step.status, step.savepoints, step.tag, step.warning) == expected


def test_savepoints_roll_back_to_the_innermost_of_a_name() -> None:
    rollback_to = TxStatement("rollback_to", "ROLLBACK", name="a")
    step = transaction_step("E", ("a", "b", "a", "c"), rollback_to)
    assert (step.status, step.savepoints, step.tag) == ("T", ("a", "b", "a"), "ROLLBACK")
    release = TxStatement("release", "RELEASE", name="b")
    assert transaction_step("T", ("a", "b", "a"), release).savepoints == ("a",)


@pytest.mark.parametrize(
    ("status", "text", "sqlstate"),
    [
        ("I", "ROLLBACK AND CHAIN", "25P01"),
        ("I", "SAVEPOINT x", "25P01"),
        ("T", "RELEASE nosp", "3B001"),
        ("T", "PREPARE TRANSACTION 'x'", "55000"),
        ("I", "COMMIT PREPARED 'x'", "42704"),
        ("T", "ROLLBACK PREPARED 'x'", "25001"),
    ],
)
def test_transaction_step_errors(status: str, text: str, sqlstate: str) -> None:
    stmt = transaction_statement(text)
    assert stmt is not None
    with pytest.raises(SqlApiError) as caught:
        transaction_step(status, (), stmt)
    assert caught.value.sqlstate == sqlstate


@pytest.mark.parametrize(
    "text", ["COMMIT TO x", "ROLLBACK TO", "BEGIN READ SOMETIMES", "SAVEPOINT", "END NOW"]
)
def test_malformed_transaction_statements_are_syntax_errors(text: str) -> None:
    with pytest.raises(SqlApiError) as caught:
        transaction_statement(text)
    assert caught.value.sqlstate == "42601"


def test_other_statements_are_not_transaction_statements() -> None:
    for text in ("SELECT 1", "PREPARE p AS SELECT 1", "SET TRANSACTION READ ONLY", "ENDX"):
        assert transaction_statement(text) is None, text
