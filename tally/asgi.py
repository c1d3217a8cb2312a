"""ASGI entry point: the web app, with the MCP server's streamable HTTP endpoint at /mcp
(``uvicorn tally.asgi:application``; ``tally mcp --http`` runs exactly this)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tally.settings")
django_application = get_asgi_application()

# After Django is set up: the MCP tools import models and services.
from tally.mcp.http import with_mcp  # noqa: E402

application = with_mcp(django_application)
