"""``runserver`` whose request threads close their registry connections (issue 23).

Django's development server starts a new thread for every request. With persistent
connections (CONN_MAX_AGE, see tally/env.py) each of those threads opened its own registry
connection and left it open when it ended: ``close_old_connections`` keeps a connection
younger than CONN_MAX_AGE, and the dead thread's connection was closed only when the garbage
collector happened to reach it. Under a soak PostgreSQL ran out of connections. The server
here closes the thread's connections when the request's socket is shut down, on the thread
that served it (as Django's ThreadedWSGIServer does for LiveServerTestCase).
"""

from __future__ import annotations

from typing import Any

from django.contrib.staticfiles.management.commands.runserver import (
    Command as StaticFilesRunserver,
)
from django.core.servers.basehttp import WSGIServer
from django.db import connections


class RequestThreadWSGIServer(WSGIServer):
    """Closes the serving thread's database connections once its request is done."""

    def close_request(self, request: Any) -> None:
        # socketserver calls this from the request's own thread (ThreadingMixIn's
        # process_request_thread → shutdown_request), after the response was written and
        # request_finished sent: the connections closed are that thread's alone.
        try:
            connections.close_all()
        finally:
            super().close_request(request)


class Command(StaticFilesRunserver):
    # runserver --nothreading serves on the main thread; closing there costs one connect
    # per request, which a development server can afford.
    server_cls = RequestThreadWSGIServer
