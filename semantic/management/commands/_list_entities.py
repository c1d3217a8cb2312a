"""`tally list entities [--metrics a,b]` (as `mf list entities`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from semantic.management.commands._list_common import add_common, write_split

NAME = "entities"
HELP = "entities the given metrics can be grouped by, all of them in common (mf list entities)"


def add_arguments(parser: CommandParser) -> None:
    add_common(parser, metrics=True)


def handle(command: BaseCommand, opts: dict[str, Any]) -> None:
    write_split(command, opts, entities=True)
