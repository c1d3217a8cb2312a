"""E-mail about proposals to their author, owners and reviewers (console backend in the demo)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from registry.models import Proposal, Review, Team
from registry.services.review_policy import governance_team, proposal_policy_get

SUBJECTS = {
    "opened": "[Tally] Review requested: #{id} {title}",
    "reviewed": "[Tally] #{id} {title}: {verdict} by {reviewer}",
    "merged": "[Tally] #{id} {title} merged into {release}",
}


def _address(user: Any) -> str | None:
    if user is None:
        return None
    if user.email:
        return str(user.email)
    # Team members named in governance YAML are often e-mail addresses used as usernames.
    return str(user.username) if "@" in user.username else None


def proposal_recipients(proposal: Proposal) -> list[str]:
    """The author, every required team (its address and members) and everyone who reviewed."""
    policy = proposal_policy_get(proposal=proposal)
    slugs = set(policy.required_teams)
    if policy.certifies:
        slugs.add(governance_team())
    addresses: set[str] = set()
    for team in Team.objects.filter(slug__in=slugs).prefetch_related("memberships__user"):
        if team.email:
            addresses.add(team.email)
        addresses.update(a for m in team.memberships.all() if (a := _address(m.user)))
    for review in Review.objects.filter(proposal=proposal).select_related("reviewer"):
        if a := _address(review.reviewer):
            addresses.add(a)
    if a := _address(proposal.author):
        addresses.add(a)
    return sorted(addresses)


def proposal_notification_send(*, proposal_id: int, event: str) -> int:
    """Sends one e-mail for an event (opened, reviewed, merged); returns messages sent."""
    proposal = Proposal.objects.select_related("author", "merged_release").get(pk=proposal_id)
    last = (
        Review.objects.filter(proposal=proposal).select_related("reviewer").order_by("-id").first()
    )
    subject = SUBJECTS[event].format(
        id=proposal.pk,
        title=proposal.title,
        verdict=(last.verdict.replace("_", " ") if last else ""),
        reviewer=(last.reviewer.username if last else ""),
        release=(proposal.merged_release.name if proposal.merged_release else ""),
    )
    body = (
        f"{proposal.title}\n\nby {proposal.author.username}, state {proposal.state}, "
        f"revision {proposal.revision}\n\n{proposal.description}\n\n"
        f"API: /api/v1/proposals/{proposal.pk}\n"
        + (f"\n{last.reviewer.username}: {last.body}\n" if event == "reviewed" and last else "")
    )
    recipients = proposal_recipients(proposal)
    if not recipients:
        return 0
    return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
