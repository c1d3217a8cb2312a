from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from registry.management.cli_support import acting_user
from registry.selectors import proposal_get
from registry.services.proposals import proposal_rebase
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = "Move a proposal onto the latest release; conflicts are listed field by field."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="proposal number")
        parser.add_argument("--user", default=None, help="who rebases (default $TALLY_USER)")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = acting_user(opts["user"])
        proposal = proposal_rebase(proposal=proposal_get(proposal_id=opts["id"]), acting_user=user)
        self.stdout.write(
            f"#{proposal.pk} is based on {proposal.base_release.name} (revision "
            f"{proposal.revision}, {proposal.state})."
        )
