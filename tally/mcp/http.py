"""The MCP server over streamable HTTP, mounted in the web app's ASGI entry at ``/mcp``.

Stateless and JSON-answering: each POST is one exchange with its own ``Authorization:
Bearer`` token, so any web process can answer any request (no session affinity behind a
load balancer), as for the HTTP API.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.inbound import X_MCP_HEADER_KEY

from tally.mcp.caller import HINT_NO_TOKEN, MSG_NO_TOKEN, bearer
from tally.mcp.server import build_server

MCP_PATH = "/mcp"
ASGIApp = Any


def transport_security() -> TransportSecuritySettings:
    """Host/Origin checks (DNS rebinding) from the web app's own ALLOWED_HOSTS and
    CSRF_TRUSTED_ORIGINS; a wildcard there (``*``, ``.example.com``) turns them off, as
    Django would accept those hosts too."""
    hosts = [h for h in settings.ALLOWED_HOSTS if h]
    if any(h == "*" or h.startswith(".") for h in hosts):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    allowed_hosts = [*hosts, *(f"{h}:*" for h in hosts)]
    origins = [
        *settings.CSRF_TRUSTED_ORIGINS,
        *(
            f"{scheme}://{h}{port}"
            for h in hosts
            for scheme in ("http", "https")
            for port in ("", ":*")
        ),
    ]
    return TransportSecuritySettings(allowed_hosts=allowed_hosts, allowed_origins=origins)


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket for uvicorn, its protocol said to be TCP.

    asyncio turns Nagle's algorithm off (TCP_NODELAY) on an accepted connection only when
    the listening socket's ``proto`` is IPPROTO_TCP; ``socket.create_server`` leaves it 0.
    With Nagle on, the body of every answer (sent after its headers) waited for the
    client's delayed ACK: about 40 ms added to each call.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


def mcp_asgi_app() -> tuple[ASGIApp, ASGIApp]:
    """The MCP endpoint: its Starlette app (whose lifespan runs the session manager) and the
    session manager's request handler, which the app's one route, ``/mcp``, calls."""
    server = build_server()
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        transport_security=transport_security(),
        max_request_body_size=settings.TALLY_MAX_BODY_BYTES,
    )
    lowlevel = server._lowlevel_server
    lowlevel.get_tool_input_schema = header_schema_lookup(lowlevel.get_tool_input_schema)
    return app, server.session_manager.handle_request


def header_schema_lookup(
    lookup: Callable[[str], Mapping[str, Any] | None] | None,
) -> Callable[[str], Mapping[str, Any] | None] | None:
    """The SDK's tool input-schema lookup for ``Mcp-Param-*`` header validation, answering
    None (nothing to validate) for a tool whose schema annotates no property with
    ``x-mcp-header``.

    The SDK walks the called tool's whole input schema on every ``tools/call`` POST to find
    such annotations (issue #19: ~0.1 ms a call); with none, its validation accepts every
    request whatever its headers, so skipping it answers the same. Decided once per schema.
    """
    if lookup is None:
        return None
    decided: dict[str, tuple[Mapping[str, Any], bool]] = {}

    def find(name: str) -> Mapping[str, Any] | None:
        schema = lookup(name)
        if schema is None:
            return None
        known = decided.get(name)
        if known is None or known[0] is not schema:
            known = (schema, _mentions(schema, X_MCP_HEADER_KEY))
            decided[name] = known
        return schema if known[1] else None

    return find


def _mentions(node: Any, key: str) -> bool:
    """Whether any object inside a JSON value has ``key`` (a superset of the schema
    positions the SDK walks)."""
    if isinstance(node, Mapping):
        return key in node or any(_mentions(v, key) for v in node.values())
    if isinstance(node, list):
        return any(_mentions(v, key) for v in node)
    return False


def with_mcp(django_app: ASGIApp) -> ASGIApp:
    """The web app with the MCP endpoint: ``/mcp`` and the lifespan events (the MCP app's
    request task group lives for the server's lifetime) go to MCP, the rest to Django.

    A request to ``/mcp`` goes straight to the session manager's handler, the endpoint of
    the Starlette app's one route: its middleware and router only found that route again
    (uvicorn answers 500 to an exception as Starlette's error middleware would)."""
    mcp_app, mcp_handler = mcp_asgi_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await mcp_app(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].rstrip("/") == MCP_PATH:
            if _bearer_of(scope) is None:
                await _unauthorized(send)
            else:
                # The token itself is checked on every tool call (revocation, expiry).
                await mcp_handler(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app


def _bearer_of(scope: dict[str, Any]) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"authorization":
            return bearer(value.decode("latin-1"))
    return None


async def _unauthorized(send: Any) -> None:
    # As the HTTP API answers a request without credentials: 401, WWW-Authenticate, and the
    # error body every Tally interface uses.
    body = json.dumps(
        {"error": {"code": "not_authenticated", "message": MSG_NO_TOKEN, "hint": HINT_NO_TOKEN}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"www-authenticate", b'Bearer realm="tally"'),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
