"""A real HTTP server on a free loopback port whose answers a test scripts.

The Snowflake and BigQuery clients are real and talk HTTP: pointed at this server (the
URL's ``host=``/``endpoint=`` options), they send Tally's real requests, which a test reads
back, and parse the answers it scripts in the services' documented JSON. Nothing of the
clients is replaced.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[["Request"], tuple[int, dict[str, Any]]]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Endpoint:
    port: int
    requests: list[Request] = field(default_factory=list)

    def to(self, fragment: str) -> list[Request]:
        """The requests whose path contains ``fragment``, in order."""
        return [r for r in self.requests if fragment in r.path]


@contextmanager
def scripted_endpoint(answer: Answer) -> Iterator[Endpoint]:
    """Serves ``answer(request) -> (status, json body)`` on 127.0.0.1 until the block ends."""
    endpoint = Endpoint(port=0)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = Request(self.command, self.path, body)
            with lock:
                endpoint.requests.append(request)
            status, payload = answer(request)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
