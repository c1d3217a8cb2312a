"""The SQL API server: PostgreSQL wire protocol, one thread per client connection.

Threads rather than asyncio: every statement ends in blocking work (the Django ORM for the
release, a DB-API warehouse driver), and a thread per connection keeps each client's
Django database connection its own. ``TALLY_SQL_MAX_CONNECTIONS`` bounds the threads; a
connection past it gets FATAL 53300 (too_many_connections), as PostgreSQL answers.

Per statement:

* ``SET``/``RESET``/``BEGIN``/``COMMIT``/``ROLLBACK``/``DISCARD``/``DEALLOCATE`` are
  accepted (settings are kept per connection so ``SHOW`` and ``current_setting`` read
  them back); nothing is transactional, the data is read-only.
* a SELECT naming ``tally.metrics`` is mapped onto a MetricQuery (translate.py),
  compiled, and streamed from the warehouse batch by batch (simple query flow) with the
  catalog's types; every other SELECT goes to the catalog (catalog.py).
* writes (INSERT, UPDATE, DELETE, DDL) are 25006 read_only_sql_transaction; COPY and
  other statements are 0A000 feature_not_supported.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from django.conf import settings
from django.db import close_old_connections
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from semantic.sqlapi import wire
from semantic.sqlapi.auth import AuthenticationFailed, Identity, NotAllowed, authenticate_connection
from semantic.sqlapi.catalog import SERVER_VERSION, SessionInfo
from semantic.sqlapi.services import sql_catalog_get, sql_select_compile
from semantic.sqlapi.translate import (
    FEATURE_NOT_SUPPORTED,
    READ_ONLY,
    SYNTAX_ERROR,
    SqlApiError,
    bind_parameters,
    map_select,
    reads_metrics_table,
    unsupported,
)
from semantic.warehouse.execute import CancelScope
from semantic.warehouse.run import ReadyQuery, compiled_prepare, stream_compiled
from tally.errors import TallyError, UserError

log = logging.getLogger(__name__)

QUERY_CANCELED = "57014"
PROGRAM_LIMIT = "54000"
TOO_MANY_CONNECTIONS = "53300"
INVALID_PASSWORD = "28P01"
PROTOCOL_VIOLATION = "08P01"
IN_FAILED_TRANSACTION = "25P02"
INTERNAL_ERROR = "XX000"

MSG_CANCELED = "canceling statement due to user request"
MSG_TIMEOUT = "canceling statement due to statement timeout"
MSG_ROW_CAP = "the result has more than {cap:,} rows (TALLY_SQL_ROW_CAP)"
HINT_ROW_CAP = "add a LIMIT, a coarser time grain or a WHERE"
MSG_IN_FAILED = "current transaction is aborted, commands ignored until end of transaction block"

WRITE_STATEMENTS = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Merge,
)
# SET forms sqlglot leaves as a Command: SET [SESSION|LOCAL] name TO|= value, SET TIME ZONE v.
_SET_COMMAND = re.compile(
    r"^\s*(?:session\s+|local\s+)?(time\s+zone|[\w.]+)\s*(?:\bto\b|=)?\s*(.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_NOISE = re.compile(
    r"^\s*(SAVEPOINT|RELEASE(?:\s+SAVEPOINT)?|ROLLBACK\s+TO(?:\s+SAVEPOINT)?)\b[^;]*;?\s*$",
    re.IGNORECASE,
)
# QueryError codes that mean "no such column" to a SQL client.
_UNDEFINED_CODES = {"unknown_metric", "unknown_dimension", "unreachable_dimension"}
STREAM_BATCH = 2_000
STARTUP_TIMEOUT_S = 30.0
STARTUP_SLOTS = 32


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 5433
    tls_cert: str | None = None
    tls_key: str | None = None
    row_cap: int = 1_000_000
    timeout_s: float = 120.0
    max_connections: int = 200


@dataclass
class Prepared:
    sql: str
    trees: list[exp.Expr]
    param_oids: list[int]


@dataclass
class Portal:
    prepared: Prepared
    params: list[Any]
    result: Result | None = None
    sent: int = 0


@dataclass
class Result:
    """A statement's answer: a command tag, or rows (fields + encoded row iterator)."""

    tag: str
    fields: list[wire.Field] | None = None
    rows: Iterator[list[bytes | None]] | None = None
    buffered: list[list[bytes | None]] = field(default_factory=list)


