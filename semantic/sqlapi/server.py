"""The SQL API server: PostgreSQL wire protocol, one thread per client connection.

Threads rather than asyncio: every statement ends in blocking work (the Django ORM for the
release, a DB-API warehouse driver), and a thread per connection keeps each client's
Django database connection its own. ``TALLY_SQL_MAX_CONNECTIONS`` bounds the authenticated
sessions; a connection past it gets FATAL 53300 (too_many_connections), as PostgreSQL
answers. Connections still in startup and authentication never take one of those slots:
they are capped per client address (``TALLY_SQL_MAX_UNAUTH_PER_ADDRESS``) and in total
(``TALLY_SQL_MAX_UNAUTH``), refused with FATAL 53300 past either, and closed when they have
not authenticated within ``TALLY_SQL_AUTH_TIMEOUT_S``; so idle sockets from one address
cannot lock other clients out, and the threads stay bounded by the sum of the caps.

Parsing a query holds the GIL but runs in the connection's own thread, so a long parse
slows other connections rather than stopping them; ``TALLY_SQL_MAX_QUERY_BYTES`` bounds it.

Per statement:

* ``SET``/``RESET``/``DISCARD``/``DEALLOCATE`` are accepted (settings are kept per
  connection so ``SHOW`` and ``current_setting`` read them back); transaction statements
  get PostgreSQL's tags, warnings and status (transactions.py), though nothing is
  transactional: the data is read-only.
* a SELECT naming ``tally.metrics`` is mapped onto a MetricQuery (translate.py),
  compiled, and streamed from the warehouse batch by batch (simple query flow) with the
  catalog's types; every other SELECT goes to the catalog (catalog.py).
* writes (INSERT, UPDATE, DELETE, DDL) are 25006 read_only_sql_transaction; COPY and
  other statements are 0A000 feature_not_supported.

Modules: ``session`` (connection state, SQLSTATEs, error mapping), ``connection`` (I/O,
startup and authentication, the message loop, the simple query flow), ``extended`` (the
extended query protocol), ``statements`` (statement execution), and this one (accepting
connections, cancel requests, the connection limit).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import ssl
import struct
import threading
from collections.abc import Callable
from contextlib import suppress

from django.conf import settings
from django.db import close_old_connections, connections

from semantic.sqlapi import wire
from semantic.sqlapi.connection import Connection
from semantic.sqlapi.pool import ExecutionPool
from semantic.sqlapi.services import sql_catalog_get
from semantic.sqlapi.session import (
    MSG_TOO_MANY_UNAUTH,
    MSG_TOO_MANY_UNAUTH_TOTAL,
    TOO_MANY_CONNECTIONS,
    Fatal,
    ServerConfig,
)
from semantic.warehouse.held import HeldDuckDB
from tally.logs import new_request_id, request_id_bind
from tally.metrics import SQL_CONNECTIONS

__all__ = ["Connection", "ServerConfig", "SqlServer", "serve"]

log = logging.getLogger(__name__)


class SqlServer:
    """Accepts connections and runs one :class:`Connection` per client thread."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._sock: socket.socket | None = None
        self._backends: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        # Connections not authenticated yet, per client address (and their sum).
        self._unauth: dict[str, int] = {}
        self._unauth_total = 0
        self._next_pid = os.getpid() * 1000 % 2**30
        # Metric queries of every connection share these slots (memory ~ slots, not clients).
        warehouse = settings.WAREHOUSE
        held = None
        if warehouse.engine == "duckdb" and warehouse.path and warehouse.path != ":memory:":
            held = HeldDuckDB(warehouse.path, idle_s=config.warehouse_idle_s)
        self.pool = ExecutionPool(
            slots=config.exec_slots,
            queue=config.exec_queue,
            wait_s=config.exec_wait_s,
            warehouse=held,
        )
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

    def warm(self) -> None:
        """Builds the catalog (seconds, more under load) so the first client waits for none."""
        close_old_connections()
        sql_catalog_get()
        close_old_connections()

    def serve_forever(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                client, peer = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    break
                raise
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            refusal = self._unauth_admit(address)
            if refusal is not None:
                with suppress(OSError):
                    client.settimeout(1.0)
                    client.sendall(
                        wire.error_response(TOO_MANY_CONNECTIONS, refusal, severity="FATAL")
                    )
                with suppress(OSError):
                    client.close()
                continue
            conn = Connection(self, client)
            conn.unauth_address = address
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self.pool.warehouse is not None:
            self.pool.warehouse.release()
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

    def _unauth_admit(self, address: str) -> str | None:
        """Counts a new connection as unauthenticated; the refusal message past a cap."""
        with self._lock:
            if self._unauth_total >= self.config.max_unauth:
                return MSG_TOO_MANY_UNAUTH_TOTAL
            if self._unauth.get(address, 0) >= self.config.max_unauth_per_address:
                return MSG_TOO_MANY_UNAUTH.format(address=address)
            self._unauth[address] = self._unauth.get(address, 0) + 1
            self._unauth_total += 1
        return None

    def authenticated(self, conn: Connection) -> None:
        """The connection no longer counts as unauthenticated (authenticated, or gone);
        calling it again changes nothing."""
        with self._lock:
            address, conn.unauth_address = conn.unauth_address, None
            if address is None:
                return
            self._unauth_total -= 1
            left = self._unauth.get(address, 0) - 1
            if left > 0:
                self._unauth[address] = left
            else:
                self._unauth.pop(address, None)

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

    def _serve(self, conn: Connection) -> None:
        # Log lines of this connection carry one id (the thread starts with a fresh context).
        request_id_bind(f"sql-{new_request_id()}")
        SQL_CONNECTIONS.inc()
        try:
            conn.run()
        except Exception:
            log.exception("sql api: connection failed")
        finally:
            self.authenticated(conn)
            self.unregister(conn.pid)
            with suppress(OSError):
                conn.sock.close()
            # This thread ends here: close its registry connection. close_old_connections
            # keeps one younger than CONN_MAX_AGE open, and a dead thread's connection stays
            # open until the garbage collector finds it (the soak's BI clients reconnecting
            # every few seconds used up PostgreSQL's max_connections within 40 s).
            connections.close_all()
            SQL_CONNECTIONS.dec()


def serve(config: ServerConfig, *, ready: Callable[[SqlServer], None] | None = None) -> None:
    """Binds, reports through ``ready`` (the bound server), and serves until stopped."""
    # sqlglot warns on every SET/SHOW it reads as a plain command; those are expected here.
    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    server = SqlServer(config)
    # Warm before binding and saying so: a client that connected to a port announced before
    # the catalog was built waited for it unanswered, past its connect timeout under load
    # (the soak's first SQL connections all timed out at 30 s).
    server.warm()
    server.bind()
    if ready is not None:
        ready(server)
    try:
        server.serve_forever()
    finally:
        server.stop()
