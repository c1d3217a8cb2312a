"""The validation check: the release as it would be, checked as `tally validate` checks a folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from registry.definitions.export import ExportItem, export_files
from registry.definitions.objects import Project
from registry.selectors import governance_for_export
from registry.services.proposal_checks.inputs import CheckInputs, Result, Status
from semantic.compiler.definition_checks import load_project


def check_validation(inputs: CheckInputs) -> Result:
    return validation_result(validation_project(inputs), inputs)


def validation_project(inputs: CheckInputs) -> Project:
    """The release as the proposal would make it, loaded and checked as a folder."""
    teams, domains = governance_for_export()
    files = export_files(
        [ExportItem(k, n, s) for (k, n), s in inputs.merged.items()], teams=teams, domains=domains
    )
    with tempfile.TemporaryDirectory(prefix="tally-check-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        project = load_project(root, cache=False)  # a new folder: nothing to reuse
    return project


def validation_result(project: Project, inputs: CheckInputs) -> Result:
    """The check's outcome from a loaded project's issues, pointed at the proposal's files."""
    where = {c.name: c for c in inputs.changes}
    issues = []
    for issue in [*project.issues.errors, *project.issues.warnings]:
        body = issue.as_dict()
        # Point at the proposal's own file when the issue names one of its definitions.
        change = where.get(str(issue.object or ""))
        if change is not None and change.source_file:
            body["file"], body["line"] = change.source_file, change.source_line
        elif issue.object:
            body["file"], body["line"] = f"(release {inputs.base_name})", 0
        issues.append(body)
    errors = [i for i in issues if i.get("severity") == "error"]
    if errors:
        first = errors[0]
        return (
            Status.FAILED,
            f"{len(errors)} error(s); first: {first['message']}",
            {"issues": issues},
        )
    return Status.PASSED, f"valid ({len(issues)} warning(s))", {"issues": issues}
