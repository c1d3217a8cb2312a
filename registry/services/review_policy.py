"""Who must approve a proposal, and what still blocks its merge (reads only).

Policy per changed definition: the owning team and the domain's owning team (or the teams
named in the definition's ``config.meta.review.teams``), at least ``min_approvals`` approvals
(``config.meta.review.min_approvals``, else the domain's), and data governance whenever the
change certifies a definition, re-certifies it (a major bump of a certified definition) or
takes its certification away. For an existing definition the *released* version's policy
applies, so a proposal cannot loosen the rules it is reviewed under.

Contracts (owner: ODCS ``customProperties.owner``, domain: ODCS ``domain``) and saved queries
(``config.meta``) are governed the same way; the project configuration is owned by data
governance. Declassifying PII on a contract (``classify_change(...).declassified``) needs an
approval from the data owner (the contract's owning team, else its domain's) *and* from data
governance, whatever else the policy says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from registry.definitions.changes import MAJOR, classify_change
from registry.definitions.objects import CONTRACT, PROJECT, governance_of
from registry.models import (
    Domain,
    Proposal,
    ProposalChange,
    ProposalCheck,
    Review,
    RoleGrant,
    TeamMembership,
)
from registry.roles import Role
from registry.selectors import PinnedSpec, proposal_changes, proposal_checks, release_specs

CERTIFIED = "certified"
# Checks that decide a merge; impact and numbers inform the reviewer and never block.
BLOCKING_CHECKS = (
    ProposalCheck.CheckKind.VALIDATION,
    ProposalCheck.CheckKind.CONTRACTS,
    ProposalCheck.CheckKind.COMPILE,
)
DECLASSIFICATION_MISSING = "declassification_approval_missing"


def governance_team() -> str:
    return str(settings.TALLY_GOVERNANCE_TEAM)


def _meta(spec: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any]:
    return governance_of(kind, spec)


@dataclass(frozen=True)
class Policy:
    """What a proposal needs before it can merge."""

    required_teams: tuple[str, ...]
    min_approvals: int
    # "metric:mrr" for each definition whose merge records a (re-)certification.
    certifies: tuple[str, ...] = ()
    reasons: dict[str, list[str]] = field(default_factory=dict)
    # "contract:users: users.email: classification pii → none" for each PII column the
    # proposal declassifies; ``declassify_teams`` (data owner first, then data governance)
    # must each approve it.
    declassifies: tuple[str, ...] = ()
    declassify_teams: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "required_teams": list(self.required_teams),
            "min_approvals": self.min_approvals,
            "certifies": list(self.certifies),
            "reasons": self.reasons,
            "declassifies": list(self.declassifies),
            "declassify_teams": list(self.declassify_teams),
        }


def needs_certification(kind: str, old: PinnedSpec | None, new: Mapping[str, Any] | None) -> bool:
    """A change that makes a definition certified, or changes a certified one's meaning."""
    if new is None:
        return False
    if _meta(new, kind).get("tier") != CERTIFIED:
        return False
    if old is None or _meta(old.spec, kind).get("tier") != CERTIFIED:
        return True
    return classify_change(kind, old.spec, dict(new)).level == MAJOR or old.certified_by_id is None


def proposal_policy_get(
    *,
    proposal: Proposal,
    changes: list[ProposalChange] | None = None,
    base: dict[tuple[str, str], PinnedSpec] | None = None,
) -> Policy:
    """The approval policy the proposal's current revision is reviewed under."""
    changes = changes if changes is not None else proposal_changes(proposal=proposal)
    if base is None:
        base = release_specs(
            release=proposal.base_release, keys=[(c.kind, c.name) for c in changes]
        )
    domains = {d.slug: d for d in Domain.objects.select_related("owner")}
    teams: dict[str, list[str]] = {}
    minimum = 1
    certifies: list[str] = []
    declassifies: list[str] = []
    declassify_teams: list[str] = []

    def need(team: str | None, why: str) -> None:
        if team:
            teams.setdefault(str(team), []).append(why)

    for change in changes:
        label = f"{change.kind}:{change.name}"
        old = base.get((change.kind, change.name))
        old_meta = _meta(old.spec if old else None, change.kind)
        new_meta = _meta(change.spec, change.kind)
        # The released policy governs an existing definition; a new one brings its own.
        review = (old_meta if old else new_meta).get("review") or {}
        if change.kind == PROJECT:
            need(
                governance_team(), f"{label}: the project configuration is owned by data governance"
            )
        elif review.get("teams"):
            for team in review["teams"]:
                need(team, f"{label}: config.meta.review.teams")
        else:
            for meta in (old_meta, new_meta):
                need(meta.get("owner"), f"{label}: owner")
                domain = domains.get(str(meta.get("domain") or ""))
                if domain is not None and domain.owner is not None:
                    need(domain.owner.slug, f"{label}: owner of domain {domain.slug}")
        domain = domains.get(str((old_meta or new_meta).get("domain") or ""))
        minimum = max(
            minimum,
            int(review.get("min_approvals") or (domain.min_approvals if domain else 1) or 1),
        )
        if needs_certification(change.kind, old, change.spec):
            certifies.append(label)
            need(governance_team(), f"{label}: certified tier needs data governance")
        elif old_meta.get("tier") == CERTIFIED and (
            change.spec is None or new_meta.get("tier") != CERTIFIED
        ):
            need(governance_team(), f"{label}: removing a certification needs data governance")
        if change.kind == CONTRACT and old is not None:
            found = classify_change(CONTRACT, old.spec, dict(change.spec or {})).declassified
            if found:
                declassifies += [f"{label}: {item}" for item in found]
                # The data owner: the released contract's owning team, else its domain's.
                domain = domains.get(str(old_meta.get("domain") or ""))
                owner = old_meta.get("owner") or (
                    domain.owner.slug if domain is not None and domain.owner is not None else None
                )
                for team, why in (
                    (owner, "the data owner"),
                    (governance_team(), "data governance"),
                ):
                    if team:
                        need(team, f"{label}: declassifying PII needs {why}")
                        if team not in declassify_teams:
                            declassify_teams.append(str(team))
                # Two people: the data owner's and governance's approvals are not one click.
                minimum = max(minimum, 2)
    return Policy(
        tuple(sorted(teams)),
        minimum,
        tuple(certifies),
        teams,
        tuple(declassifies),
        tuple(declassify_teams),
    )


