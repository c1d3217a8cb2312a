from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registry.selectors import proposal_get
from registry.services.proposals import proposal_overview
from tally.management.base import TallyCommand


def _pct(value: Any) -> str:
    return "" if value is None else f"{value:+.1f}%"


def print_proposal(command: BaseCommand, proposal: Any, *, verbose: bool = True) -> None:
    """The reviewer's view: changes, checks (with the numbers diff), reviews, blockers."""
    view = proposal_overview(proposal=proposal)
    p = view["proposal"]
    out = command.stdout.write
    base = p.base_release.name if p.base_release else "an empty registry"
    out(f"Proposal #{p.pk}: {p.title} [{p.state}] by {p.author.username}, revision {p.revision}")
    out(f"  base {base}" + (f", merged into {p.merged_release.name}" if p.merged_release else ""))
    out("Changes:")
    for change in view["changes"]:
        level = f" ({change['level']})" if change["level"] else ""
        out(f"  {change['action']} {change['kind']} {change['name']}{level}")
        for field in change["fields"][:10] if verbose else []:
            out(f"      {field['path']}: {json.dumps(field['old'])} → {json.dumps(field['new'])}")
    out("Checks:")
    for check in view["checks"]:
        out(f"  {check.kind:<11} {check.status:<8} {check.summary}")
        if verbose and check.kind == "numbers":
            for metric in check.details.get("metrics", []):
                out(f"      {metric['metric']} by month (old → new):")
                for row in metric.get("by_month", []):
                    out(
                        f"        {row['key']}: {row['old']} → {row['new']} {_pct(row['change_pct'])}"
                    )
                for key in ("error", "dimension_error"):
                    if metric.get(key):
                        # Already generic for a warehouse error (code and log reference).
                        error = metric[key]
                        out(f"      {metric['metric']}: error[{error['code']}]: {error['message']}")
                        if error.get("hint"):
                            out(f"        hint: {error['hint']}")
                if metric.get("dimension"):
                    out(f"      {metric['metric']} by {metric['dimension']}:")
                    for row in metric.get("by_dimension", [])[:20]:
                        out(
                            f"        {row['key']}: {row['old']} → {row['new']} {_pct(row['change_pct'])}"
                        )
        if verbose and check.status == "failed":
            for issue in check.details.get("issues", [])[:10]:
                if issue.get("severity") == "error":
                    where = f"{issue['file']}:{issue['line']}" if issue["line"] else issue["file"]
                    out(f"      {where}: error[{issue['code']}]: {issue['message']}")
            for failure in check.details.get("failures", [])[:10]:
                out(f"      {failure['metric']} on {failure['dialect']}: {failure['message']}")
    out("Reviews:")
    for review in view["reviews"]:
        gone = " (dismissed)" if review.dismissed else ""
        out(f"  {review.reviewer.username}: {review.verdict}{gone} {review.body}".rstrip())
    policy = view["policy"]
    out(
        f"Policy: {policy['min_approvals']} approval(s); teams: "
        + (", ".join(policy["required_teams"]) or "none")
    )
    if view["blockers"]:
        out("Blocked:")
        for blocker in view["blockers"]:
            out(f"  [{blocker['code']}] {blocker['message']}")
    elif p.state not in ("merged", "closed"):
        out(f"Ready to merge: tally merge {p.pk}")


class Command(TallyCommand):
    help = "Show one proposal: changes, checks and numbers diff, reviews, what blocks the merge."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", help="proposal number")

    def handle(self, *args: Any, **opts: Any) -> None:
        print_proposal(self, proposal_get(proposal_id=opts["id"]))
