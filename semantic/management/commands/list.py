"""`tally list …` as `mf list …`. Each subcommand's arguments and handler live in their own
module (``_list_<name>.py``) and are registered in ``SUBCOMMANDS``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from django.core.management.base import CommandParser

from semantic.management.commands import (
    _list_dimension_values,
    _list_dimensions,
    _list_entities,
    _list_metrics,
    _list_saved_queries,
)
from tally.management.base import TallyCommand

SUBCOMMANDS: tuple[ModuleType, ...] = (
    _list_metrics,
    _list_dimensions,
    _list_entities,
    _list_saved_queries,
    _list_dimension_values,
)


class Command(TallyCommand):
    help = "List what the semantic layer offers (as mf list …)."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="what", required=True)
        for module in SUBCOMMANDS:
            sub = subparsers.add_parser(module.NAME, help=module.HELP)
            module.add_arguments(sub)

    def handle(self, *args: Any, **opts: Any) -> None:
        for module in SUBCOMMANDS:
            if opts["what"] == module.NAME:
                module.handle(self, opts)
