from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import CommandParser
from django.db import connections

from tally.management.base import TallyCommand
from tally.mcp.caller import caller_authenticate

TOKEN_ENV = "TALLY_TOKEN"


class Command(TallyCommand):
    help = (
        "Serve the Model Context Protocol for AI agents: over stdio as the owner of an API "
        "token (--token or TALLY_TOKEN), or with --http the web app with its /mcp endpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--token",
            default=None,
            help=f"API token every call runs as (default: ${TOKEN_ENV}); stdio only",
        )
        parser.add_argument(
            "--http",
            action="store_true",
            help="serve streamable HTTP at /mcp (with the web app) instead of stdio; each "
            "request's Authorization: Bearer token decides who calls",
        )
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000, help="0: any free port")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["http"]:
            self._serve_http(opts["host"], opts["port"])
            return
        raw = opts["token"] or os.environ.get(TOKEN_ENV)
        # Refuse a missing or dead token now, with the hint, rather than on every call.
        caller_authenticate(raw)
        # The check ran on this thread; the tools run on asgiref's, with their own connection.
        connections.close_all()
        from tally.mcp.server import build_server
        from tally.mcp.stdio import serve_stdio

        serve_stdio(build_server(stdio_token=raw))

    def _serve_http(self, host: str, port: int) -> None:
        import uvicorn

        from tally.asgi import application
        from tally.mcp.http import listening_socket

        # Bound and listening before the address is printed, so a client that reads the
        # line can connect at once (its connection waits in the backlog until uvicorn runs).
        sock = listening_socket(host, port)
        bound = sock.getsockname()
        print(f"tally mcp: listening on http://{bound[0]}:{bound[1]}/mcp", flush=True)
        # httptools: the C parser; h11 (pure Python) cost ~0.5 ms CPU a call (issue #19). No
        # access log: at level warning it printed nothing, yet each request still formatted
        # its client address and path for it.
        config = uvicorn.Config(
            application, log_level="warning", lifespan="on", http="httptools", access_log=False
        )
        uvicorn.Server(config).run(sockets=[sock])
        sys.stdout.flush()
