"""Creating and opening proposals (from YAML texts, parsed definitions or a whole folder)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.db import transaction

from registry.models import Proposal, Release
from registry.selectors import release_specs
from registry.services.definitions import ADD, CHANGE, RESTORE, RETIRE, definitions_plan
from registry.services.proposals.base import (
    NO_CHANGES,
    ProposedDefinition,
    changes_summary,
    proposal_audit,
    proposal_changes_write,
    proposal_checks_enqueue,
    proposal_lock,
    proposal_notify,
    proposal_require_state,
    require_propose_in_domains,
    require_signed_in,
)
from registry.services.proposals.files import (
    only_real_changes,
    proposed_from_files,
    proposed_retirements,
)
from semantic.compiler.definition_checks import load_project
from tally.errors import PermissionDenied, UserError


@transaction.atomic(durable=True)
def proposal_create(
    *,
    acting_user: Any,
    title: str,
    description: str = "",
    files: Mapping[str, str] | None = None,
    retire: Sequence[str] = (),
    proposed: Sequence[ProposedDefinition] | None = None,
    open_now: bool = True,
) -> Proposal:
    """Creates a proposal against the latest release from YAML texts (or parsed definitions),
    opening it unless ``open_now`` is False; definitions equal to the release are dropped."""
    require_signed_in(acting_user)
    if not title.strip():
        raise UserError("a proposal needs a title", code="no_title", location="title")
    items = list(proposed) if proposed is not None else []
    if files:
        items += proposed_from_files(files)
    items += proposed_retirements(retire)
    base_release = Release.objects.order_by("-number").first()
    items = only_real_changes(
        items, release_specs(release=base_release, keys=[(i.kind, i.name) for i in items])
    )
    if not items:
        raise UserError(NO_CHANGES, code="no_changes", hint="edit a definition, then propose it")
    proposal = Proposal(
        title=title.strip()[:200],
        description=description,
        author=acting_user,
        base_release=base_release,
        state=Proposal.State.OPEN if open_now else Proposal.State.DRAFT,
    )
    proposal.full_clean()
    proposal.save()
    proposal_changes_write(proposal, items)
    require_propose_in_domains(acting_user, proposal)
    proposal_audit(proposal, acting_user, "create", changes=changes_summary(items))
    if open_now:
        proposal_checks_enqueue(proposal)
        proposal_notify(proposal, "opened")
    return proposal


def proposal_create_from_folder(
    *, acting_user: Any, root: Path, title: str = "", description: str = ""
) -> Proposal:
    """A proposal that makes the latest release match a whole folder (`tally sync --propose`):
    added, changed and restored definitions, and retirement of those the folder lacks.

    Raises:
        DefinitionError: the folder has errors (as `tally validate` reports them).
    """
    project = load_project(root)
    project.issues.checked()
    base = Release.objects.order_by("-number").first()
    plan = definitions_plan(project=project, base=base)
    items = []
    for change in plan.changes:
        if change.action == RETIRE:
            items.append(ProposedDefinition(change.kind, change.name, None))
        elif change.action in (ADD, CHANGE, RESTORE):
            obj = project.objects[(change.kind, change.name)]
            items.append(ProposedDefinition(obj.kind, obj.name, obj.spec, obj.file, obj.line))
    return proposal_create(
        acting_user=acting_user,
        title=title or f"Sync {root.name}",
        description=description,
        proposed=items,
    )


@transaction.atomic(durable=True)
def proposal_open(*, proposal: Proposal, acting_user: Any) -> Proposal:
    """Opens a draft for review: checks start and reviewers are notified."""
    require_signed_in(acting_user)
    proposal = proposal_lock(proposal)
    proposal_require_state(proposal, (Proposal.State.DRAFT,), "opened")
    if proposal.author_id != acting_user.pk:
        raise PermissionDenied("only the author can open a proposal", code="not_author")
    proposal.state = Proposal.State.OPEN
    proposal.save(update_fields=["state", "updated_at"])
    proposal_audit(proposal, acting_user, "open")
    proposal_checks_enqueue(proposal)
    proposal_notify(proposal, "opened")
    return proposal
