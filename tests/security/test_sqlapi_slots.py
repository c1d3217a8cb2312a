"""Issue 18, principle 7: SQL API connections are bounded before and after authentication.
A connection that does not finish startup and authentication in time is closed, an idle
session is closed, and unauthenticated sockets are capped per client address (and in
total) so that idle sockets from one address cannot lock every other client out.

Timeouts are set small; the tests wait with generous bounds for the server to close the
socket and never assert elapsed times."""

from __future__ import annotations

import selectors

import psycopg

from tests.security.sqlapi_support import (
    WAIT_S,
    error_fields,
    raw_socket,
    read_until_closed,
    sql_server,
    startup_packet,
    url,
)


def test_a_silent_connection_is_closed_after_the_authentication_timeout() -> None:
    with sql_server(TALLY_SQL_AUTH_TIMEOUT_S="1") as port:
        with raw_socket(port) as silent:
            fields = error_fields(read_until_closed(silent))
        assert fields["S"] == "FATAL"
        assert fields["C"] == "08P01"
        assert "authentication" in fields["M"]
        # A startup packet and then no password: closed as well.
        with raw_socket(port) as halfway:
            halfway.sendall(startup_packet("ana"))
            data = read_until_closed(halfway)
        assert data.startswith(b"R")  # the password request came
        assert error_fields(data)["C"] == "08P01"
        # The server still serves.
        with psycopg.connect(url(port)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)


def test_an_idle_session_is_closed() -> None:
    with sql_server(TALLY_SQL_IDLE_TIMEOUT_S="1") as port:
        conn = psycopg.connect(url(port))
        try:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            # The server speaks first: its FATAL (then EOF) makes the socket readable.
            # A selector, not select(): select() refuses a descriptor >= 1024, which a
            # worker process that has run many tests can hand out (a CI failure).
            with selectors.DefaultSelector() as selector:
                selector.register(conn.fileno(), selectors.EVENT_READ)
                readable = selector.select(WAIT_S)
            assert readable, "the server kept an idle session open"
            try:
                conn.execute("SELECT 1")
            except psycopg.OperationalError as exc:
                message = str(exc)
            else:
                raise AssertionError("an idle session answered after its timeout")
            assert "idle" in message
        finally:
            conn.close()


def test_unauthenticated_sockets_are_capped_per_address() -> None:
    settings = {
        "TALLY_SQL_MAX_CONNECTIONS": "4",
        "TALLY_SQL_MAX_UNAUTH_PER_ADDRESS": "3",
        "TALLY_SQL_AUTH_TIMEOUT_S": "600",
    }
    with sql_server(**settings) as port:
        # 40 idle sockets from one address: more than every slot of the server.
        idle = [raw_socket(port, source="127.0.0.2") for _ in range(40)]
        try:
            refused = []
            for sock in idle[3:]:
                fields = error_fields(read_until_closed(sock))
                refused.append((fields.get("S"), fields.get("C")))
            assert set(refused) == {("FATAL", "53300")}
            # Another address still gets in, up to TALLY_SQL_MAX_CONNECTIONS sessions.
            sessions = [psycopg.connect(url(port)) for _ in range(4)]
            try:
                for conn in sessions:
                    assert conn.execute("SELECT 1").fetchone() == (1,)
            finally:
                for conn in sessions:
                    conn.close()
        finally:
            for sock in idle:
                sock.close()


def test_unauthenticated_sockets_are_capped_in_total() -> None:
    settings = {
        "TALLY_SQL_MAX_UNAUTH": "4",
        "TALLY_SQL_MAX_UNAUTH_PER_ADDRESS": "2",
        "TALLY_SQL_AUTH_TIMEOUT_S": "600",
    }
    with sql_server(**settings) as port:
        idle = [raw_socket(port, source=f"127.0.0.{n}") for n in (2, 2, 3, 3)]
        try:
            with raw_socket(port, source="127.0.0.4") as extra:
                fields = error_fields(read_until_closed(extra))
            assert (fields["S"], fields["C"]) == ("FATAL", "53300")
            assert "unauthenticated" in fields["M"]
        finally:
            for sock in idle:
                sock.close()
