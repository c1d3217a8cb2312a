"""`tally list saved-queries` (as `mf list saved-queries`): names and descriptions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from semantic.management.commands._list_common import add_common, manifest_of, write

NAME = "saved-queries"
HELP = "saved queries with their descriptions (mf list saved-queries)"


def add_arguments(parser: CommandParser) -> None:
    add_common(parser, metrics=False)


def handle(command: BaseCommand, opts: dict[str, Any]) -> None:
    release, manifest = manifest_of(opts)
    found = [
        {
            "name": name,
            "description": saved.get("description") or None,
            "metrics": list((saved.get("query_params") or {}).get("metrics") or []),
        }
        for name, saved in sorted(manifest.saved_queries.items())
    ]
    lines = [f"• {q['name']}: {q['description'] or 'No description provided'}" for q in found]
    write(command, opts, {"release": release, "saved_queries": found}, lines)
