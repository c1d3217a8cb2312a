"""A one-tool MCP server for the stdio transport's tests: ``python -m
tests.tally.mcp.stdio_echo [sdk]`` serves over Tally's transport, or with ``sdk`` over the
SDK's own (the reference the tests compare against)."""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

from tally.mcp.stdio import serve_stdio

server = MCPServer("echo")


@server.tool()
def echo(text: str) -> str:
    """Answers ``text``."""
    return text


if __name__ == "__main__":
    if sys.argv[1:] == ["sdk"]:
        server.run("stdio")
    else:
        serve_stdio(server)