class SqlError(Exception):
    """Rendered as an ErrorResponse; the connection goes on."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint


class Fatal(Exception):
    """Rendered as a FATAL ErrorResponse; the connection is closed."""

    def __init__(self, sqlstate: str, message: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message


class SqlServer:
    """Accepts connections and runs one :class:`Connection` per client thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._sock: socket.socket | None = None
        self._backends: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # Bounds threads, including connections still in startup (never authenticated).
        self._slots = threading.BoundedSemaphore(config.max_connections + STARTUP_SLOTS)
        self._next_pid = os.getpid() * 1000 % 2**30
        self.tls: ssl.SSLContext | None = None
        if config.tls_cert and config.tls_key:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(config.tls_cert, config.tls_key)

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    def bind(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.config.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        sock.listen(256)
        self._sock = sock

    def serve_forever(self) -> None:
        assert self._sock is not None
        # The catalog is built before the first client so its first query is not slow.
        close_old_connections()
        sql_catalog_get()
        close_old_connections()
        while not self._stopping.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    break
                raise
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._slots.acquire(blocking=False):
                with suppress(OSError):
                    client.sendall(
                        wire.error_response(
                            TOO_MANY_CONNECTIONS,
                            "sorry, too many clients already",
                            severity="FATAL",
                        )
                    )
                    client.close()
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            with suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()

    def register(self, conn: Connection) -> tuple[int, int]:
        with self._lock:
            if len(self._backends) >= self.config.max_connections:
                raise Fatal(TOO_MANY_CONNECTIONS, "sorry, too many clients already")
            self._next_pid = (self._next_pid + 1) % 2**31 or 1
            pid, secret = self._next_pid, secrets.randbits(31)
            self._backends[pid] = conn
        return pid, secret

    def unregister(self, pid: int) -> None:
        with self._lock:
            self._backends.pop(pid, None)

    def cancel(self, pid: int, secret: int) -> None:
        with self._lock:
            conn = self._backends.get(pid)
        # A wrong secret is ignored silently, as PostgreSQL does.
        if conn is not None and secrets.compare_digest(
            struct.pack("!I", conn.secret), struct.pack("!I", secret)
        ):
            conn.cancel_running()

    def _serve(self, client: socket.socket) -> None:
        conn = Connection(self, client)
        try:
            conn.run()
        except Exception:
            log.exception("sql api: connection failed")
        finally:
            self.unregister(conn.pid)
            with suppress(OSError):
                conn.sock.close()
            close_old_connections()
            self._slots.release()


class Connection:
    """One client: startup, authentication, then the query loop."""

    def __init__(self, server: SqlServer, sock: socket.socket) -> None:
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
        self.prepared: dict[str, Prepared] = {}
        self.portals: dict[str, Portal] = {}
        self._cancel_lock = threading.Lock()
        self._cancel: CancelScope | None = None
        self._out: list[bytes] = []

    # ------------------------------------------------------------------ io

    def _recv(self, size: int) -> bytes:
        chunks = []
        while size:
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
        if sum(len(b) for b in self._out) > 1 << 16:
            self.flush()

    def flush(self) -> None:
        if self._out:
            self.sock.sendall(b"".join(self._out))
            self._out.clear()

    def fatal(self, sqlstate: str, message: str) -> None:
        with suppress(OSError):
            self.send(wire.error_response(sqlstate, message, severity="FATAL"))
            self.flush()

    # ------------------------------------------------------------------ startup

    def run(self) -> None:
        try:
            # A client that connects and says nothing must not hold a thread for good.
            self.sock.settimeout(STARTUP_TIMEOUT_S)
            if not self._startup():
                return
            self.sock.settimeout(None)
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
        close_old_connections()
        try:
            self.identity = authenticate_connection(self.user, password)
        except AuthenticationFailed as exc:
            raise Fatal(INVALID_PASSWORD, str(exc)) from None
        except NotAllowed as exc:
            raise Fatal("28000", str(exc)) from None
        finally:
            close_old_connections()
        self.pid, self.secret = self.server.register(self)
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
            kind, payload = self._read_message()
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
                if result.fields is not None:
                    self.send(wire.row_description(result.fields))
                    count = self._send_rows(result, None)
                    self.send(wire.command_complete(f"{result.tag} {count}"))
                else:
                    self.send(wire.command_complete(result.tag))
            except SqlError as exc:
                self._error(exc)
                return
            except Exception:
                # A bug must cost the statement, not the connection or the server.
                log.exception("sql api: statement failed: %s", tree.sql("postgres")[:500])
                self._error(SqlError(INTERNAL_ERROR, "internal error"))
                return

    def _send_rows(self, result: Result, max_rows: int | None) -> int:
        count = 0
        for row in result.buffered:
            self.send(wire.data_row(row))
            count += 1
        if result.rows is not None:
            for row in result.rows:
                self.send(wire.data_row(row))
                count += 1
        return count

    # ------------------------------------------------------------------ extended flow

    def _extended(self, kind: bytes, payload: bytes) -> None:
        reader = wire.Reader(payload)
        if kind == b"P":
            name, sql = reader.cstr(), reader.cstr()
            oids = [reader.int32() & 0xFFFFFFFF for _ in range(reader.int16())]
            trees = self._parse(sql)
            if len(trees) > 1:
                raise SqlError(
                    SYNTAX_ERROR, "cannot insert multiple commands into a prepared statement"
                )
            self.prepared[name] = Prepared(sql, trees, oids)
            self.send(wire.PARSE_COMPLETE)
        elif kind == b"B":
            portal, name = reader.cstr(), reader.cstr()
            prepared = self._statement(name)
            formats = [reader.int16() for _ in range(reader.int16())]
            count = reader.int16()
            values: list[Any] = []
            for index in range(count):
                size = reader.int32()
                raw = None if size < 0 else reader.raw(size)
                fmt = formats[index] if len(formats) > 1 else (formats[0] if formats else 0)
                oid = prepared.param_oids[index] if index < len(prepared.param_oids) else 0
                try:
                    values.append(wire.decode_parameter(raw, oid, fmt))
                except (wire.ProtocolError, ValueError) as exc:
                    raise SqlError("22P02", f"invalid parameter ${index + 1}: {exc}") from None
            result_formats = [reader.int16() for _ in range(reader.int16())]
            if any(result_formats):
                raise SqlError(FEATURE_NOT_SUPPORTED, "binary result format is not supported")
            self.portals[portal] = Portal(prepared, values)
            self.send(wire.BIND_COMPLETE)
        elif kind == b"D":
            target, name = reader.raw(1), reader.cstr()
            if target == b"S":
                prepared = self._statement(name)
                count = _parameter_count(prepared)
                oids = [
                    prepared.param_oids[i]
                    if i < len(prepared.param_oids) and prepared.param_oids[i]
                    else 25
                    for i in range(count)
                ]
                self.send(wire.parameter_description(oids))
                fields = self._describe(prepared, count)
            else:
                portal = self._portal(name)
                fields = self._run_portal(portal).fields
            self.send(wire.row_description(fields) if fields is not None else wire.NO_DATA)
        elif kind == b"E":
            portal = self._portal(reader.cstr())
            max_rows = reader.int32()
            if not portal.prepared.trees:
                self.send(wire.EMPTY_QUERY)
                return
            result = self._run_portal(portal)
            if result.fields is None:
                self.send(wire.command_complete(result.tag))
                return
            # The extended flow buffers the (row-capped) result so Describe can come first;
            # Execute with a row limit resumes where the last one stopped.
            rows = result.buffered
            end = len(rows) if max_rows <= 0 else min(len(rows), portal.sent + max_rows)
            for row in rows[portal.sent : end]:
                self.send(wire.data_row(row))
            portal.sent = end
            if end < len(rows):
                self.send(wire.message(b"s"))  # PortalSuspended
            else:
                self.send(wire.command_complete(f"{result.tag} {len(rows)}"))
        elif kind == b"C":
            target, name = reader.raw(1), reader.cstr()
            (self.prepared if target == b"S" else self.portals).pop(name, None)
            self.send(wire.CLOSE_COMPLETE)
        elif kind in (b"d", b"c", b"f"):
            raise SqlError(FEATURE_NOT_SUPPORTED, "COPY is not supported")
        else:
            raise Fatal(PROTOCOL_VIOLATION, f"invalid frontend message type {kind!r}")

    def _statement(self, name: str) -> Prepared:
        if name not in self.prepared:
            raise SqlError("26000", f'prepared statement "{name}" does not exist')
        return self.prepared[name]

    def _portal(self, name: str) -> Portal:
        if name not in self.portals:
            raise SqlError("34000", f'portal "{name}" does not exist')
        return self.portals[name]

    def _describe(self, prepared: Prepared, count: int) -> list[wire.Field] | None:
        """Row description of a statement before its parameters are known: a metric
        SELECT is mapped only (its columns' types are the catalog's), never run."""
        if not prepared.trees:
            return None
        tree = prepared.trees[0]
        if isinstance(tree, exp.Query) and reads_metrics_table(tree):
            try:
                bound = bind_parameters(tree, [None] * count)
                mapped = map_select(
                    bound, sql_catalog_get().table, dialect=settings.WAREHOUSE.dialect
                )
            except SqlApiError as exc:
                raise SqlError(exc.sqlstate, exc.message, exc.hint) from None
            return [wire.Field(shown, wire.OIDS[c.pg_type]) for shown, _n, c in mapped.outputs]
        return self._run_portal(Portal(prepared, [None] * count)).fields

    def _run_portal(self, portal: Portal) -> Result:
        if portal.result is None:
            trees = portal.prepared.trees
            if not trees:
                portal.result = Result(tag="")
            else:
                result = self._execute(trees[0], portal.params)
                if result.rows is not None:
                    result.buffered = list(result.rows)
                    result.rows = None
                portal.result = result
        return portal.result

    # ------------------------------------------------------------------ statements

    def _parse(self, sql: str) -> list[exp.Expr]:
        noise = _NOISE.match(sql)
        if noise is not None:
            # Savepoints (psycopg's nested transactions) mean nothing on read-only data, and
            # sqlglot reads some of their forms as other statements.
            keyword = " ".join(noise.group(1).upper().split())
            return [exp.Command(this=keyword, expression=exp.Literal.string(""))]
        try:
            return [t for t in sqlglot.parse(sql, read="postgres") if t is not None]
        except (ParseError, TokenError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else "syntax error"
            raise SqlError(SYNTAX_ERROR, f"syntax error: {first}") from None

    def _execute(self, tree: exp.Expr, params: Sequence[Any]) -> Result:
        if self.tx == "E" and not _is_transaction_end(tree):
            raise SqlError(IN_FAILED_TRANSACTION, MSG_IN_FAILED)
        try:
            if params or any(isinstance(n, exp.Parameter) for n in tree.walk()):
                tree = bind_parameters(tree, params)
            return self._dispatch(tree)
        except SqlApiError as exc:
            raise SqlError(exc.sqlstate, exc.message, exc.hint) from None
        except TallyError as exc:
            raise _tally_sql_error(exc) from None

    def _dispatch(self, tree: exp.Expr) -> Result:
        if isinstance(tree, exp.Transaction):
            self.tx = "T"
            return Result(tag="BEGIN")
        if isinstance(tree, exp.Commit):
            self.tx = "I"
            return Result(tag="COMMIT")
        if isinstance(tree, exp.Rollback):
            self.tx = "I"
            return Result(tag="ROLLBACK")
        if isinstance(tree, exp.Set):
            return self._set(tree)
        if isinstance(tree, exp.Show):
            return self._show(tree.name)
        if isinstance(tree, WRITE_STATEMENTS):
            raise SqlError(
                READ_ONLY, f"cannot execute {tree.key.upper()} in a read-only transaction"
            )
        if isinstance(tree, exp.Copy):
            raise unsupported("COPY")
        if isinstance(tree, exp.Command):
            return self._command(tree)
        if isinstance(tree, exp.Query):
            if reads_metrics_table(tree):
                return self._metrics(tree)
            return self._catalog(tree)
        raise unsupported(f"{tree.key.upper()} statement")

    def _command(self, tree: exp.Command) -> Result:
        keyword = str(tree.this).upper()
        rest = tree.expression.name if isinstance(tree.expression, exp.Expr) else ""
        if keyword == "SHOW":
            return self._show(rest)
        if keyword == "SET":
            match = _SET_COMMAND.match(rest)
            if match is None:
                raise SqlError(SYNTAX_ERROR, f"cannot read SET {rest}")
            key = " ".join(match.group(1).lower().split())
            key = "timezone" if key == "time zone" else key
            self.settings[key] = match.group(2).strip().strip("'\"")
            return Result(tag="SET")
        if keyword in ("BEGIN", "START"):
            self.tx = "T"
            return Result(tag="BEGIN")
        if keyword in ("END", "ABORT"):
            self.tx = "I"
            return Result(tag="COMMIT" if keyword == "END" else "ROLLBACK")
        tags = {
            "DISCARD": "DISCARD ALL",
            "DEALLOCATE": "DEALLOCATE",
            "RESET": "RESET",
            "LISTEN": "LISTEN",
            "UNLISTEN": "UNLISTEN",
            "SAVEPOINT": "SAVEPOINT",
            "RELEASE": "RELEASE",
            "CLOSE": "CLOSE ALL",
        }
        if keyword in tags:
            return Result(tag=tags[keyword])
        if keyword in ("COPY",):
            raise unsupported("COPY")
        if keyword in (
            "GRANT",
            "REVOKE",
            "VACUUM",
            "ANALYZE",
            "COMMENT",
            "REFRESH",
            "CALL",
            "DO",
            "LOCK",
            "REINDEX",
            "CLUSTER",
        ):
            raise SqlError(READ_ONLY, f"cannot execute {keyword} in a read-only transaction")
        raise unsupported(f"{keyword} statement")

    def _set(self, tree: exp.Set) -> Result:
        for item in tree.expressions:
            assignment = item.this if isinstance(item, exp.SetItem) else item
            if isinstance(assignment, exp.EQ | exp.PropertyEQ):
                key = assignment.left.name.lower()
                value = assignment.right
                text = (
                    value.name
                    if isinstance(value, exp.Literal | exp.Column | exp.Identifier)
                    else value.sql("postgres")
                )
                if key in ("time zone", "timezone"):
                    key = "timezone"
                self.settings[key] = text
        return Result(tag="SET")

    def _show(self, name: str) -> Result:
        key = name.strip().strip('"').lower()
        if key == "all":
            fields = [
                wire.Field("name", wire.OIDS["text"]),
                wire.Field("setting", wire.OIDS["text"]),
            ]
            rows = [[k.encode(), v.encode()] for k, v in sorted(self.settings.items())]
            return Result(tag="SHOW", fields=fields, rows=iter(rows))
        if key == "transaction isolation level":
            key = "transaction_isolation"
        value = self.settings.get(key)
        if value is None:
            raise SqlError("42704", f'unrecognized configuration parameter "{name}"')
        return Result(
            tag="SHOW", fields=[wire.Field(key, wire.OIDS["text"])], rows=iter([[value.encode()]])
        )

    def _catalog(self, tree: exp.Expr) -> Result:
        catalog = sql_catalog_get()
        config = self.server.config
        scope = self._begin()
        try:
            fields, rows = catalog.run(
                tree,
                SessionInfo(user=self.user, database=self.database, pid=self.pid),
                self.settings,
                timeout_s=config.timeout_s,
                on_start=scope.bind,
                row_cap=config.row_cap,
            )
        except Exception as exc:
            if scope.requested:
                raise SqlError(QUERY_CANCELED, MSG_CANCELED) from None
            import duckdb

            if isinstance(exc, duckdb.InterruptException):
                raise SqlError(QUERY_CANCELED, MSG_TIMEOUT) from None
            if isinstance(exc, duckdb.Error):
                raise SqlError(_duckdb_sqlstate(exc), _duckdb_message(exc)) from None
            raise
        finally:
            self._end()
        if len(rows) > config.row_cap:
            raise SqlError(PROGRAM_LIMIT, MSG_ROW_CAP.format(cap=config.row_cap), HINT_ROW_CAP)
        encoders = [wire.text_encoder(oid) for _, oid in fields]
        encoded = ([enc(v) for enc, v in zip(encoders, row, strict=True)] for row in rows)
        tag = "SELECT"
        return Result(tag=tag, fields=[wire.Field(name, oid) for name, oid in fields], rows=encoded)

    def _metrics(self, tree: exp.Expr) -> Result:
        close_old_connections()
        try:
            catalog = sql_catalog_get()
            assert self.identity is not None
            mapped, compiled = sql_select_compile(
                select=tree,
                table=catalog.table,
                principal=self.identity.principal,
                acting_user=self.identity.account,
            )
            ready = compiled_prepare(compiled)
        finally:
            close_old_connections()
        names = [c.lower() for c in compiled.columns]
        picks = []
        for _shown, name, _column in mapped.outputs:
            picks.append(names.index(name.lower()))
        fields = [
            wire.Field(shown, wire.OIDS[column.pg_type]) for shown, _name, column in mapped.outputs
        ]
        encoders = [wire.text_encoder(f.type_oid) for f in fields]
        return Result(tag="SELECT", fields=fields, rows=self._stream_rows(ready, picks, encoders))

    def _stream_rows(
        self,
        ready: ReadyQuery,
        picks: list[int],
        encoders: list[Callable[[Any], bytes | None]],
    ) -> Iterator[list[bytes | None]]:
        config = self.server.config
        scope = self._begin()
        try:
            with stream_compiled(
                ready,
                timeout_s=config.timeout_s,
                row_cap=config.row_cap,
                batch_size=STREAM_BATCH,
                cancel=scope,
            ) as (_columns, batches):
                for batch in batches:
                    if scope.requested:
                        raise SqlError(QUERY_CANCELED, MSG_CANCELED)
                    for row in batch:
                        yield [encoders[i](row[p]) for i, p in enumerate(picks)]
                if batches.truncated:
                    raise SqlError(
                        PROGRAM_LIMIT, MSG_ROW_CAP.format(cap=config.row_cap), HINT_ROW_CAP
                    )
        except TallyError as exc:
            if scope.requested:
                raise SqlError(QUERY_CANCELED, MSG_CANCELED) from None
            raise _tally_sql_error(exc) from None
        finally:
            self._end()

    # ------------------------------------------------------------------ cancel

    def _begin(self) -> CancelScope:
        scope = CancelScope()
        with self._cancel_lock:
            self._cancel = scope
        return scope

    def _end(self) -> None:
        with self._cancel_lock:
            self._cancel = None

    def cancel_running(self) -> None:
        with self._cancel_lock:
            scope = self._cancel
        if scope is not None:
            scope.cancel()


def _parameter_count(prepared: Prepared) -> int:
    count = len(prepared.param_oids)
    for tree in prepared.trees:
        for node in tree.find_all(exp.Parameter):
            if isinstance(node.this, exp.Literal) and str(node.this.this).isdigit():
                count = max(count, int(node.this.this))
    return count


def _is_transaction_end(tree: exp.Expr) -> bool:
    if isinstance(tree, exp.Commit | exp.Rollback):
        return True
    return isinstance(tree, exp.Command) and (
        str(tree.this).upper() in ("END", "ABORT") or str(tree.this).upper().startswith("ROLLBACK")
    )


def _duckdb_sqlstate(exc: Exception) -> str:
    import duckdb

    if isinstance(exc, duckdb.CatalogException):
        return "42P01"
    if isinstance(exc, duckdb.BinderException):
        return "42703"
    if isinstance(exc, duckdb.ParserException):
        return SYNTAX_ERROR
    if isinstance(exc, duckdb.PermissionException):
        return "42501"
    return "XX000"


_DUCKDB_MISSING_TABLE = re.compile(r"Table with name (\S+) does not exist")


def _duckdb_message(exc: Exception) -> str:
    # The catalog engine is an implementation detail: say it the way PostgreSQL does.
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    missing = _DUCKDB_MISSING_TABLE.search(first)
    if missing:
        return f'relation "{missing.group(1)}" does not exist'
    return re.sub(r"^\w+ Error: ", "", first)


def _tally_sql_error(exc: TallyError) -> SqlError:
    if not isinstance(exc, UserError):
        log.error("sql api: internal error %s", exc)
        return SqlError(INTERNAL_ERROR, "internal error")
    if exc.code in _UNDEFINED_CODES:
        sqlstate = "42703"
    elif exc.code == "warehouse_timeout":
        sqlstate = QUERY_CANCELED
    elif exc.code == "warehouse_unavailable":
        sqlstate = "08006"
    elif exc.code == "warehouse_error":
        sqlstate = "58000"
    elif exc.code == "bad_where":
        sqlstate = SYNTAX_ERROR
    else:
        sqlstate = "22023"
    message = exc.message
    return SqlError(sqlstate, message, exc.hint)


def serve(config: ServerConfig, *, ready: Callable[[SqlServer], None] | None = None) -> None:
    """Binds, reports through ``ready`` (the bound server), and serves until stopped."""
    # sqlglot warns on every SET/SHOW it reads as a plain command; those are expected here.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    server = SqlServer(config)
    server.bind()
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.stop()
