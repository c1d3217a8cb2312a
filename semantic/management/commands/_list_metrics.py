"""`tally list metrics [--search TEXT] [--show-all-dimensions]` (as `mf list metrics`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from semantic.management.commands._list_common import (
    add_common,
    entity_split,
    granularity_free,
    items_for,
    manifest_of,
    write,
)

NAME = "metrics"
HELP = "metrics with the dimensions each accepts (mf list metrics)"
# mf shows this many dimensions per metric unless --show-all-dimensions.
SHOWN_DIMENSIONS = 5


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("--search", default=None, help="only metrics whose name contains this")
    parser.add_argument(
        "--show-all-dimensions", action="store_true", help="every dimension, not the first 5"
    )
    add_common(parser, metrics=False)


def handle(command: BaseCommand, opts: dict[str, Any]) -> None:
    release, manifest = manifest_of(opts)
    names = sorted(manifest.metrics)
    if opts["search"]:
        names = [n for n in names if opts["search"].lower() in n.lower()]
    found = []
    for name in names:
        _entities, dimensions = entity_split(items_for(manifest, [name]))
        spec = manifest.metrics[name].spec
        found.append(
            {
                "name": name,
                "type": manifest.metrics[name].type,
                "description": spec.get("description") or None,
                "version": manifest.metrics[name].version,
                "dimensions": granularity_free(dimensions),
            }
        )
    lines = []
    for metric in found:
        dims = metric["dimensions"]
        shown = dims if opts["show_all_dimensions"] else dims[:SHOWN_DIMENSIONS]
        more = len(dims) - len(shown)
        lines.append(
            f"• {metric['name']}: {', '.join(shown)}" + (f" and {more} more" if more else "")
        )
    write(command, opts, {"release": release, "metrics": found}, lines)
