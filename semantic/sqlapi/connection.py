"""One SQL API client connection: socket I/O, startup (TLS, cancel requests, password
authentication), then the message loop with the simple query flow; extended-protocol
messages and statements are handled by the mixins it inherits.

Startup and authentication must end within ``auth_timeout_s`` (one deadline for every read,
so a client trickling bytes gains nothing), then every read or write waits at most
``idle_timeout_s``: an idle session is closed with FATAL 57P05."""

from __future__ import annotations

import logging
import socket
import ssl
import struct
import threading
import time
from contextlib import suppress

from semantic.sqlapi import wire
from semantic.sqlapi.auth import AuthenticationFailed, Identity, NotAllowed, authenticate_connection
from semantic.sqlapi.catalog import SERVER_VERSION
from semantic.sqlapi.extended import ExtendedProtocol
from semantic.sqlapi.session import (
    IDLE_SESSION_TIMEOUT,
    INTERNAL_ERROR,
    INVALID_AUTHORIZATION,
    INVALID_PASSWORD,
    MSG_AUTH_TIMEOUT,
    MSG_IDLE_TIMEOUT,
    PROTOCOL_VIOLATION,
    Backend,
    Cursor,
    Fatal,
    Portal,
    Prepared,
    Result,
    SqlError,
    row_encoders,
)
from semantic.warehouse.execute import CancelScope
from tally.db import connections_keep

# The server module's logger: log filters and tests name it.
log = logging.getLogger("semantic.sqlapi.server")


