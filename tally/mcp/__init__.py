"""The Model Context Protocol server: Tally's governed metrics for AI agents.

``tally mcp`` serves it over stdio (the token comes from ``--token`` or ``TALLY_TOKEN``);
the web app's ASGI entry (``tally/asgi.py``) serves it over streamable HTTP at ``/mcp``,
where each request's ``Authorization: Bearer`` token decides who calls. Either way the
tools call the same services the HTTP API's views call (``operations.py``), so row policies,
PII masks, rate limits and the audit log apply exactly as over HTTP.
"""
