"""What `tally list metrics|dimensions|entities|saved-queries` share: the release's manifest,
the group-by items of metrics as mf names them (granularity-free), and text/JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registry.selectors import release_get
from semantic.compiler.api import common_queryable_items, queryable_items
from semantic.compiler.grains import GRAINS
from semantic.compiler.manifest import Manifest
from semantic.management.commands._query_args import list_option
from semantic.services import manifest_for_release


def add_common(parser: CommandParser, *, metrics: bool) -> None:
    """``--release`` and ``--format`` for every list; ``--metrics`` where mf has it."""
    if metrics:
        parser.add_argument(
            "--metrics",
            action="append",
            default=[],
            help="only what these metrics accept (intersection), e.g. --metrics revenue,mrr",
        )
    parser.add_argument("--release", default=None, help="pin a release (default: latest)")
    parser.add_argument("--format", choices=["text", "json"], default="text")


def manifest_of(opts: dict[str, Any]) -> tuple[str, Manifest]:
    release = release_get(opts.get("release"))
    return release.name, manifest_for_release(release)


def granularity_free(items: Iterable[str]) -> list[str]:
    """Group-by items without their grain suffix, deduplicated, in order (mf's names).

    Example:
        >>> granularity_free(["metric_time", "metric_time__day", "account__plan"])
        ['metric_time', 'account__plan']
    """
    seen: dict[str, None] = {}
    for item in items:
        head, _, last = item.rpartition("__")
        seen.setdefault(head if head and last in GRAINS else item, None)
    return list(seen)


def items_for(manifest: Manifest, metrics: Sequence[str]) -> list[str]:
    """The group-by items all of ``metrics`` accept (every metric's, united, when none)."""
    names = list(metrics) or list(manifest.metrics)
    if not names:
        return []
    if metrics:
        return common_queryable_items(manifest, names)
    united: dict[str, None] = {}
    for name in names:
        united.update(dict.fromkeys(queryable_items(manifest, name)))
    return sorted(united)


def entity_split(items: Sequence[str]) -> tuple[list[str], list[str]]:
    """(entities, dimensions) of granularity-free items: an entity is a single name (the
    compiler lists each entity reachable from a metric as its bare name)."""
    free = granularity_free(items)
    entities = sorted(item for item in free if "__" not in item and item != "metric_time")
    # `account__account` is the account entity reached through itself: not a dimension.
    dimensions = [
        item for item in free if "__" in item or item == "metric_time"
        if item.rpartition("__")[2] not in entities
    ]  # fmt: skip
    return entities, dimensions


def write_split(command: BaseCommand, opts: dict[str, Any], *, entities: bool) -> None:
    """`tally list entities|dimensions`: one half of the metrics' common group-by items."""
    release, manifest = manifest_of(opts)
    metrics = metrics_of(opts)
    found, dimensions = entity_split(items_for(manifest, metrics))
    key, items = ("entities", found) if entities else ("dimensions", dimensions)
    body = {"release": release, "metrics": list(metrics), key: items}
    write(command, opts, body, [f"• {item}" for item in items])


def metrics_of(opts: dict[str, Any]) -> tuple[str, ...]:
    return list_option(opts.get("metrics") or [], flag="metrics")


def write(
    command: BaseCommand, opts: dict[str, Any], body: dict[str, Any], lines: list[str]
) -> None:
    if opts["format"] == "json":
        command.stdout.write(json.dumps(body, indent=2, default=str))
        return
    for line in lines:
        command.stdout.write(line)
