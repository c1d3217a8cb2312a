"""Registry connections of long-lived threads (the SQL API's sessions, the MCP thread)."""

from __future__ import annotations

from django.db import connections


def connections_keep() -> None:
    """Keeps this thread's registry connections from call to call, replacing one that an
    error, a dropped server or an unfinished transaction left unusable.

    Django's per-request close (CONN_MAX_AGE=0 on SQLite) would make every SQL statement and
    MCP call reconnect, which cost more than the whole query (~5 ms CPU a call on SQLite,
    closing the last connection checkpoints the log; a TCP and TLS handshake on
    PostgreSQL). The thread closes its connections when it ends (``connections.close_all``).
    """
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"] or not conn.is_usable():
            conn.close()
        else:
            conn.errors_occurred = False
