from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from registry.management.cli_support import acting_user, read_yaml_files
from registry.management.commands.proposal import print_proposal
from registry.services.proposals import proposal_create
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = (
        "Propose the definitions in FILE (or every YAML file under DIR) as changes to the "
        "latest release; opens the proposal for review and runs its checks."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="a YAML file or a folder of them")
        parser.add_argument("--title", default=None, help="default: the changed names")
        parser.add_argument("--description", "-m", default="")
        parser.add_argument("--retire", action="append", default=[], help="kind:name to retire")
        parser.add_argument("--draft", action="store_true", help="create it without opening")
        parser.add_argument("--user", default=None, help="author (default $TALLY_USER)")

    def handle(self, *args: Any, **opts: Any) -> None:
        proposal = proposal_create(
            acting_user=acting_user(opts["user"]),
            title=opts["title"] or f"Change {opts['path'].name}",
            description=opts["description"],
            files=read_yaml_files(opts["path"]),
            retire=opts["retire"],
            open_now=not opts["draft"],
        )
        print_proposal(self, proposal)
