"""What `tally mcp` lists (tools with their descriptions and input and output schemas, the
resource templates) is the interface agents are prompted with: it changes only on purpose."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from tally.mcp.server import build_server
from tests.conftest import in_own_thread

GOLDEN = Path(__file__).parent / "golden" / "listing.json"


def _listing() -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        # Listing reads no token and no database: any token string builds the server.
        async with Client(build_server(stdio_token="tly_unused")) as client:
            tools = await client.list_tools()
            templates = await client.list_resource_templates()
            resources = await client.list_resources()
        return {
            "tools": [t.model_dump(mode="json") for t in tools.tools],
            "templates": [t.model_dump(mode="json") for t in templates.resource_templates],
            "resources": [r.model_dump(mode="json") for r in resources.resources],
        }

    result: dict[str, Any] = in_own_thread(anyio.run, main)
    return result


def test_tools_and_resources_are_listed_as_the_golden_file() -> None:
    """Folding the compile and query tools' shared arguments into type aliases kept every
    tool's input and output schema and description as they were (the golden file was
    written from the server before the fold). Since then compile and query also take
    min_max_only and apply_group_by, the API's options of a query without metrics, and
    having, the filter on the aggregated rows."""
    expected = json.loads(GOLDEN.read_text())
    assert _listing() == expected
