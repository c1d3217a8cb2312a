from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from registry.models import Proposal
from registry.selectors import proposal_list
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = "List proposals, newest first."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--state", choices=Proposal.State.values, default=None)
        parser.add_argument("--limit", type=int, default=50)

    def handle(self, *args: Any, **opts: Any) -> None:
        rows = list(proposal_list(state=opts["state"])[: opts["limit"]])
        if not rows:
            self.stdout.write("No proposals.")
            return
        for p in rows:
            base = p.base_release.name if p.base_release else "-"
            self.stdout.write(
                f"#{p.pk:<5} {p.state:<18} {base:<5} {p.author.username:<20} {p.title}"
            )
