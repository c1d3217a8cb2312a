"""`tally list dimensions [--metrics a,b]` (as `mf list dimensions`): the dimensions every
given metric accepts, granularity-free (``metric_time``, ``account__plan``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from semantic.management.commands._list_common import add_common, write_split

NAME = "dimensions"
HELP = "dimensions the given metrics accept, all of them in common (mf list dimensions)"


def add_arguments(parser: CommandParser) -> None:
    add_common(parser, metrics=True)


def handle(command: BaseCommand, opts: dict[str, Any]) -> None:
    write_split(command, opts, entities=False)
