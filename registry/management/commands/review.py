from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from registry.management.cli_support import acting_user
from registry.selectors import proposal_get
from registry.services.proposals import proposal_review
from tally.management.base import TallyCommand


class Command(TallyCommand):
    help = "Approve a proposal, or request changes to it with a message."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="proposal number")
        verdict = parser.add_mutually_exclusive_group(required=True)
        verdict.add_argument("--approve", action="store_const", dest="verdict", const="approve")
        verdict.add_argument(
            "--request-changes", action="store_const", dest="verdict", const="request_changes"
        )
        parser.add_argument("-m", "--message", default="")
        parser.add_argument("--user", default=None, help="reviewer (default $TALLY_USER)")

    def handle(self, *args: Any, **opts: Any) -> None:
        user = acting_user(opts["user"])
        review = proposal_review(
            proposal=proposal_get(proposal_id=opts["id"]),
            acting_user=user,
            verdict=opts["verdict"],
            body=opts["message"],
        )
        review.proposal.refresh_from_db()
        certified = " (certifies)" if review.certifies else ""
        self.stdout.write(
            f"{review.reviewer.username}: {review.verdict.replace('_', ' ')}{certified} on "
            f"#{review.proposal.pk}; it is now {review.proposal.state}."
        )