def team_slugs_of(user: Any) -> set[str]:
    """The teams a user reviews for: their teams, plus those an explicit role grant stands
    for (reviewer in a domain = its owning team; governance or admin = data governance)."""
    if not getattr(user, "pk", None):
        return set()
    teams = set(TeamMembership.objects.filter(user=user).values_list("team__slug", flat=True))
    grants = RoleGrant.objects.filter(user=user)
    teams |= set(
        grants.filter(role=Role.REVIEWER, domain__owner__isnull=False).values_list(
            "domain__owner__slug", flat=True
        )
    )
    if grants.filter(role__in=[Role.GOVERNANCE, Role.ADMIN]).exists() or user.is_superuser:
        teams.add(governance_team())
    return teams


def can_review(user: Any, policy: Policy) -> bool:
    """Members of a required team, or of data governance, may review."""
    mine = team_slugs_of(user)
    return bool(mine & (set(policy.required_teams) | {governance_team()}))


def current_reviews(proposal: Proposal) -> list[Review]:
    """Each reviewer's latest review that still counts (not dismissed, not the author's)."""
    latest: dict[int, Review] = {}
    for review in (
        Review.objects.filter(proposal=proposal, dismissed=False)
        .exclude(reviewer_id=proposal.author_id)
        .select_related("reviewer")
        .order_by("id")
    ):
        latest[review.reviewer_id] = review
    return list(latest.values())


@dataclass(frozen=True)
class Blocker:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def approval_blockers(proposal: Proposal, policy: Policy) -> list[Blocker]:
    """Missing approvals: count, required teams, or a reviewer asking for changes."""
    reviews = current_reviews(proposal)
    out: list[Blocker] = []
    asking = sorted(
        r.reviewer.username for r in reviews if r.verdict == Review.Verdict.REQUEST_CHANGES
    )
    if asking:
        out.append(Blocker("changes_requested", "changes requested by " + ", ".join(asking)))
    approvers = [r.reviewer for r in reviews if r.verdict == Review.Verdict.APPROVE]
    if len(approvers) < policy.min_approvals:
        out.append(
            Blocker(
                "approvals_missing",
                f"{len(approvers)} of {policy.min_approvals} required approvals",
            )
        )
    covered: set[str] = set()
    for approver in approvers:
        covered |= team_slugs_of(approver)
    for team in policy.declassify_teams:
        if team not in covered:
            who = "data governance" if team == governance_team() else "the data owner"
            out.append(
                Blocker(
                    DECLASSIFICATION_MISSING,
                    f"declassifies PII ({'; '.join(policy.declassifies)}): needs an approval "
                    f"from {who}, team {team}",
                )
            )
    for team in policy.required_teams:
        if team not in covered and team not in policy.declassify_teams:
            out.append(Blocker("team_approval_missing", f"needs an approval from team {team}"))
    return out


def approvals_by_team(proposal: Proposal, policy: Policy) -> list[tuple[str, list[str]]]:
    """Each team the policy requires (declassifying teams included), with the usernames of
    its members who approved the current revision (empty: still required). The same reading
    of the reviews as approval_blockers, so the page and the blockers never disagree."""
    approvers = [
        r.reviewer for r in current_reviews(proposal) if r.verdict == Review.Verdict.APPROVE
    ]
    teams = list(dict.fromkeys([*policy.required_teams, *policy.declassify_teams]))
    return [
        (team, sorted(a.username for a in approvers if team in team_slugs_of(a))) for team in teams
    ]


def check_blockers(proposal: Proposal) -> list[Blocker]:
    """Blocking checks of the current revision that have not passed."""
    checks = {c.kind: c for c in proposal_checks(proposal=proposal)}
    out: list[Blocker] = []
    for kind in BLOCKING_CHECKS:
        check = checks.get(kind)
        if check is None or check.status in (
            ProposalCheck.CheckStatus.PENDING,
            ProposalCheck.CheckStatus.RUNNING,
        ):
            out.append(Blocker("checks_pending", f"check {kind} has not finished"))
        elif check.status != ProposalCheck.CheckStatus.PASSED:
            out.append(Blocker("check_failed", f"check {kind} {check.status}: {check.summary}"))
    return out


def merge_blockers(
    proposal: Proposal, *, latest_release_id: int | None, policy: Policy | None = None
) -> list[Blocker]:
    """Everything that stops a merge right now (empty = mergeable)."""
    out: list[Blocker] = []
    if proposal.state not in (
        Proposal.State.OPEN,
        Proposal.State.APPROVED,
        Proposal.State.CHANGES_REQUESTED,
    ):
        out.append(Blocker("proposal_not_open", f"the proposal is {proposal.state}"))
        return out
    if proposal.base_release_id != latest_release_id:
        out.append(Blocker("stale_base", "the base release is not the latest; rebase the proposal"))
    out.extend(check_blockers(proposal))
    out.extend(approval_blockers(proposal, policy or proposal_policy_get(proposal=proposal)))
    return out
