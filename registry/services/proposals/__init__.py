"""Proposals: a reviewed change set of definitions that merges into a new release.

State machine: draft → open ⇄ changes_requested / approved → merged, or closed from any
unmerged state. Every service here is one durable transaction with an audit row
(``object_kind="proposal"``, which is also the proposal's timeline); checks and e-mails are
asked for on commit (``registry.signals``), so a rolled-back write never announces anything.

Modules: ``base`` (states, messages, lock, shared checks and side effects), ``files`` (YAML
texts → specs), ``create`` (create, open), ``revise`` (update, rebase), ``review`` (review,
comment, close), ``merge``, ``reading`` (diffs and the reviewer's overview).
"""

from registry.services.proposals.base import (
    MERGE_BLOCKED,
    NO_CHANGES,
    NOT_A_REVIEWER,
    NOT_OPEN,
    REVIEWABLE,
    SELF_REVIEW,
    STALE_BASE,
    UNMERGED,
    ProposedDefinition,
)
from registry.services.proposals.create import (
    proposal_create,
    proposal_create_from_folder,
    proposal_open,
)
from registry.services.proposals.files import MAX_FILE_BYTES, MAX_FILES, proposed_from_files
from registry.services.proposals.merge import proposal_merge
from registry.services.proposals.reading import proposal_change_diffs, proposal_overview
from registry.services.proposals.review import proposal_close, proposal_comment, proposal_review
from registry.services.proposals.revise import proposal_rebase, proposal_update

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MERGE_BLOCKED",
    "NOT_A_REVIEWER",
    "NOT_OPEN",
    "NO_CHANGES",
    "REVIEWABLE",
    "SELF_REVIEW",
    "STALE_BASE",
    "UNMERGED",
    "ProposedDefinition",
    "proposal_change_diffs",
    "proposal_close",
    "proposal_comment",
    "proposal_create",
    "proposal_create_from_folder",
    "proposal_merge",
    "proposal_open",
    "proposal_overview",
    "proposal_rebase",
    "proposal_review",
    "proposal_update",
    "proposed_from_files",
]