class Connection(ExtendedProtocol):
    """One client: startup, authentication, then the query loop."""

    def __init__(self, server: Backend, sock: socket.socket) -> None:
        self.server = server
        self.sock: socket.socket | ssl.SSLSocket = sock
        self.pid = 0
        self.secret = 0
        self.user = ""
        self.database = "tally"
        self.identity: Identity | None = None
        self.settings: dict[str, str] = {
            "server_version": SERVER_VERSION,
            "server_encoding": "UTF8",
            "client_encoding": "UTF8",
            "datestyle": "ISO, MDY",
            "timezone": "UTC",
            "integer_datetimes": "on",
            "standard_conforming_strings": "on",
            "transaction_isolation": "read committed",
            "default_transaction_read_only": "on",
            "search_path": "tally",
            "max_identifier_length": "63",
            "application_name": "",
        }
        self.tx = "I"
        self.savepoints: list[tuple[str, frozenset[str]]] = []
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self.cursors: dict[str, Cursor] = {}
        self._cancel_lock = threading.Lock()
        self._cancel: CancelScope | None = None
        self._out: list[bytes] = []
        self._out_size = 0
        # Set by the server while the connection counts as unauthenticated.
        self.unauth_address: str | None = None
        # The end of startup and authentication (monotonic), None once authenticated.
        self._deadline: float | None = None
        self._checked_at = 0.0

    # ------------------------------------------------------------------ io

    def _recv(self, size: int) -> bytes:
        chunks = []
        while size:
            if self._deadline is not None:
                remaining = self._deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(MSG_AUTH_TIMEOUT)
                self.sock.settimeout(remaining)
            chunk = self.sock.recv(min(size, 1 << 20))
            if not chunk:
                raise ConnectionError("client closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _read_message(self) -> tuple[bytes, bytes]:
        header = self._recv(5)
        kind, length = header[:1], struct.unpack("!I", header[1:])[0]
        if length < 4 or length > wire.MAX_MESSAGE:
            raise Fatal(PROTOCOL_VIOLATION, f"invalid message length {length}")
        return kind, self._recv(length - 4)

    def send(self, data: bytes) -> None:
        self._out.append(data)
        # A running count: summing the buffer on every row made a result quadratic.
        self._out_size += len(data)
        if self._out_size > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self._out:
            self.sock.sendall(b"".join(self._out))
            self._out.clear()
            self._out_size = 0

    def fatal(self, sqlstate: str, message: str) -> None:
        with suppress(OSError):
            self.send(wire.error_response(sqlstate, message, severity="FATAL"))
            self.flush()

    # ------------------------------------------------------------------ startup

    def run(self) -> None:
        config = self.server.config
        try:
            # A client that connects and says nothing must not hold a thread for good.
            self._deadline = time.monotonic() + config.auth_timeout_s
            self.sock.settimeout(config.auth_timeout_s)
            try:
                started = self._startup()
            except TimeoutError:
                raise Fatal(PROTOCOL_VIOLATION, MSG_AUTH_TIMEOUT) from None
            if not started:
                return
            self.sock.settimeout(config.idle_timeout_s)
            self._loop()
        except Fatal as exc:
            self.fatal(exc.sqlstate, exc.message)
        except (ConnectionError, OSError, ssl.SSLError):
            pass

    def _startup(self) -> bool:
        while True:
            length = struct.unpack("!I", self._recv(4))[0]
            if length < 8 or length > 10_000:
                raise Fatal(PROTOCOL_VIOLATION, "invalid startup packet length")
            payload = self._recv(length - 4)
            code = struct.unpack("!I", payload[:4])[0]
            if code == wire.SSL_REQUEST:
                if self.server.tls is not None:
                    self.sock.sendall(b"S")
                    self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
                else:
                    self.sock.sendall(b"N")
                continue
            if code == wire.GSSENC_REQUEST:
                self.sock.sendall(b"N")
                continue
            if code == wire.CANCEL_REQUEST:
                pid, secret = struct.unpack("!II", payload[4:12])
                self.server.cancel(pid, secret)
                return False
            if code >> 16 != 3:
                raise Fatal("0A000", f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
            params = wire.startup_parameters(payload[4:])
            break
        self.user = params.get("user", "")
        self.database = params.get("database") or self.user or "tally"
        if params.get("application_name"):
            self.settings["application_name"] = params["application_name"]
        if not self.user:
            raise Fatal(INVALID_PASSWORD, "no PostgreSQL user name specified in startup packet")
        self.send(wire.auth_request(3))  # cleartext password
        self.flush()
        kind, payload = self._read_message()
        if kind != b"p":
            raise Fatal(PROTOCOL_VIOLATION, "expected a password message")
        password = payload.rstrip(b"\x00").decode("utf-8", "replace")
        connections_keep()
        try:
            self.identity = authenticate_connection(self.user, password, peer=self.sock)
        except AuthenticationFailed as exc:
            raise Fatal(INVALID_PASSWORD, str(exc)) from None
        except NotAllowed as exc:
            raise Fatal(INVALID_AUTHORIZATION, str(exc)) from None
        self.pid, self.secret = self.server.register(self)
        self._deadline = None
        self._checked_at = time.monotonic()
        self.server.authenticated(self)
        self.send(wire.auth_request(0))
        for name in (
            "server_version",
            "server_encoding",
            "client_encoding",
            "DateStyle",
            "TimeZone",
            "integer_datetimes",
            "standard_conforming_strings",
            "application_name",
        ):
            self.send(wire.parameter_status(name, self.settings[name.lower()]))
        self.send(wire.parameter_status("is_superuser", "off"))
        self.send(wire.parameter_status("session_authorization", self.user))
        self.send(wire.backend_key_data(self.pid, self.secret))
        self.send(wire.ready_for_query(self.tx))
        self.flush()
        return True

    # ------------------------------------------------------------------ loop

    def _loop(self) -> None:
        skipping = False  # after an error in the extended flow: discard until Sync
        while True:
            try:
                kind, payload = self._read_message()
            except TimeoutError:
                raise Fatal(IDLE_SESSION_TIMEOUT, MSG_IDLE_TIMEOUT) from None
            if kind == b"X":
                return
            if kind == b"Q":
                skipping = False
                self._simple(payload.rstrip(b"\x00").decode("utf-8"))
                self.send(wire.ready_for_query(self.tx))
                self.flush()
                continue
            if kind == b"S":
                skipping = False
                # Sync ends the implicit transaction: its portals (and their buffered rows)
                # go, as PostgreSQL drops them; inside BEGIN … COMMIT they stay.
                if self.tx == "I":
                    self.portals.clear()
                self.send(wire.ready_for_query(self.tx))
                self.flush()
                continue
            if kind == b"H":
                self.flush()
                continue
            if skipping:
                continue
            try:
                self._extended(kind, payload)
            except SqlError as exc:
                self._error(exc)
                skipping = True
            except (struct.error, ValueError, UnicodeDecodeError) as exc:
                self._error(SqlError(PROTOCOL_VIOLATION, f"malformed message: {exc}"))
                skipping = True
            except (Fatal, ConnectionError, OSError):
                raise
            except Exception:
                log.exception("sql api: extended-protocol message %r failed", kind)
                self._error(SqlError(INTERNAL_ERROR, "internal error"))
                skipping = True

    def _error(self, exc: SqlError) -> None:
        if self.tx == "T":
            self.tx = "E"
        self.send(wire.error_response(exc.sqlstate, exc.message, hint=exc.hint))

    # ------------------------------------------------------------------ simple flow

    def _simple(self, sql: str) -> None:
        try:
            trees = self._parse(sql)
        except SqlError as exc:
            self._error(exc)
            return
        if not trees:
            self.send(wire.EMPTY_QUERY)
            return
        for tree in trees:
            try:
                result = self._execute(tree, [])
                if result.notice is not None:
                    self.send(wire.notice(*result.notice))
                if result.fields is not None:
                    self.send(wire.row_description(result.fields))
                    count = self._send_rows(result, None)
                    self.send(wire.command_complete(f"{result.tag} {count}"))
                else:
                    self.send(wire.command_complete(result.tag))
            except SqlError as exc:
                self._error(exc)
                return
            except (Fatal, ConnectionError, TimeoutError):
                raise
            except Exception:
                # A bug must cost the statement, not the connection or the server.
                log.exception("sql api: statement failed: %s", tree.sql("postgres")[:500])
                self._error(SqlError(INTERNAL_ERROR, "internal error"))
                return

    def _send_rows(self, result: Result, max_rows: int | None) -> int:
        # The simple query flow always answers in text.
        encoders = row_encoders(result.fields or [])
        count = 0
        for row in result.buffered:
            self.send(wire.data_row([enc(v) for enc, v in zip(encoders, row, strict=True)]))
            count += 1
        if result.rows is not None:
            for row in result.rows:
                self.send(wire.data_row([enc(v) for enc, v in zip(encoders, row, strict=True)]))
                count += 1
        return count
