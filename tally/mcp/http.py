"""The MCP server over streamable HTTP, mounted in the web app's ASGI entry at ``/mcp``.

Stateless by default and JSON-answering: each POST is one exchange with its own
``Authorization: Bearer`` token, so any web process can answer any request (no session
affinity behind a load balancer), as for the HTTP API.

With ``TALLY_MCP_SESSIONS=1`` the SDK keeps a session per client that initializes (the
``Mcp-Session-Id`` it answers with), for one web process or sticky sessions: the SDK then
serves each call on the session's running server instead of setting one up per request
(issue #19). A session opens only for a valid token and serves only that token (another
gets 404, as for an unknown session), and every tool call still checks its request's token,
so a revoked token stops at once. Clients of the 2026-07-28 protocol (per-request envelope,
no session) are served as before either way.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER, X_MCP_HEADER_KEY
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from tally.errors import UserError
from tally.mcp.caller import HINT_NO_TOKEN, MSG_NO_TOKEN, bearer
from tally.mcp.server import as_caller, build_server

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
        stateless_http=not settings.TALLY_MCP_SESSIONS,
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
    sessions = settings.TALLY_MCP_SESSIONS

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await mcp_app(scope, receive, send)
        elif scope["type"] == "http" and scope["path"].rstrip("/") == MCP_PATH:
            raw = _bearer_of(scope)
            if raw is None:
                await _unauthorized(send, MSG_NO_TOKEN, HINT_NO_TOKEN)
                return
            if sessions:
                if _opens_session(scope):
                    # A session is state kept for its client: only a valid token opens one.
                    refused = await _token_refused(raw)
                    if refused is not None:
                        await _unauthorized(send, refused.message, refused.hint)
                        return
                # The SDK serves a session to the credential that opened it alone.
                scope = {**scope, "user": _session_owner(raw)}
            # The token itself is checked on every tool call (revocation, expiry).
            await mcp_handler(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return app


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _bearer_of(scope: dict[str, Any]) -> str | None:
    return bearer(_header(scope, b"authorization"))


_SESSION_ID = MCP_SESSION_ID_HEADER.lower().encode()
_PROTOCOL_VERSION = MCP_PROTOCOL_VERSION_HEADER.lower().encode()


def _opens_session(scope: dict[str, Any]) -> bool:
    """Whether the SDK would open a session for this request: a handshake-era request (no
    protocol version header, or one the initialize handshake reaches) without a session
    id. The SDK refuses such a request unless it is an initialize."""
    version = _header(scope, _PROTOCOL_VERSION)
    legacy = version is None or version in HANDSHAKE_PROTOCOL_VERSIONS
    return legacy and _header(scope, _SESSION_ID) is None


def _token_check(raw: str) -> UserError | None:
    try:
        as_caller(raw, lambda caller: None)
    except UserError as exc:
        return exc
    return None


# On Django's thread for sync code, as the tools check tokens.
_token_refused = sync_to_async(_token_check, thread_sensitive=True)


def _session_owner(raw: str) -> AuthenticatedUser:
    """The token as the SDK's session manager compares credentials (a digest: sessions
    never hold the token itself)."""
    digest = hashlib.sha256(raw.encode()).hexdigest()
    return AuthenticatedUser(AccessToken(token=digest, client_id=digest, scopes=[]))


async def _unauthorized(send: Any, message: str, hint: str | None) -> None:
    # As the HTTP API answers a request without credentials: 401, WWW-Authenticate, and the
    # error body every Tally interface uses.
    body = json.dumps(
        {"error": {"code": "not_authenticated", "message": message, "hint": hint}}
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"www-authenticate", b'Bearer realm="tally"'),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
